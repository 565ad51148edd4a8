"""moto's DynamoDB under the local stack's patch: transactions all-or-nothing without copying the
table, and many requests at once without errors or lost writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from opencomposer.local import dynamodb_transactions

TABLE = "jobs"


@pytest.fixture()
def dynamodb() -> Iterator[Any]:
    dynamodb_transactions.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield client
    finally:
        client.delete_table(TableName=TABLE)  # moto's backends outlive the server
        server.stop()
        dynamodb_transactions.uninstall()


def _put(pk: str, sk: str = "job", **attrs: str) -> dict[str, Any]:
    item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}
    return {"Put": {"TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def _keys(client: Any) -> set[tuple[str, str]]:
    items = client.scan(TableName=TABLE)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]) for i in items}


def test_a_transaction_writes_all_its_items(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put("job#1"), _put("key#1", "idempotency")])
    assert _keys(dynamodb) == {("job#1", "job"), ("key#1", "idempotency")}


def test_a_failed_condition_writes_nothing_and_returns_the_item_that_failed_it(dynamodb: Any) -> None:
    # Given an idempotency item that exists already
    dynamodb.put_item(TableName=TABLE, Item=_put("key#1", "idempotency", job="a")["Put"]["Item"])

    # When a transaction puts a new job and that item (which must not exist)
    second = _put("key#1", "idempotency", job="b")
    second["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[_put("job#2"), second])

    # Then it is cancelled, saying which one failed and with what, and the job was not written
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = error["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["job"] == {"S": "a"}
    assert _keys(dynamodb) == {("key#1", "idempotency")}


def test_a_write_refused_half_way_puts_back_what_was_written(dynamodb: Any) -> None:
    # Given an existing job
    dynamodb.put_item(TableName=TABLE, Item=_put("job#1", status="OLD")["Put"]["Item"])

    # When a transaction puts a new item, then updates the job with an expression moto refuses
    # only as it applies it (adding to a string)
    update = {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": "job#1"}, "sk": {"S": "job"}},
            "UpdateExpression": "ADD #s :n",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":n": {"N": "1"}},
        }
    }
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[_put("job#2"), update])

    # Then neither write stayed
    assert _keys(dynamodb) == {("job#1", "job")}
    job = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "job#1"}, "sk": {"S": "job"}})["Item"]
    assert job["status"] == {"S": "OLD"}


def test_many_requests_at_once_neither_fail_nor_lose_writes(dynamodb: Any) -> None:
    # Given 8 threads posting jobs as transactions, 4 updating a counter item, 2 scanning
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "counter"}, "sk": {"S": "c"}, "n": {"N": "0"}})
    errors: list[BaseException] = []

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as e:  # noqa: BLE001 - collected for the assertion
                errors.append(e)

        return run

    def post(thread: int) -> None:
        for i in range(25):
            dynamodb.transact_write_items(
                TransactItems=[_put(f"job#{thread}-{i}"), _put(f"key#{thread}-{i}", "idempotency")]
            )

    def count() -> None:
        for _ in range(50):
            dynamodb.update_item(
                TableName=TABLE,
                Key={"pk": {"S": "counter"}, "sk": {"S": "c"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    def scan() -> None:
        for _ in range(20):
            dynamodb.scan(TableName=TABLE)

    threads = [threading.Thread(target=guarded(lambda t=t: post(t))) for t in range(8)]
    threads += [threading.Thread(target=guarded(count)) for _ in range(4)]
    threads += [threading.Thread(target=guarded(scan)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every request succeeded and every write is there
    assert errors == []
    keys = _keys(dynamodb)
    assert sum(1 for pk, _ in keys if pk.startswith("job#")) == 200
    assert sum(1 for pk, _ in keys if pk.startswith("key#")) == 200
    counter = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "counter"}, "sk": {"S": "c"}})["Item"]
    assert counter["n"] == {"N": "200"}
