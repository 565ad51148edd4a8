"""The stream trigger's dead-letter queue → one more start for each job its batch held (AWS only).

When the stream Lambda's event source gives up on a batch (a transient failure that outlasted
its retries or its maximum record age), Lambda sends the on-failure destination a record that
names the batch, not its records: `{"requestContext": {"condition": ...}, "DDBStreamBatchInfo":
{"streamArn", "shardId", "startSequenceNumber", "endSequenceNumber", "batchSize", ...}}`. This
handler reads those records back from the stream (GetShardIterator AT_SEQUENCE_NUMBER, then
GetRecords up to the end sequence number) and hands each job INSERT to the stream handler's
`start_job` once more (ExecutionAlreadyExists counts as started, so the batch's records that had
succeeded are harmless). A job that still cannot start is ended by the conditional
`fail_unstarted`: FAILED with a reason a person can act on, or STOPPED if it was stopped
meanwhile; a job that has moved on keeps its status. So no job stays SUBMITTED.

A stream keeps records 24 hours. A message whose records are gone cannot name its jobs: it is
logged as an ERROR with the batch and reported as a batch item failure, so SQS moves it, after
its receive count, to the queue's own dead-letter queue, whose alarm calls an operator (and so
does any other message this handler cannot settle). Nothing reaches this queue locally: the
local stream delivery retries with backoff until a record succeeds.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.common.dal import JobsRepository, client
from lambdas.common.env import stream_env
from lambdas.stream.handler import MalformedJobRecord, is_job_insert, start_job

logger = Logger(service="opencomposer-redrive")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Stream answers that mean the batch's records can no longer be read: older than the stream's
# 24 hours, or the stream itself is gone (disabled, table deleted).
GONE_ERRORS = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})
# GetRecords may answer empty pages before it reaches a shard's later records (DynamoDB Streams
# API reference, GetRecords); bounded so that a message never spins until the Lambda timeout.
MAX_EMPTY_PAGES = 10


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


class RecordsGone(Exception):
    """The batch's records are no longer in the stream."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _as_delivered(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda delivers to the stream handler."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if created is not None and hasattr(created, "timestamp"):  # boto3 parses it, Lambda sends epoch seconds
        stream["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": stream, "eventSourceARN": stream_arn}


def read_batch(batch: StreamBatch) -> list[dict[str, Any]]:
    """The batch's records, from its start to its end sequence number (both included)."""
    streams = client("dynamodbstreams")
    end = int(batch.end_sequence_number)
    records: list[dict[str, Any]] = []
    empty_pages = 0
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch.stream_arn,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=batch.start_sequence_number,
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                sequence = int(record["dynamodb"]["SequenceNumber"])
                if sequence > end:
                    return records
                records.append(_as_delivered(record, batch.stream_arn))
                if sequence == end:
                    return records
            empty_pages = 0 if page["Records"] else empty_pages + 1
            if empty_pages > MAX_EMPTY_PAGES:
                raise RuntimeError(f"the stream gave no records up to {end} after {empty_pages} empty reads")
            iterator = page.get("NextShardIterator")
    except ClientError as e:
        if _code(e) in GONE_ERRORS:
            raise RecordsGone(f"{_code(e)}: {e.response.get('Error', {}).get('Message', '')}") from e
        raise
    return records  # the shard was closed before the end sequence number: these are all there are


def redrive(record: DynamoDBRecord) -> None:
    """One more start for a job INSERT; a job that still cannot start ends, conditionally."""
    if not is_job_insert(record):
        return
    job = record.dynamodb.new_image if record.dynamodb else {}
    try:
        start_job(job)
        return
    except MalformedJobRecord as e:
        # start_job has ended the job FAILED with what is wrong with it (if it had an id at all).
        logger.error("a job record no retry can start", cause=str(e))
        return
    except ClientError as e:
        error = e.response.get("Error", {})
        reason = (
            f"the training workflow could not be started after retries ({_code(e)}: "
            f"{error.get('Message', '')}); submit the job again"
        )
    job_id = job["job_id"]  # execution_input checked it before StartExecution was called
    # Conditional: a no-op where start_job already ended the job for good (with its own reason),
    # or where the job has moved on.
    status = JobsRepository(stream_env().table_name).fail_unstarted(job_id, reason)
    if status:
        logger.error("job status changed", job_id=job_id, status=status, cause=reason)


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
    for stream_record in records:
        redrive(DynamoDBRecord(stream_record))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
