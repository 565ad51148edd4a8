"""moto fixtures: for the handler and state-machine tests, the Jobs table (with its owner index
and stream), the artifacts bucket, and the handlers' environment, all in moto's decorator mode
with Step Functions execution switched on; for the local stack's pieces, moto's server."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from contracts import deployment, events, functions, routes, storage
from lambdas.common import dal, env

TABLE = "jobs-test"
BUCKET = "artifacts-test"
TRAINING_JOB_PREFIX = "opencomposer-test"


@dataclass
class FakeContext:
    """What the Lambda runtime hands a handler (Powertools' logger reads these)."""

    function_name: str = "api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        f"arn:aws:lambda:{deployment.LOCAL_REGION}:{deployment.LOCAL_ACCOUNT}:function:api"
    )
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _clear_caches() -> None:
    dal.client.cache_clear()
    dal.table.cache_clear()
    env.api_env.cache_clear()
    env.compose_env.cache_clear()
    env.stream_env.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(functions.ENV_TABLE, TABLE)
    monkeypatch.setenv(functions.ENV_BUCKET, BUCKET)
    monkeypatch.setenv(
        functions.ENV_STATE_MACHINE_ARN,
        f"arn:aws:states:{deployment.LOCAL_REGION}:{deployment.LOCAL_ACCOUNT}:stateMachine:training",
    )
    from moto import mock_aws  # here, so the other unit tests do not pay for importing moto

    _clear_caches()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        _create_resources()
        yield
    _clear_caches()


def _create_resources() -> None:
    """The jobs table exactly as the local stack creates it (keys, index, stream from settings)."""
    from opencomposer.local.resources import LocalNames, table_spec

    boto3.client("dynamodb").create_table(**{**table_spec(LocalNames()), "TableName": TABLE})
    boto3.client("s3").create_bucket(Bucket=BUCKET)


@contextmanager
def failing_calls(
    failing: dict[str, str], only: Callable[[dict[str, Any]], bool] | None = None
) -> Iterator[None]:
    """These operations answer these error codes (where `only(params)` holds); the rest stays moto."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call

    def patched(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation in failing and (only is None or only(params)):
            error = {"Code": failing[operation], "Message": "injected by the test"}
            raise ClientError({"Error": error}, operation)
        return real(self, operation, params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", patched)
        yield


@pytest.fixture()
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port, as the local stack runs it; yields its URL."""
    import urllib.request

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=5)
        server.stop()


# --- the api handler, called as API Gateway would -------------------------------------------
@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any


def call_api(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    owner: str | None = deployment.LOCAL_OWNER,
    base64_body: bool = False,
) -> ApiResponse:
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    all_headers = dict(headers or {})
    if raw_body is not None and not any(k.lower() == "content-type" for k in all_headers):
        all_headers["Content-Type"] = "application/json"
    raw_path = f"{path}?{urlencode(query)}" if query else path
    data = raw_body.encode() if raw_body is not None else b""
    event = events.api_gateway_event(method, raw_path, all_headers, data, stage="v1", owner=owner)
    if base64_body and data:  # API Gateway base64-encodes what it takes for binary
        event["body"], event["isBase64Encoded"] = base64.b64encode(data).decode(), True
    # The function API Gateway's method integrates with (the api, or the compose function).
    if routes.function_for(event["httpMethod"], event["resource"]) == functions.COMPOSE.key:
        from lambdas.compose.handler import lambda_handler
    else:
        from lambdas.api.handler import lambda_handler
    response = lambda_handler(event, FakeContext())
    text = response.get("body")
    if text and response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return ApiResponse(
        status=response["statusCode"],
        headers=response.get("headers") or {},
        body=json.loads(text) if text else None,
    )


def table_items() -> list[dict[str, Any]]:
    return boto3.resource("dynamodb").Table(TABLE).scan()["Items"]


def bucket_keys() -> list[str]:
    return [obj["Key"] for obj in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def put_job_item(job_id: str, status: str, owner: str = deployment.LOCAL_OWNER, **extra: Any) -> None:
    """A job as it looks later in its life (written by the state machine and the container)."""
    now = "2026-11-27T15:00:00.000Z"
    boto3.resource("dynamodb").Table(TABLE).put_item(
        Item={
            storage.PARTITION_KEY: storage.job_pk(job_id),
            storage.SORT_KEY: storage.JOB_SORT_KEY_VALUE,
            storage.ITEM_TYPE: storage.JOB_ITEM,
            "job_id": job_id,
            "owner": owner,
            "status": status,
            "created_at": extra.pop("created_at", now),
            "updated_at": now,
            "hyperparameters": {
                "epochs": 2,
                "learning_rate": Decimal("0.001"),
                "update_ratio": 5,
                "batch_size": 8,
                "seed": 0,
            },
            "melody": {"sample": "twinkle-twinkle"},
            **extra,
        }
    )


# --- the stream handler, called as the event source mapping would ------------------------------
def stream_records() -> list[dict[str, Any]]:
    """Everything the table's stream holds, shaped as Lambda delivers it."""
    dynamodb = boto3.client("dynamodb")
    streams = boto3.client("dynamodbstreams")
    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += [
            events.stream_record(record, stream_arn)
            for record in streams.get_records(ShardIterator=iterator)["Records"]
        ]
    return records


def deliver(records: list[dict[str, Any]]) -> Any:
    from lambdas.stream.handler import lambda_handler

    return lambda_handler({"Records": records}, FakeContext(function_name="stream"))


# --- a finished job with a model to compose with ---------------------------------------------------
def model_archive(seed: int = 0) -> bytes:
    """model.tar.gz as SageMaker packs SM_MODEL_DIR: a small random generator's `model.pt`, in
    the dict gan.train writes."""
    import io
    import tarfile

    import torch

    from contracts import training
    from gan.model import Generator, ModelConfig

    torch.manual_seed(seed)
    generator = Generator(ModelConfig(generator_channels=(16, 16, 16), noise_channels=4,
                                      critic_channels=(8, 8, 8, 8)))
    weights = io.BytesIO()
    torch.save({"generator": generator.state_dict(), "config": generator.config.to_dict()}, weights)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo(training.MODEL_FILE)
        info.size = len(weights.getvalue())
        tar.addfile(info, io.BytesIO(weights.getvalue()))
    return archive.getvalue()


# Bach's values as a training records them (`reference` on the job item); any plausible numbers.
REFERENCE = {
    **{f"{voice}_{metric}": value for voice in ("alto", "tenor", "bass")
       for metric, value in (("empty_bar_rate", 0.01), ("in_key_ratio", 0.95), ("single_note_rate", 1.0),
                             ("polyphony", 1.0), ("pitch_classes_per_bar", 3.1))},
    "consonance": 0.918, "voice_crossing": 0.01, "parallel_fifths_octaves": 0.005,
    "empty_bar_rate": 0.01, "single_note_rate": 1.0, "polyphony": 1.0, "pitch_classes_per_bar": 3.1,
    "mean_note_length": 3.2, "in_key_ratio": 0.95, "similarity": 1.0,
    "chord_agreement": 1.0,
}


def put_trained_job(job_id: str, owner: str = deployment.LOCAL_OWNER, **extra: Any) -> str:
    """A COMPLETED job with its model in the bucket where SageMaker puts it; returns the model's key."""
    key = f"{storage.model_output_prefix(job_id)}opencomposer-test-{job_id}/output/model.tar.gz"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=model_archive())
    reference = json.loads(json.dumps(REFERENCE), parse_float=Decimal)
    put_job_item(job_id, "COMPLETED", owner=owner, model_artifact=f"s3://{BUCKET}/{key}",
                 reference=reference, compositions=["final"], **extra)
    return key
