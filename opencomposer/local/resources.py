"""The local stack's AWS resources, created in moto from the contracts.

`resource_specs()` says what the stack creates (the table's keys, index and stream view from
`contracts.storage`, the functions from `contracts.functions`, the state machine's placeholders
filled as `contracts.names` fills them), as plain data, so the infra tests can compare it with
the synthesised template. `create_all()` turns it into moto resources through the ordinary
boto3 API.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import datasets, deployment, functions, storage, training
from contracts.names import placeholders, render

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = REPO_ROOT / "statemachine" / "training.asl.json"
MAX_RUNTIME_SECONDS = 7200  # the training job's StoppingCondition (the CDK parameter's default)
# No spot capacity on one machine: on-demand, as the CDK parameter's default; the wait limit is
# then unused but filled, as CloudFormation fills every placeholder.
USE_SPOT_INSTANCES = False
SPOT_WAIT_SECONDS = 7200


@dataclass(frozen=True)
class LocalNames:
    """Physical names of the local resources (CDK generates them on AWS)."""

    prefix: str = "opencomposer-local"
    region: str = deployment.LOCAL_REGION
    account: str = deployment.LOCAL_ACCOUNT

    @property
    def table(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-artifacts"

    def function_name(self, key: str) -> str:
        """The function of `contracts.functions` with this key: `opencomposer-local-api`."""
        return f"{self.prefix}-{key}"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-training"

    @property
    def training_job_prefix(self) -> str:
        return self.prefix

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.state_machine}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.prefix}-{name}"

    @property
    def training_image(self) -> str:
        # Never pulled: the SageMaker runner runs the training package from this checkout.
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.prefix}-training:local"


# --- what to create ------------------------------------------------------------------------------


def table_spec(names: LocalNames) -> dict[str, Any]:
    return {
        "TableName": names.table,
        "KeySchema": [
            {"AttributeName": storage.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": storage.SORT_KEY, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            # dict.fromkeys: once each (both indexes sort on `created_at`)
            for name in dict.fromkeys((
                storage.PARTITION_KEY,
                storage.SORT_KEY,
                storage.OWNER_INDEX_PARTITION_KEY,
                storage.OWNER_INDEX_SORT_KEY,
                datasets.DATASET_OWNER_ATTRIBUTE,
                datasets.DATASET_OWNER_INDEX_SORT_KEY,
            ))
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": storage.OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": storage.OWNER_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": storage.OWNER_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            # GET /datasets: sparse, only dataset items carry its partition key.
            {
                "IndexName": datasets.DATASET_OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": datasets.DATASET_OWNER_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": datasets.DATASET_OWNER_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": storage.STREAM_VIEW_TYPE},
    }


def handler_environment(names: LocalNames, spec: functions.FunctionSpec) -> dict[str, str]:
    """The function's environment: the variables its spec names, with local values, and
    Powertools'."""
    values = {
        functions.ENV_TABLE: names.table,
        functions.ENV_BUCKET: names.bucket,
        functions.ENV_STATE_MACHINE_ARN: names.state_machine_arn,
    }
    return functions.environment(spec, values)


def function_specs(names: LocalNames) -> list[dict[str, Any]]:
    """create_function arguments, without the code (see `lambda_package`).

    The runtime is declared as deployed; the workers run this environment's interpreter
    whatever it says (`runtime.LambdaRuntime`).
    """
    return [
        {
            "FunctionName": names.function_name(spec.key),
            "Description": spec.description,
            "Runtime": spec.runtime,
            "Handler": spec.handler,
            "Role": names.role_arn("lambda"),
            "MemorySize": spec.memory_mb,
            "Timeout": spec.timeout_s,
            "Environment": {"Variables": handler_environment(names, spec)},
        }
        for spec in functions.FUNCTIONS
    ]


# A dataset's upload starts its build: the bucket's ObjectCreated events for the upload keys
# (`contracts.datasets.upload_key`: under DATASETS_PREFIX, ending in UPLOAD_SUFFIX) go to the
# datasets function, as the CDK stack's notification sends them (`s3_events.py` delivers them).
UPLOAD_SUFFIX = datasets.upload_key("{id}").rsplit("/", 1)[-1]


def bucket_notification_spec(names: LocalNames) -> dict[str, Any]:
    function_arn = (f"arn:aws:lambda:{names.region}:{names.account}:function:"
                    f"{names.function_name(functions.DATASETS.key)}")
    return {
        "Bucket": names.bucket,
        "NotificationConfiguration": {
            "LambdaFunctionConfigurations": [{
                "Id": "dataset-uploads",
                "LambdaFunctionArn": function_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [
                    {"Name": "prefix", "Value": datasets.DATASETS_PREFIX},
                    {"Name": "suffix", "Value": UPLOAD_SUFFIX},
                ]}},
            }],
        },
    }


def event_source_mapping_spec(names: LocalNames, stream_arn: str) -> dict[str, Any]:
    return {
        "EventSourceArn": stream_arn,
        "FunctionName": names.function_name(functions.STREAM.key),
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 10,
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(storage.STREAM_FILTER_PATTERN)}]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }


def definition_substitutions(names: LocalNames, instance_count: int = 1) -> dict[str, str]:
    """Local values for the ASL file's `${Placeholders}`, as CDK's definition substitutions;
    `instance_count` the stack's InstanceCount (OPENCOMPOSER_INSTANCE_COUNT, `stack.py`)."""
    return {
        "JobsTable": names.table,
        "ArtifactsBucket": names.bucket,
        "TrainingImage": names.training_image,
        "SageMakerRoleArn": names.role_arn("training"),
        "TrainingJobPrefix": names.training_job_prefix,
        training.REGION_PLACEHOLDER: names.region,
        "InstanceType": "ml.m5.large",
        "InstanceCount": str(instance_count),
        "VolumeSizeInGB": "10",
        "MaxRuntimeSeconds": str(MAX_RUNTIME_SECONDS),
        "UseSpotInstances": json.dumps(USE_SPOT_INSTANCES),
        "SpotWaitSeconds": str(SPOT_WAIT_SECONDS),
    }


def state_machine_definition(names: LocalNames, instance_count: int = 1) -> str:
    """The ASL file with its placeholders filled, as CloudFormation fills them; a placeholder
    the states use without a local value is a ValueError (it would break the state machine)."""
    definition = render(ASL_PATH.read_text(), definition_substitutions(names, instance_count))
    missing = placeholders(definition)
    if missing:
        raise ValueError(f"{ASL_PATH.name}: no local value for placeholder(s) {', '.join(sorted(missing))}")
    return definition


def resource_specs(names: LocalNames | None = None) -> dict[str, Any]:
    """Everything the local stack creates, as data (for the infra tests' comparison)."""
    names = names or LocalNames()
    stream_arn = f"arn:aws:dynamodb:{names.region}:{names.account}:table/{names.table}/stream/local"
    return {
        "table": table_spec(names),
        "bucket": {"Bucket": names.bucket},
        "functions": function_specs(names),
        "event_source_mapping": event_source_mapping_spec(names, stream_arn),
        "bucket_notification": bucket_notification_spec(names),
        "state_machine": {
            "name": names.state_machine,
            "definition_substitutions": definition_substitutions(names),
        },
    }


def lambda_package(spec: functions.FunctionSpec = functions.API, root: Path = REPO_ROOT) -> bytes:
    """A function's code as a zip: `spec.packages()` under their import names (the zip asset's
    packages, or the compose image's, `gan` included); dependencies come from the venv."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, package in spec.packages().items():
            for path in sorted((root / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".txt"):
                    archive.write(path, Path(package) / path.relative_to(root / folder))
    return buffer.getvalue()


# --- creation ------------------------------------------------------------------------------------


@dataclass
class CreatedResources:
    names: LocalNames
    stream_arn: str
    state_machine_arn: str
    mapping_uuid: str


_ASSUME = {
    "lambda": "lambda.amazonaws.com",
    "states": "states.amazonaws.com",
    "training": "sagemaker.amazonaws.com",
}


def create_all(
    session: Any,
    endpoint_url: str,
    names: LocalNames | None = None,
    before_mapping: Callable[[Callable[[str], Any]], None] | None = None,
    instance_count: int = 1,
) -> CreatedResources:
    """Create every resource in moto (`session`: a boto3 Session with the fake credentials).
    `before_mapping(client)` runs once the table and the bucket exist and before the stream's
    event-source mapping does: what it writes starts no workflow (a snapshot restored)."""
    names = names or LocalNames()

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, region_name=names.region)

    iam = client("iam")
    for role, service in _ASSUME.items():
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        iam.create_role(RoleName=f"{names.prefix}-{role}", AssumeRolePolicyDocument=json.dumps(policy))

    dynamodb = client("dynamodb")
    table = dynamodb.create_table(**table_spec(names))["TableDescription"]
    client("s3").create_bucket(Bucket=names.bucket)

    definition = state_machine_definition(names, instance_count)
    state_machine_arn = client("stepfunctions").create_state_machine(
        name=names.state_machine, definition=definition, roleArn=names.role_arn("states")
    )["stateMachineArn"]

    lam = client("lambda")
    for spec, arguments in zip(functions.FUNCTIONS, function_specs(names), strict=True):
        lam.create_function(Code={"ZipFile": lambda_package(spec)}, **arguments)
    if before_mapping is not None:
        before_mapping(client)
    client("s3").put_bucket_notification_configuration(**bucket_notification_spec(names))
    mapping = lam.create_event_source_mapping(**event_source_mapping_spec(names, table["LatestStreamArn"]))
    return CreatedResources(
        names=names,
        stream_arn=table["LatestStreamArn"],
        state_machine_arn=state_machine_arn,
        mapping_uuid=mapping["UUID"],
    )
