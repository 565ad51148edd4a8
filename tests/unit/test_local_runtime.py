"""The local Lambda runtime and stream delivery, on moto's server with a tiny handler of our own."""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from opencomposer.local.runtime import LambdaRuntime
from opencomposer.local.stream_delivery import StreamDelivery

CONCURRENCY = 2  # workers per function at most

HANDLER_SOURCE = '''
import json, os, pathlib, time

def handle(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    print("handled", json.dumps(event))
    return {
        "pid": os.getpid(),
        "table": os.environ.get("TABLE"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "event": event,
    }

def span(event, context):
    """When this invocation ran, and where."""
    started = time.time()
    time.sleep(event["sleep"])
    return {"pid": os.getpid(), "started": started, "ended": time.time()}

def where(event, context):
    """Where a package the working tree also has was imported from."""
    import lambdas
    return {"lambdas": lambdas.__file__, "task_root": os.environ["LAMBDA_TASK_ROOT"]}

def stream(event, context):
    """Fails each record once (batchItemFailures), then records it as processed."""
    seen = pathlib.Path(os.environ["SEEN_DIR"])
    deadline = time.time() + 20
    while not (seen / "release").exists() and time.time() < deadline:
        time.sleep(0.05)  # the test releases the handler only after its puts returned
    failures = []
    for record in event["Records"]:
        key = record["dynamodb"]["Keys"]["pk"]["S"]
        marker = seen / ("tried-" + key)
        if not marker.exists():
            marker.touch()
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            continue
        (seen / ("done-" + key)).touch()
    return {"batchItemFailures": failures}
'''


@pytest.fixture()
def moto(tmp_path: Path, moto_server: str) -> Iterator[dict[str, Any]]:
    runtime = LambdaRuntime(tmp_path, tmp_path / "logs", moto_server, concurrency=CONCURRENCY)
    delivery = StreamDelivery(max_backoff_s=0.2)
    runtime.install()
    delivery.install()
    try:
        yield {"url": moto_server, "runtime": runtime, "delivery": delivery, "tmp": tmp_path}
    finally:
        delivery.uninstall()
        runtime.uninstall()


def _client(moto: dict[str, Any], service: str) -> Any:
    return boto3.client(service, endpoint_url=moto["url"], region_name="us-east-1")


def _function(
    moto: dict[str, Any],
    name: str,
    handler: str,
    env: dict[str, str],
    timeout: int = 10,
    extra_files: dict[str, str] | None = None,
) -> None:
    iam = _client(moto, "iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny.py", HANDLER_SOURCE)
        for path, text in (extra_files or {}).items():
            archive.writestr(path, text)
    _client(moto, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/fn",
        Handler=handler,
        Code={"ZipFile": buffer.getvalue()},
        Timeout=timeout,
        Environment={"Variables": env},
    )


def _invoke(moto: dict[str, Any], name: str, event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    reply = _client(moto, "lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    return json.loads(reply["Payload"].read()), reply.get("FunctionError")


def test_invoke_runs_the_handler_in_a_warm_worker_with_the_function_environment(moto: dict[str, Any]) -> None:
    _function(moto, "tiny", "tiny.handle", {"TABLE": "jobs"})

    first, error = _invoke(moto, "tiny", {"n": 1})
    second, _ = _invoke(moto, "tiny", {"n": 2})

    assert error is None
    assert first["event"] == {"n": 1} and second["event"] == {"n": 2}
    assert first["table"] == "jobs"
    assert first["endpoint"] == moto["url"]
    assert first["function_name"] == "tiny"
    assert 0 < first["remaining_ms"] <= 10_000
    assert first["pid"] == second["pid"], "the execution environment is reused"
    log = (moto["tmp"] / "logs" / "tiny.log").read_text()
    assert 'handled {"n": 2}' in log and "START RequestId" in log and "REPORT RequestId" in log


def test_invocations_at_once_run_side_by_side_up_to_the_functions_concurrency(moto: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _function(moto, "span", "tiny.span", {})
    warm, _ = _invoke(moto, "span", {"sleep": 0})

    with ThreadPoolExecutor(5) as pool:
        spans = [reply for reply, _ in pool.map(lambda _: _invoke(moto, "span", {"sleep": 0.6}), range(5))]

    # never more than CONCURRENCY at a time, and that many did run at once
    edges = sorted([(s["started"], 1) for s in spans] + [(s["ended"], -1) for s in spans])
    running, most = 0, 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == CONCURRENCY
    # in that many environments, the warm one among them
    pids = {s["pid"] for s in spans}
    assert len(pids) == CONCURRENCY and warm["pid"] in pids


def test_the_handlers_come_from_the_deployment_package_not_the_installed_project(
    moto: dict[str, Any],
) -> None:
    # Given a package that also has a `lambdas` (the project installs its own, from the tree)
    _function(moto, "where", "tiny.where", {}, extra_files={"lambdas/__init__.py": ""})

    # When the handler imports it
    payload, error = _invoke(moto, "where", {})

    # Then it is the package's copy: the code dir comes first on the worker's path
    assert error is None
    assert Path(payload["lambdas"]).parent.parent == Path(payload["task_root"])


def test_a_raising_handler_is_a_function_error_and_the_worker_survives(moto: dict[str, Any]) -> None:
    _function(moto, "tiny", "tiny.handle", {})

    payload, error = _invoke(moto, "tiny", {"fail": True})
    after, after_error = _invoke(moto, "tiny", {"n": 3})

    assert error is not None
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "asked to fail"
    assert after_error is None and after["event"] == {"n": 3}
    assert "ValueError: asked to fail" in (moto["tmp"] / "logs" / "tiny.log").read_text()


def test_a_handler_past_its_timeout_is_killed_and_the_next_call_gets_a_fresh_worker(
    moto: dict[str, Any],
) -> None:
    _function(moto, "slow", "tiny.handle", {}, timeout=1)
    before, _ = _invoke(moto, "slow", {"n": 0})

    payload, error = _invoke(moto, "slow", {"sleep": 5})
    after, _ = _invoke(moto, "slow", {"n": 1})

    assert error is not None and "timed out" in payload["errorMessage"]
    assert after["pid"] != before["pid"]


def test_stream_delivery_is_asynchronous_and_retries_reported_failures(
    moto: dict[str, Any], tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    _function(moto, "streamfn", "tiny.stream", {"SEEN_DIR": str(seen)})
    ddb = _client(moto, "dynamodb")
    table = ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    _client(moto, "lambda").create_event_source_mapping(
        EventSourceArn=table["LatestStreamArn"],
        FunctionName="streamfn",
        StartingPosition="TRIM_HORIZON",
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )

    for i in range(5):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"k{i}"}})
    # Every put returned while the handler was still held: delivery is off the request path.
    assert not list(seen.glob("done-*"))
    (seen / "release").touch()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(seen.glob("done-*"))) < 5:
        time.sleep(0.1)
    assert sorted(p.name for p in seen.glob("done-*")) == [f"done-k{i}" for i in range(5)]
    assert sorted(p.name for p in seen.glob("tried-*")) == [f"tried-k{i}" for i in range(5)]


def test_a_disabled_mapping_keeps_its_records_until_it_is_enabled_again(
    moto: dict[str, Any], tmp_path: Path
) -> None:
    seen, _ = _stream_table(moto, "t2")
    ddb, lam = _client(moto, "dynamodb"), _client(moto, "lambda")
    (mapping,) = lam.list_event_source_mappings(FunctionName="streamfn")["EventSourceMappings"]
    ddb.put_item(TableName="t2", Item={"pk": {"S": "first"}})
    _wait_for_files(seen, "done-first")

    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    ddb.put_item(TableName="t2", Item={"pk": {"S": "held"}})
    time.sleep(1.0)  # several poll rounds of the delivery thread
    assert not (seen / "tried-held").exists()

    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    _wait_for_files(seen, "done-held")


def _wait_for_files(folder: Path, name: str) -> None:
    deadline = time.monotonic() + 20
    while not (folder / name).exists():
        assert time.monotonic() < deadline, f"{name} never appeared"
        time.sleep(0.05)


def _stream_table(moto: dict[str, Any], name: str) -> tuple[Path, str]:
    """A table whose stream goes to the tiny stream handler, released: the folder where the
    handler marks each record it handled, and the stream's ARN."""
    seen = moto["tmp"] / f"seen-{name}"
    seen.mkdir()
    (seen / "release").touch()
    _function(moto, "streamfn", "tiny.stream", {"SEEN_DIR": str(seen)})
    table = _client(moto, "dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    _client(moto, "lambda").create_event_source_mapping(
        EventSourceArn=table["LatestStreamArn"], FunctionName="streamfn",
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )  # fmt: skip
    return seen, str(table["LatestStreamArn"])


def _read_stream(moto: dict[str, Any], stream_arn: str) -> list[tuple[str, str, int]]:
    """(event, key, sequence number) of every record GetRecords reads from the trim horizon."""
    streams = _client(moto, "dynamodbstreams")
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"]))
            for r in records]  # fmt: skip


def test_the_concurrency_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from opencomposer.local import runtime

    monkeypatch.delenv(runtime.ENV_CONCURRENCY, raising=False)
    assert runtime.concurrency_from_env() == runtime.DEFAULT_CONCURRENCY
    monkeypatch.setenv(runtime.ENV_CONCURRENCY, "8")
    assert runtime.concurrency_from_env() == 8
    for bad in ("0", "many", "2.5"):
        monkeypatch.setenv(runtime.ENV_CONCURRENCY, bad)
        with pytest.raises(ValueError, match="OPENCOMPOSER_LAMBDA_CONCURRENCY must be a whole number"):
            runtime.concurrency_from_env()


def test_a_batch_waits_while_requests_are_served_and_never_longer_than_its_bound(
    moto: dict[str, Any], tmp_path: Path
) -> None:
    seen, _ = _stream_table(moto, "t3")
    ddb = _client(moto, "dynamodb")
    delivery = moto["delivery"]
    serving = [True]
    delivery.busy = lambda: serving[0]

    # requests in flight, a generous bound: the batch waits for them
    delivery.max_yield_s = 60.0
    ddb.put_item(TableName="t3", Item={"pk": {"S": "waits"}})
    time.sleep(1.0)  # several poll rounds of the delivery thread
    assert not (seen / "tried-waits").exists()
    serving[0] = False
    _wait_for_files(seen, "done-waits")

    # requests never stop: the batch still goes, once its bound has passed
    serving[0] = True
    delivery.max_yield_s = 0.5
    ddb.put_item(TableName="t3", Item={"pk": {"S": "bounded"}})
    _wait_for_files(seen, "done-bounded")


def test_delivered_records_stay_in_the_stream_numbered_in_order(moto: dict[str, Any], tmp_path: Path) -> None:
    seen, stream_arn = _stream_table(moto, "kept")
    ddb = _client(moto, "dynamodb")
    ddb.put_item(TableName="kept", Item={"pk": {"S": "a"}})
    _wait_for_files(seen, "done-a")
    ddb.put_item(TableName="kept", Item={"pk": {"S": "b"}})
    _wait_for_files(seen, "done-b")
    ddb.put_item(TableName="kept", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    ddb.delete_item(TableName="kept", Key={"pk": {"S": "b"}})

    # delivered or not, each record can be read back (as the redrive reads a failed batch)
    records = _read_stream(moto, stream_arn)
    assert [(event, key) for event, key, _ in records] == [
        ("INSERT", "a"), ("INSERT", "b"), ("MODIFY", "a"), ("REMOVE", "b")]
    numbers = [number for _, _, number in records]
    assert numbers == list(range(numbers[0], numbers[0] + 4))


def test_records_older_than_a_day_leave_the_stream(moto: dict[str, Any], tmp_path: Path) -> None:
    from moto.dynamodb.models import dynamodb_backends

    from opencomposer.local import stream_delivery

    seen, stream_arn = _stream_table(moto, "aging")
    ddb = _client(moto, "dynamodb")
    ddb.put_item(TableName="aging", Item={"pk": {"S": "old"}})
    ddb.put_item(TableName="aging", Item={"pk": {"S": "older-than-a-day-too"}})
    (_, _, first), _ = _read_stream(moto, stream_arn)
    shard = dynamodb_backends["123456789012"]["us-east-1"].get_table("aging").stream_shard
    shard.kept_since[:] = [t - stream_delivery.RETENTION_S - 1 for t in shard.kept_since]  # a day passes

    ddb.put_item(TableName="aging", Item={"pk": {"S": "new"}})

    assert _read_stream(moto, stream_arn) == [("INSERT", "new", first + 2)]
