"""The redrive handler against moto: a failed stream batch, as Lambda's on-failure destination
records it, sent through a real (moto) SQS queue and read back from the Jobs table's real stream."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from contracts import deployment, storage
from lambdas.common.dal import StreamRecords
from lambdas.common.errors import RecordsGone, ServiceUnavailableError
from tests.unit.conftest import (
    TABLE,
    FakeContext,
    call_api,
    deliver,
    failing_calls,
    put_job_item,
    stream_records,
)
from tests.unit.test_stream_handler import executions, machine  # noqa: F401 (fixture)


def on_failure_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What Lambda sends the on-failure destination when it gives up on these stream records."""
    stream_arn = records[0]["eventSourceARN"]
    (shard,) = boto3.client("dynamodbstreams").describe_stream(StreamArn=stream_arn)["StreamDescription"][
        "Shards"
    ]
    return {
        "version": "1.0",
        "timestamp": "2026-11-27T21:00:00.000Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": (
                f"arn:aws:lambda:{deployment.LOCAL_REGION}:{deployment.LOCAL_ACCOUNT}:function:stream"
            ),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "DDBStreamBatchInfo": {
            "shardId": shard["ShardId"],
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-11-27T15:00:00Z",
            "approximateArrivalOfLastRecord": "2026-11-27T15:00:01Z",
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def through_the_queue(*bodies: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages as the SQS event source hands them to the redrive Lambda."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="stream-dead-letters")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert len(received) == len(bodies)
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": deployment.LOCAL_REGION,
        }
        for m in received
    ]


def redrive(messages: list[dict[str, Any]]) -> Any:
    from lambdas.redrive.handler import lambda_handler

    return lambda_handler({"Records": messages}, FakeContext(function_name="redrive"))


def job_of(job_id: str) -> dict[str, Any]:
    return call_api("GET", f"/jobs/{job_id}").body


def test_a_job_whose_batch_went_to_the_dlq_gets_its_execution_and_other_records_are_ignored(
    machine: str,  # noqa: F811
) -> None:
    # Given a job (with its idempotency item and an epoch item in the same stretch of the stream)
    # whose start was throttled until the event source gave up on the batch
    job_id = call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 3}},
                      headers={"Idempotency-Key": "k"}).body["job_id"]
    boto3.resource("dynamodb").Table(TABLE).put_item(
        Item={"pk": storage.job_pk(job_id), "sk": storage.epoch_sk(1), "item_type": "epoch", "epoch": 1}
    )
    records = stream_records()
    assert len(records) == 3
    with failing_calls({"StartExecution": "ThrottlingException"}):
        assert deliver(records)["batchItemFailures"]
    assert executions(machine) == []

    # When the redrive Lambda receives the on-failure record
    response = redrive(through_the_queue(on_failure_record(records)))

    # Then the job has its one execution, with the input the stream handler gives
    assert response == {"batchItemFailures": []}
    [execution] = executions(machine)
    assert execution["name"] == job_id
    assert execution["input"]["job_id"] == job_id and execution["input"]["hyperparameters"]["epochs"] == "3"
    # ... and a second delivery of the same message starts nothing twice
    assert redrive(through_the_queue(on_failure_record(records))) == {"batchItemFailures": []}
    assert [e["name"] for e in executions(machine)] == [job_id]


def test_a_job_that_still_cannot_start_ends_failed_with_a_reason(
    machine: str,  # noqa: F811
) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    message = through_the_queue(on_failure_record(stream_records()))

    with failing_calls({"StartExecution": "ThrottlingException"}):
        response = redrive(message)

    assert response == {"batchItemFailures": []}  # settled: nothing is left to retry
    assert executions(machine) == []
    job = job_of(job_id)
    assert job["status"] == "FAILED"
    assert "could not be started after retries (ThrottlingException" in job["failure_reason"]
    assert "submit the job again" in job["failure_reason"]


def test_jobs_that_moved_on_keep_a_correct_status(machine: str) -> None:  # noqa: F811
    # Given jobs whose INSERTs are in the failed batch but which have moved on meanwhile
    starting, stopped_early, completed = "a" * 32, "b" * 32, "c" * 32
    for job_id in (starting, stopped_early, completed):
        put_job_item(job_id, "SUBMITTED")
    records = stream_records()
    table = boto3.resource("dynamodb").Table(TABLE)
    for job_id, status in ((starting, "STARTING"), (completed, "COMPLETED")):
        table.update_item(Key={"pk": storage.job_pk(job_id), "sk": "JOB"}, UpdateExpression="SET #s = :s",
                          ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": status})
    assert call_api("POST", f"/jobs/{stopped_early}/stop").status == 202  # before it ever started
    message = through_the_queue(on_failure_record(records))
    # When the redrive's start fails too
    with failing_calls({"StartExecution": "ServiceUnavailable"}):
        response = redrive(message)

    assert response == {"batchItemFailures": []}
    assert job_of(starting)["status"] == "STARTING"
    assert job_of(completed)["status"] == "COMPLETED"
    stopped = job_of(stopped_early)
    assert stopped["status"] == "STOPPED" and stopped["failure_reason"] is None


def test_a_batch_whose_records_are_gone_stays_visible_and_the_others_are_redriven(
    machine: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    lost, found = (call_api("POST", "/jobs").body["job_id"] for _ in range(2))
    records = stream_records()
    trimmed = on_failure_record(records[:1])
    messages = through_the_queue(trimmed, on_failure_record(records[1:]))
    gone = trimmed["DDBStreamBatchInfo"]["startSequenceNumber"]
    # A stream keeps records 24 hours: GetShardIterator refuses an older sequence number.
    with failing_calls({"GetShardIterator": "TrimmedDataAccessException"},
                       only=lambda params: params.get("SequenceNumber") == gone):
        response = redrive(messages)

    (lost_message,) = [m for m in messages if json.loads(m["body"]) == trimmed]
    assert response == {"batchItemFailures": [{"itemIdentifier": lost_message["messageId"]}]}
    assert [e["name"] for e in executions(machine)] == [found]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any(getattr(e, "batch", {}).get("startSequenceNumber") == gone and "SUBMITTED" in e.getMessage()
               for e in errors)
    assert job_of(lost)["status"] == "SUBMITTED"  # for the operator the alarm calls


def test_a_message_that_is_not_an_on_failure_record_is_reported(machine: str) -> None:  # noqa: F811
    messages = through_the_queue({"hello": "world"})

    assert redrive(messages) == {"batchItemFailures": [{"itemIdentifier": messages[0]["messageId"]}]}


def test_a_job_that_cannot_be_ended_yet_keeps_its_message_for_another_receive(machine: str) -> None:  # noqa: F811
    job_id = call_api("POST", "/jobs").body["job_id"]
    message = through_the_queue(on_failure_record(stream_records()))

    # When both Step Functions and DynamoDB are throttled, nothing is settled and nothing is lost
    with failing_calls({"StartExecution": "ThrottlingException", "UpdateItem": "ThrottlingException"}):
        busy = redrive(message)
    assert busy == {"batchItemFailures": [{"itemIdentifier": message[0]["messageId"]}]}
    assert job_of(job_id)["status"] == "SUBMITTED"

    # ... and the next receive, with AWS answering again, starts the job.
    assert redrive(message) == {"batchItemFailures": []}
    assert [e["name"] for e in executions(machine)] == [job_id]


def test_a_job_no_retry_can_start_is_settled_with_what_is_wrong_with_it(machine: str) -> None:  # noqa: F811
    put_job_item("d" * 32, "SUBMITTED", hyperparameters={"epochs": 0})

    response = redrive(through_the_queue(on_failure_record(stream_records())))

    assert response == {"batchItemFailures": []}
    assert executions(machine) == []
    job = job_of("d" * 32)
    assert job["status"] == "FAILED" and "epochs" in job["failure_reason"]


# --- data access: reading a failed batch back from the stream -----------------------------------
def batch_of(records: list[dict[str, Any]]) -> tuple[str, str, str, str]:
    """(stream ARN, shard id, first and last sequence number) of these records."""
    info = on_failure_record(records)["DDBStreamBatchInfo"]
    return info["streamArn"], info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]


def test_the_stream_is_read_back_from_the_first_to_the_last_sequence_number(aws: None) -> None:
    for job_id in ("a" * 32, "b" * 32, "c" * 32):
        put_job_item(job_id, "SUBMITTED")
    records = stream_records()
    assert len(records) == 3

    middle = StreamRecords().read(*batch_of(records[1:2]))
    every = StreamRecords().read(*batch_of(records))

    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert [r["dynamodb"]["SequenceNumber"] for r in middle] == sequences[1:2]
    assert [r["dynamodb"]["SequenceNumber"] for r in every] == sequences


@pytest.mark.parametrize("operation", ["GetShardIterator", "GetRecords"])
@pytest.mark.parametrize("code", ["TrimmedDataAccessException", "ResourceNotFoundException"])
def test_records_no_longer_in_the_stream_are_records_gone(aws: None, operation: str, code: str) -> None:
    put_job_item("a" * 32, "SUBMITTED")
    batch = batch_of(stream_records())

    with failing_calls({operation: code}), pytest.raises(RecordsGone, match=code):
        StreamRecords().read(*batch)


def test_a_throttled_read_is_no_loss_of_records_but_a_retry(aws: None) -> None:
    put_job_item("a" * 32, "SUBMITTED")
    batch = batch_of(stream_records())

    with failing_calls({"GetRecords": "ThrottlingException"}), pytest.raises(ServiceUnavailableError):
        StreamRecords().read(*batch)
