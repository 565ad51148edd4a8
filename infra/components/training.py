"""Training on SageMaker: the images built from `training_container/`, the execution role the
training jobs run as, and the stack parameters that size them.

Two images from the one Dockerfile, on two of AWS's PyTorch training bases: the CPU one and the
GPU one (CUDA). `InstanceType` is a stack parameter, so the choice between them is made when the
stack is deployed or updated, not at synth: a condition on the instance family picks the GPU
image for the GPU families below, and the CPU image for every other type."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aws_cdk import ArnFormat, CfnCondition, CfnParameter, Fn, IgnoreMode, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts import datasets, names, storage, training
from infra.components.paths import REPO_ROOT, TRAINING_DOCKERFILE, TRAINING_IMAGE_CONTEXT

# SageMaker writes every training job's logs to this one log group (streams `<job name>/...`).
SAGEMAKER_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
JOB_ID_LENGTH = 32  # uuid4().hex
# Training job names are `<prefix>-<job id>`, at most names.TRAINING_JOB_NAME_MAX characters.
MAX_PREFIX_LENGTH = names.TRAINING_JOB_NAME_MAX - 1 - JOB_ID_LENGTH


def training_job_prefix(stack: Stack) -> str:
    """The stack's name in lower case: unique per account and region, as training job names
    must be.

    Lower case because SageMaker reports training job ARNs in lower case whatever the case of
    the name, while IAM compares resource ARNs case-sensitively: with a lower-case name, the
    name SageMaker stores, the ARN it reports, the log streams named after the job and every
    grant built from this prefix are the same text, whichever of the two forms AWS compares."""
    prefix = stack.stack_name.lower()
    if len(prefix) > MAX_PREFIX_LENGTH or not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", prefix):
        raise ValueError(f"stack name {prefix!r} cannot prefix SageMaker training job names: use at most "
                         f"{MAX_PREFIX_LENGTH} letters, digits and hyphens")
    return prefix


# The GPU image's base: AWS's PyTorch training image for GPUs, the same PyTorch and Python as the
# Dockerfile's default CPU base, built with CUDA 13.0 (AWS's deep-learning-containers release of
# PyTorch Training 2.10.0 for SageMaker). CUDA 13 runs on NVIDIA GPUs of compute capability 7.5
# (Turing) and later: it dropped Volta (7.0) and older.
GPU_BASE_IMAGE = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-gpu-py313-cu130-ubuntu22.04-sagemaker"
)
# Where the GPU image takes the project's torch (the Dockerfile's TORCH_VERSION): PyPI, whose Linux
# wheel is the CUDA build and brings its CUDA libraries; the CPU image takes PyTorch's CPU wheels.
GPU_TORCH_INDEX = "https://pypi.org/simple"
# SageMaker training instance families with NVIDIA GPUs that CUDA 13 supports: these get the GPU
# image. g4dn: T4 (Turing, 7.5, float16 with gradient scaling: no bfloat16); g5: A10G (8.6);
# g6: L4 (8.9); g6e: L40S (8.9); p4d/p4de: A100 (8.0); p5/p5e/p5en: H100/H200 (9.0). Not here:
# p3 and p3dn (V100, Volta 7.0, which CUDA 13 dropped; the CPU image runs there, on the CPU),
# and trn/inf (not NVIDIA). CloudFormation's Fn::Or takes at most 10 conditions.
GPU_INSTANCE_FAMILIES = ("g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en")


# Stack parameters (`cdk deploy --parameters Name=value`), named as the definition's placeholders
# they fill: sizing a deployment needs no code change. Created only if the definition uses them.
PARAMETERS: dict[str, dict[str, Any]] = {
    "InstanceType": dict(
        type="String", default="ml.m5.large", allowed_pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
        description="SageMaker instance type of each training job; a GPU type (ml.g4dn, g5, g6, g6e, "
                    "p4d, p4de, p5, p5e, p5en) runs the GPU image, e.g. ml.g5.xlarge"),
    "InstanceCount": dict(type="Number", default=1, min_value=1, max_value=20,
                          description="Instances per training job"),
    "VolumeSizeInGB": dict(type="Number", default=10, min_value=1, max_value=512,
                           description="Storage per training instance (data, checkpoints)"),
    "MaxRuntimeSeconds": dict(type="Number", default=7200, min_value=60, max_value=2419200,
                              description="A training job still running after this is stopped"),
    "UseSpotInstances": dict(type="String", default="false", allowed_values=["true", "false"],
                             description="Managed spot training (checkpoints under "
                                         "jobs/<id>/checkpoints/ let an interrupted job resume)"),
    # SageMaker refuses MaxWaitTimeInSeconds < MaxRuntimeInSeconds. A CloudFormation rule cannot
    # refuse that pair (rule functions compare strings and lists, never numbers), so the stack
    # takes the wait beyond the runtime instead: the definition adds the two (States.MathAdd),
    # and no parameter value can make the sum smaller than the runtime.
    "SpotWaitSeconds": dict(type="Number", default=7200, min_value=0, max_value=2419200,
                            description="With spot: how long a job may wait for spot capacity beyond "
                                        "MaxRuntimeSeconds (SageMaker's MaxWaitTimeInSeconds is their sum)"),
}


class Training(Construct):
    def __init__(self, scope: Construct, id: str, *, bucket: s3.IBucket, table: dynamodb.ITable) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.job_prefix = training_job_prefix(stack)
        def image(id: str, build_args: dict[str, str]) -> ecr_assets.DockerImageAsset:
            return ecr_assets.DockerImageAsset(
                self, id,
                directory=str(REPO_ROOT),
                file=TRAINING_DOCKERFILE,
                build_args=build_args,
                platform=ecr_assets.Platform.LINUX_AMD64,
                # .dockerignore rules: everything out, the context back in, caches out again.
                ignore_mode=IgnoreMode.DOCKER,
                exclude=["*", *(f"!{path}" for path in TRAINING_IMAGE_CONTEXT), "**/__pycache__", "**/*.pyc"],
            )

        # Both are built and pushed by `cdk deploy` (the GPU base is a large pull, once per
        # Docker cache); a job runs the one its instance type needs.
        self.image = image("Image", {})  # the Dockerfile's default base: CPU
        self.gpu_image = image("GpuImage", {"BASE_IMAGE": GPU_BASE_IMAGE, "TORCH_INDEX": GPU_TORCH_INDEX})
        self.role = iam.Role(
            self, "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="opencomposer training jobs: their job's items, the bucket's job prefixes, "
                        "the image and its logs",
        )
        self.job_arn_pattern = stack.format_arn(
            service="sagemaker", resource="training-job", resource_name=f"{self.job_prefix}-*")
        self._grant_artifacts(bucket)
        self._grant_job_items(table)
        self.image.repository.grant_pull(self.role)
        self.gpu_image.repository.grant_pull(self.role)
        self._grant_logs_and_metrics(stack)

    def substitutions(self) -> dict[str, Callable[[], str]]:
        """Values for the definition's training placeholders, made on demand."""
        stack = Stack.of(self)

        def parameter(name: str) -> Callable[[], str]:
            return lambda: self._parameter(name).value_as_string

        return {
            "TrainingImage": self._training_image,
            "SageMakerRoleArn": lambda: self.role.role_arn,
            "TrainingJobPrefix": lambda: self.job_prefix,
            # The training container's region (SageMaker sets none): contracts.training.
            training.REGION_PLACEHOLDER: lambda: stack.region,
            **{name: parameter(name) for name in PARAMETERS},
        }

    def _parameter(self, name: str) -> CfnParameter:
        """The stack parameter `name`, made on first use; at stack level so it keeps its plain
        name (the training image's condition reads InstanceType too)."""
        stack = Stack.of(self)
        found = stack.node.try_find_child(name)
        return found if isinstance(found, CfnParameter) else CfnParameter(stack, name, **PARAMETERS[name])

    def _training_image(self) -> str:
        """The GPU image for a GPU instance type (GPU_INSTANCE_FAMILIES), else the CPU image:
        `ml.<family>.<size>`'s family compared at deploy time."""
        condition = self.node.try_find_child("GpuInstanceType")
        if not isinstance(condition, CfnCondition):
            family = Fn.select(1, Fn.split(".", self._parameter("InstanceType").value_as_string))
            condition = CfnCondition(
                self, "GpuInstanceType",
                expression=Fn.condition_or(*(Fn.condition_equals(family, f) for f in GPU_INSTANCE_FAMILIES)),
            )
        return Fn.condition_if(condition.logical_id, self.gpu_image.image_uri,
                               self.image.image_uri).to_string()

    def _grant_artifacts(self, bucket: s3.IBucket) -> None:
        def objects(folder: str) -> str:
            return bucket.arn_for_objects(f"{storage.JOBS_PREFIX}*/{folder}/*")

        # Inputs: the melody channel; checkpoints a spot job resumes from.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[objects("input"), objects("checkpoints")]))
        # A user's dataset: SageMaker downloads its `dataset` channel (the built pieces, a
        # prefix it lists first) as this role; the upload, the report and the rest stay out.
        built = datasets.built_prefix("*")
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{built}*")]))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{storage.JOBS_PREFIX}*", f"{built}*"]}}))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[objects(folder) for folder in ("samples", "compositions", "model", "checkpoints")]))
        # Samples are written with a tag (the lifecycle rule's filter), and only samples.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObjectTagging"], resources=[objects("samples")],
            conditions={"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": [storage.SAMPLE_TAG_KEY]}}))

    def _grant_job_items(self, table: dynamodb.ITable) -> None:
        # Progress on the job item and one item per epoch, always under a job's partition key.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem", "dynamodb:PutItem"], resources=[table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [storage.job_pk("*")]}}))

    def _grant_logs_and_metrics(self, stack: Stack) -> None:
        self.log_group_arn = log_group = stack.format_arn(service="logs", resource="log-group",
                                     resource_name=f"{SAGEMAKER_LOG_GROUP}:*",
                                     arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.log_streams_arn = log_streams = stack.format_arn(
            service="logs", resource="log-group",
            resource_name=f"{SAGEMAKER_LOG_GROUP}:log-stream:{self.job_prefix}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"], resources=[log_group]))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_streams]))
        # PutMetricData has no resource type: the namespace condition is the narrowest scope.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": SAGEMAKER_LOG_GROUP}}))

