"""Train opencomposer's GAN as a SageMaker training job straight from the SageMaker Python SDK.

No API, no jobs table, no state machine: `ModelTrainer` (SDK 3, `pip install -e '.[sagemaker]'`)
creates the training job itself, with the image, role, input channel and output layout the
deployed stack's own jobs use, and waits for it. The training then reports only to its output
folder (no job item to write to), which SageMaker packs into `output.tar.gz` beside
`model.tar.gz`: `progress.jsonl`, the per-epoch samples and `final.mid`, the melody accompanied.

    # on AWS: the image and role of the deployed stack (read from its state machine)
    python examples/train_with_sagemaker_sdk.py --stack OpenComposer --epochs 20 --midi my-tune.mid
    # on this machine: a fresh local stack in this process, whose runner trains the job
    python examples/train_with_sagemaker_sdk.py --local --epochs 1

docs/sagemaker-sdk.md says which role and image, what it costs, and how the local run works.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tarfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from contracts import hyperparameters, storage, training

# The API's sample melodies ship with the package (the console's files).
SAMPLE_MELODIES = resources.files("opencomposer.console") / "static" / "melodies"
DEFAULT_SAMPLE = "twinkle-twinkle"
# What the stack's own jobs run on (its InstanceType parameter's default): a CPU is enough.
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
MAX_RUNTIME_SECONDS = 7200
OUTPUT_ARCHIVE_FINAL = "final.mid"
# The SDK reports usage to an AWS endpoint of its own (plain HTTPS, not through boto3, so
# AWS_ENDPOINT_URL does not redirect it). Off for the local stack: nothing there is AWS's.
TELEMETRY_OPT_OUT_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@dataclass(frozen=True)
class Deployment:
    """What a training job of the stack needs: the values its state machine passes."""

    image: str  # the training image in ECR
    role_arn: str  # the stack's SageMaker execution role
    bucket: str  # the artifacts bucket
    job_prefix: str  # training job names start `<prefix>-`: the role's log grants expect it
    region: str


def deployment_from_state_machine(definition: str) -> Deployment:
    """The stack's training values from its deployed state machine's CreateTrainingJob task.

    The stack exports neither the image nor the role as outputs; the definition holds both,
    filled in at deployment, so they are read from there (the same on AWS and locally).
    """
    states = json.loads(definition)["States"]
    tasks = [s for s in states.values() if str(s.get("Resource", "")).startswith(
        "arn:aws:states:::sagemaker:createTrainingJob")]
    if len(tasks) != 1:
        raise ValueError(f"expected one createTrainingJob task in the state machine, found {len(tasks)}")
    parameters = tasks[0]["Parameters"]
    # Names and paths are built per job with States.Format: the constant parts are the stack's.
    name_format = parameters["TrainingJobName.$"]
    output_format = parameters["OutputDataConfig"]["S3OutputPath.$"]
    prefix = re.fullmatch(r"States\.Format\('(.+)-\{\}', \$\.job_id\)", name_format)
    bucket = re.fullmatch(r"States\.Format\('s3://([^/]+)/.*", output_format)
    if prefix is None or bucket is None:
        raise ValueError(f"the state machine's CreateTrainingJob task names its jobs {name_format!r} and "
                         f"its outputs {output_format!r}, not as this example expects")
    return Deployment(
        image=parameters["AlgorithmSpecification"]["TrainingImage"],
        role_arn=parameters["RoleArn"],
        bucket=bucket.group(1),
        job_prefix=prefix.group(1),
        region=parameters["Environment"][training.ENV_REGION],
    )


def state_machine_of_stack(cloudformation: Any, stack_name: str) -> str:
    """The ARN of the training state machine of a deployed CloudFormation stack."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    found = [
        r["PhysicalResourceId"]  # a state machine's physical id is its ARN
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::StepFunctions::StateMachine"
    ]
    if len(found) != 1:
        raise ValueError(f"stack {stack_name}: expected one state machine, found {len(found)}")
    return str(found[0])


@dataclass(frozen=True)
class Run:
    """Where one SDK run's files go: a prefix of the stack's bucket layout (`jobs/<run id>/`),
    because the stack's role may read inputs and write models only there."""

    deployment: Deployment
    run_id: str

    @property
    def melody_uri(self) -> str:
        return f"s3://{self.deployment.bucket}/{storage.melody_key(self.run_id)}"

    @property
    def output_path(self) -> str:
        return f"s3://{self.deployment.bucket}/{storage.model_output_prefix(self.run_id)}"


def new_run(deployment: Deployment) -> Run:
    # Not a job of the API (no job item): the `sdk-` prefix tells the two apart in the bucket.
    return Run(deployment, f"sdk-{uuid.uuid4().hex[:16]}")


def sample_melody(name: str = DEFAULT_SAMPLE) -> bytes:
    return (SAMPLE_MELODIES / f"{name}.mid").read_bytes()


def sagemaker_session(boto_session: Any, telemetry: bool = True) -> Any:
    from sagemaker.core.helper.session_helper import Session

    config = None if telemetry else TELEMETRY_OPT_OUT_CONFIG  # None: the SDK's own config files
    return Session(boto_session=boto_session, sagemaker_config=config)


def model_trainer(
    session: Any,
    run: Run,
    values: Mapping[str, int | float],
    instance_type: str = DEFAULT_INSTANCE_TYPE,
) -> Any:
    """A ModelTrainer for the stack's image: hyperparameters as the API passes them (checked
    here by the same contract the training applies), the stack's role, outputs under the run."""
    from sagemaker.core.training.configs import Compute, OutputDataConfig, StoppingCondition
    from sagemaker.train import ModelTrainer

    checked = hyperparameters.parse_sagemaker(values)  # a bad value fails here, not in the job
    deployment = run.deployment
    return ModelTrainer(
        sagemaker_session=session,
        role=deployment.role_arn,
        training_image=deployment.image,
        # `<prefix>-sdk-<timestamp>`: the role's CloudWatch Logs grant covers `<prefix>-*` only
        base_job_name=f"{deployment.job_prefix}-sdk",
        hyperparameters=hyperparameters.as_sagemaker(checked),
        compute=Compute(instance_type=instance_type, instance_count=1, volume_size_in_gb=10),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_SECONDS),
        output_data_config=OutputDataConfig(s3_output_path=run.output_path),
        # SageMaker sets no region in the container; the training needs one (contracts.training).
        environment={name: deployment.region for name in training.REGION_ENVIRONMENT},
    )


@dataclass(frozen=True)
class Result:
    training_job_name: str
    status: str
    model_uri: str  # model.tar.gz: `model.pt`, which `gan.generate` loads ("" unless Completed)
    output_uri: str  # output.tar.gz: progress.jsonl, samples/, final.mid
    failure_reason: str | None = None  # SageMaker's FailureReason: the training's own words


def train(
    session: Any,
    run: Run,
    melody: bytes,
    values: Mapping[str, int | float],
    logs: bool = False,
    **options: Any,
) -> Result:
    """Upload the melody to the run's `melody` channel, train, wait for the end (`logs`: print
    the job's CloudWatch log meanwhile, on AWS; the local stack writes none there)."""
    from sagemaker.core.training.configs import InputData
    from sagemaker.core.utils.exceptions import FailedStatusError

    s3 = session.boto_session.client("s3")
    s3.put_object(Bucket=run.deployment.bucket, Key=storage.melody_key(run.run_id), Body=melody,
                  ContentType=storage.MIDI_CONTENT_TYPE)
    trainer = model_trainer(session, run, values, **options)
    # the deployed job's one input channel (SM_CHANNEL_MELODY): one MIDI file
    melody_channel = InputData(channel_name=training.MELODY_CHANNEL, data_source=run.melody_uri,
                               content_type=storage.MIDI_CONTENT_TYPE)
    # A failed job raises; its description below says how it ended and why, as for any other.
    with contextlib.suppress(FailedStatusError):
        trainer.train(input_data_config=[melody_channel], wait=True, logs=logs)
    job = trainer._latest_training_job  # the SDK's handle on the job it created (no public one)
    job.refresh()
    artifacts = job.model_artifacts
    return Result(
        training_job_name=job.training_job_name,
        status=job.training_job_status,
        model_uri=artifacts.s3_model_artifacts if artifacts else "",
        output_uri=trainer.output_data,
        failure_reason=job.failure_reason or None,
    )


def read_output_file(s3: Any, output_uri: str, name: str = OUTPUT_ARCHIVE_FINAL) -> bytes:
    """One file of the job's output.tar.gz (what the training wrote to SM_OUTPUT_DATA_DIR)."""
    bucket, key = output_uri.removeprefix("s3://").split("/", 1)
    archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # SageMaker packs the folder's contents, with or without a leading "./"
        found = [m for m in tar.getmembers() if m.isfile() and m.name.removeprefix("./") == name]
        member = tar.extractfile(found[0]) if found else None
        if member is None:
            raise FileNotFoundError(f"no {name} in {output_uri}")
        return member.read()


@contextmanager
def local_aws() -> Iterator[Deployment]:
    """A fresh local stack in this process, with the SDK pointed at its moto endpoint."""
    import tempfile

    from opencomposer.local.stack import LocalStack, LocalStackOptions

    with tempfile.TemporaryDirectory(prefix="opencomposer-sdk-") as home:
        stack = LocalStack(LocalStackOptions(home=Path(home), port=0, stop_grace_s=5)).start()
        saved = {name: os.environ.get(name) for name in _LOCAL_ENV}
        try:
            os.environ.update(_local_env(stack.moto_url))
            stepfunctions = stack.client("stepfunctions")
            definition = stepfunctions.describe_state_machine(
                stateMachineArn=stack.names.state_machine_arn)["definition"]
            yield deployment_from_state_machine(definition)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            stack.stop()


_LOCAL_ENV = ("AWS_ENDPOINT_URL", "SAGEMAKER_VALIDATE_ROLE")


def _local_env(endpoint_url: str) -> dict[str, str]:
    return {
        # The SDK makes its boto3 clients from the session without an endpoint_url of its own
        # (sagemaker-core's SageMakerClient), so only botocore's global setting reaches them all.
        "AWS_ENDPOINT_URL": endpoint_url,
        # The SDK checks the role with iam:SimulatePrincipalPolicy, which moto does not
        # implement (it answers 500); this is the SDK's own switch for that check.
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed CloudFormation stack (e.g. OpenComposer)")
    where.add_argument("--local", action="store_true", help="a fresh local stack in this process")
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    parser.add_argument("--midi", type=Path, help=f"your melody (default: the {DEFAULT_SAMPLE} sample)")
    parser.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    parser.add_argument("--out", type=Path, default=Path("out"), help="where final.mid goes")
    for spec in hyperparameters.HYPERPARAMETERS:
        parser.add_argument(f"--{spec.name}", type=spec.kind, default=spec.default,
                            help=f"{spec.help} (range {spec.range_text()})")
    args = parser.parse_args(argv)
    values = {spec.name: getattr(args, spec.name) for spec in hyperparameters.HYPERPARAMETERS}
    melody = args.midi.read_bytes() if args.midi else sample_melody()

    import boto3

    if args.local:
        with local_aws() as deployment:
            boto_session = boto3.session.Session(region_name=deployment.region)
            result = _train_and_save(boto_session, deployment, melody, values, args, aws=False)
    else:
        # Before it creates a job the SDK simulates a generic execution role's actions on the
        # role (EC2 network interfaces for VPC jobs among them); the stack's role holds only
        # what its jobs use (no VPC), so that check would refuse it. SageMaker still checks
        # the role for real: iam:PassRole, then the job's own calls.
        os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
        boto_session = boto3.session.Session(region_name=args.region)
        arn = state_machine_of_stack(boto_session.client("cloudformation"), args.stack)
        definition = boto_session.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
        deployment = deployment_from_state_machine(definition["definition"])
        result = _train_and_save(boto_session, deployment, melody, values, args, aws=True)
    return 0 if result.status == "Completed" else 1


def _train_and_save(
    boto_session: Any,
    deployment: Deployment,
    melody: bytes,
    values: Mapping[str, int | float],
    args: argparse.Namespace,
    aws: bool,
) -> Result:
    session = sagemaker_session(boto_session, telemetry=aws)
    run = new_run(deployment)
    result = train(session, run, melody, values, logs=aws, instance_type=args.instance_type)
    print(f"training job {result.training_job_name}: {result.status}")
    if result.failure_reason:
        print(result.failure_reason, file=sys.stderr)
    if result.status == "Completed":
        print(f"model:  {result.model_uri}\noutput: {result.output_uri}")
        path = args.out / run.run_id / OUTPUT_ARCHIVE_FINAL
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(read_output_file(boto_session.client("s3"), result.output_uri))
        print(f"final composition: {path}")
    return result


if __name__ == "__main__":
    sys.exit(main())
