"""The local stack's S3 event delivery: moto's own bucket notifications to Lambda (filters
applied by moto), moved off the request that stored the object, with Lambda's retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from contracts import datasets, functions
from opencomposer.local.resources import LocalNames, bucket_notification_spec
from opencomposer.local.s3_events import RETRIES, S3EventDelivery

NAMES = LocalNames()


@pytest.fixture()
def invocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto with the bucket and the datasets function as the local stack creates them; each
    invocation recorded (blocked until `release` is set; `fail` makes it a function error)."""
    from moto import mock_aws
    from moto.awslambda.models import LambdaFunction

    seen: dict[str, Any] = {"events": [], "release": threading.Event(), "fail": 0, "released": []}

    def invoke(fn: Any, body: str, request_headers: Any, response_headers: dict[str, str]) -> str:
        seen["events"].append(json.loads(body))
        # released by the test once the put returned: never, if the put waited for this
        seen["released"].append(seen["release"].wait(5))
        if seen["fail"] > 0:
            seen["fail"] -= 1
            response_headers["x-amz-function-error"] = "Unhandled"
        return "{}"

    monkeypatch.setattr(LambdaFunction, "invoke", invoke)
    with mock_aws():
        boto3.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
        boto3.client("lambda").create_function(
            FunctionName=NAMES.function_name(functions.DATASETS.key), Runtime="python3.12",
            Role=f"arn:aws:iam::{NAMES.account}:role/fn", Handler=functions.DATASETS.handler,
            Code={"ZipFile": b"PK\x05\x06" + bytes(18)})
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=NAMES.bucket)
        s3.put_bucket_notification_configuration(**bucket_notification_spec(NAMES))
        delivery = S3EventDelivery(retry_delays_s=(0.01,))
        delivery.install()
        seen["delivery"] = delivery
        try:
            yield seen
        finally:
            seen["release"].set()
            delivery.uninstall()


def test_an_upload_returns_while_its_build_still_runs_and_the_build_gets_the_event(
    invocations: dict[str, Any],
) -> None:
    key = datasets.upload_key("a" * 32)

    boto3.client("s3").put_object(Bucket=NAMES.bucket, Key=key, Body=b"PK")

    # the put has returned, and the invocation it started is under way, held by the test
    deadline = time.monotonic() + 10
    while not invocations["events"]:
        assert time.monotonic() < deadline, "no invocation"
        time.sleep(0.01)
    assert not invocations["release"].is_set()
    invocations["release"].set()
    assert invocations["delivery"].wait_idle(10)
    [event] = invocations["events"]
    [record] = event["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == NAMES.bucket
    assert unquote_plus(record["s3"]["object"]["key"]) == key  # S3 sends keys URL-encoded
    assert invocations["released"] == [True]  # it ran on after the put had returned


def test_only_upload_keys_start_a_build(invocations: dict[str, Any]) -> None:
    invocations["release"].set()
    s3 = boto3.client("s3")
    for key in (datasets.report_key("a" * 32), datasets.pieces_key("a" * 32), "jobs/x/input/melody.mid"):
        s3.put_object(Bucket=NAMES.bucket, Key=key, Body=b"x")

    assert invocations["delivery"].wait_idle(5)
    assert invocations["events"] == []


def test_a_failed_invocation_is_retried_as_lambda_retries_an_asynchronous_one(
    invocations: dict[str, Any],
) -> None:
    invocations["fail"] = RETRIES + 5  # fails every time
    invocations["release"].set()

    boto3.client("s3").put_object(Bucket=NAMES.bucket, Key=datasets.upload_key("b" * 32), Body=b"PK")

    assert invocations["delivery"].wait_idle(10)
    assert len(invocations["events"]) == RETRIES + 1


def test_a_restart_ends_the_builds_the_stack_was_running_failed(invocations: dict[str, Any]) -> None:
    from opencomposer.local.resources import table_spec
    from opencomposer.local.s3_events import INTERRUPTED_BUILD, end_interrupted_builds

    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**table_spec(NAMES))
    table = boto3.resource("dynamodb").Table(NAMES.table)
    for dataset_id, status in (("a" * 32, datasets.BUILDING), ("b" * 32, datasets.READY),
                               ("c" * 32, datasets.WAITING_FOR_UPLOAD)):
        table.put_item(Item={**datasets.dataset_key(dataset_id), "item_type": datasets.DATASET_ITEM,
                             "dataset_id": dataset_id, "status": status})
    table.put_item(Item={"pk": "JOB#x", "sk": "JOB", "item_type": "job", "status": datasets.BUILDING})

    assert end_interrupted_builds(dynamodb, NAMES.table) == 1

    found = {item["pk"]: item for item in table.scan()["Items"]}
    assert found[datasets.dataset_key("a" * 32)["pk"]]["status"] == datasets.FAILED
    assert found[datasets.dataset_key("a" * 32)["pk"]]["failure_reason"] == INTERRUPTED_BUILD
    assert found[datasets.dataset_key("b" * 32)["pk"]]["status"] == datasets.READY
    assert found[datasets.dataset_key("c" * 32)["pk"]]["status"] == datasets.WAITING_FOR_UPLOAD
    assert found["JOB#x"]["status"] == datasets.BUILDING  # not a dataset: not touched
