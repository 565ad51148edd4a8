"""The stream trigger's dead-letter queue → one more start for each job its batch held (AWS only).

When the stream Lambda's event source gives up on a batch (a transient failure that outlasted
its retries or its maximum record age), Lambda sends the on-failure destination a record that
names the batch, not its records: `{"requestContext": {"condition": ...}, "DDBStreamBatchInfo":
{"streamArn", "shardId", "startSequenceNumber", "endSequenceNumber", "batchSize", ...}}`. This
handler reads those records back from the stream and hands each job INSERT to `start_job` once
more (`lambdas/common/starting.py`: the batch's records that had succeeded are harmless). A job
that still cannot start is ended for good, so no job stays SUBMITTED.

A stream keeps records 24 hours. A message whose records are gone cannot name its jobs: it is
logged as an ERROR with the batch and reported as a batch item failure, so SQS moves it, after
its receive count, to the queue's own dead-letter queue, whose alarm calls an operator (and so
does any other message this handler cannot settle). The local stack deploys this function too,
but no batch fails for good there (the local stream delivery retries with backoff until a record
succeeds): only a message of one's own invokes it (tests/infra/test_calls_allowed.py does).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import events
from lambdas.common.dal import StreamRecords
from lambdas.common.errors import ExecutionRefusedError, ExecutionUnavailableError, RecordsGone
from lambdas.common.starting import MalformedJobRecord, end_for_good, is_job_insert, start_job

logger = Logger(service="opencomposer-redrive")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class StreamBatch(BaseModel):
    """Lambda's DDBStreamBatchInfo: which records of which shard the failed batch held."""

    model_config = ConfigDict(extra="ignore")
    stream_arn: str = Field(alias="streamArn", min_length=1)
    shard_id: str = Field(alias="shardId", min_length=1)
    start_sequence_number: str = Field(alias="startSequenceNumber", pattern=r"^\d+$")
    end_sequence_number: str = Field(alias="endSequenceNumber", pattern=r"^\d+$")
    batch_size: int = Field(alias="batchSize", ge=1)
    # Where an operator starts looking when the records are gone: jobs created around then.
    first_arrival: str | None = Field(alias="approximateArrivalOfFirstRecord", default=None)
    last_arrival: str | None = Field(alias="approximateArrivalOfLastRecord", default=None)


class FailedBatch(BaseModel):
    """The on-failure destination's message for a DynamoDB stream batch."""

    model_config = ConfigDict(extra="ignore")
    batch: StreamBatch = Field(alias="DDBStreamBatchInfo")
    request_context: dict[str, Any] = Field(alias="requestContext", default_factory=dict)


def read_batch(batch: StreamBatch) -> list[dict[str, Any]]:
    """The batch's records (RecordsGone when the stream no longer has them), as Lambda delivers
    them to the stream handler."""
    records = StreamRecords().read(
        batch.stream_arn, batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
    )
    return [events.stream_record(record, batch.stream_arn) for record in records]


def redrive(record: DynamoDBRecord) -> None:
    """One more start for a job INSERT; a job that still cannot start ends, conditionally."""
    if not is_job_insert(record):
        return
    job = record.dynamodb.new_image if record.dynamodb else {}
    try:
        start_job(job, logger)
    except (MalformedJobRecord, ExecutionRefusedError):
        pass  # start_job has ended the job for good, with what is wrong, and logged it
    except ExecutionUnavailableError as e:
        reason = (
            f"the training workflow could not be started after retries ({e.code}: {e.message}); "
            "submit the job again"
        )
        end_for_good(job["job_id"], reason, logger)  # execution_input has checked the job id


def record_handler(record: SQSRecord) -> None:
    """One on-failure record (Powertools passes it by the keyword `record`)."""
    try:
        failed = FailedBatch.model_validate_json(record.body)
    except ValidationError as e:
        logger.error("not a DynamoDB stream on-failure record", message_id=record.message_id, cause=str(e))
        raise
    batch = failed.batch.model_dump(by_alias=True)
    condition = failed.request_context.get("condition")
    try:
        records = read_batch(failed.batch)
    except RecordsGone as e:
        logger.error(
            "the failed batch's records are gone from the stream: find its jobs still SUBMITTED "
            "(created around the batch's arrival times) and submit them again",
            batch=batch, condition=condition, cause=str(e),
        )
        raise
    logger.info("redriving a failed stream batch", batch=batch, condition=condition, records=len(records))
    for delivered in records:
        redrive(DynamoDBRecord(delivered))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
