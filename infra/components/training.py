"""Training on SageMaker: the image built from `training_container/`, the execution role the
training jobs run as, and the stack parameters that size them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aws_cdk import ArnFormat, CfnParameter, IgnoreMode, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts import names, storage, training
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


# Stack parameters (`cdk deploy --parameters Name=value`), named as the definition's placeholders
# they fill: sizing a deployment needs no code change. Created only if the definition uses them.
PARAMETERS: dict[str, dict[str, Any]] = {
    "InstanceType": dict(
        type="String", default="ml.m5.large", allowed_pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
        description="SageMaker instance type of each training job, e.g. ml.g4dn.xlarge for a GPU"),
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
        self.image = ecr_assets.DockerImageAsset(
            self, "Image",
            directory=str(REPO_ROOT),
            file=TRAINING_DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
            # .dockerignore rules: everything out, the context back in, caches out again.
            ignore_mode=IgnoreMode.DOCKER,
            exclude=["*", *(f"!{path}" for path in TRAINING_IMAGE_CONTEXT), "**/__pycache__", "**/*.pyc"],
        )
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
        self._grant_logs_and_metrics(stack)

    def substitutions(self) -> dict[str, Callable[[], str]]:
        """Values for the definition's training placeholders, made on demand."""
        stack = Stack.of(self)

        def parameter(name: str) -> Callable[[], str]:
            # At stack level so the parameter keeps its plain name.
            return lambda: CfnParameter(stack, name, **PARAMETERS[name]).value_as_string

        return {
            "TrainingImage": lambda: self.image.image_uri,
            "SageMakerRoleArn": lambda: self.role.role_arn,
            "TrainingJobPrefix": lambda: self.job_prefix,
            # The training container's region (SageMaker sets none): contracts.training.
            training.REGION_PLACEHOLDER: lambda: stack.region,
            **{name: parameter(name) for name in PARAMETERS},
        }

    def _grant_artifacts(self, bucket: s3.IBucket) -> None:
        def objects(folder: str) -> str:
            return bucket.arn_for_objects(f"{storage.JOBS_PREFIX}*/{folder}/*")

        # Inputs: the melody channel; checkpoints a spot job resumes from.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[objects("input"), objects("checkpoints")]))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{storage.JOBS_PREFIX}*"]}}))
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

