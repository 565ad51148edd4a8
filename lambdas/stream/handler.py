"""DynamoDB stream → Step Functions: one execution per new job, named after the job.

Acts only on the INSERT of a job item. On AWS the event source's filter already drops the
rest; the handler checks again because moto stores filters without applying them. A record
that fails is reported in `batchItemFailures` (partial batch response), so Lambda retries it
alone. A failure no retry can fix (a malformed job, an execution Step Functions refuses) also
ends the job FAILED with the reason, conditionally, so no job waits in SUBMITTED for ever. A
transient failure (throttling, an outage) is retried by the event source until its retry limit,
then goes to the on-failure destination (the DLQ on AWS): a record of the batch's shard and
sequence numbers, not the records. The redrive Lambda (`lambdas/redrive/handler.py`) reads those
records back from the stream and tries each job's start once more through `start_job`; a job
that still cannot start ends FAILED with a reason, so no job waits in SUBMITTED. A duplicate
delivery is harmless: the execution name is the job id, so StartExecution answers
ExecutionAlreadyExists, which counts as success.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from contracts import storage
from lambdas.common.dal import JobsRepository, client
from lambdas.common.env import stream_env
from lambdas.common.models import Hyperparameters, plain

logger = Logger(service="opencomposer-stream")
# A batch whose records all failed is reported record by record too, not raised: the same
# retry on AWS, and one shape of answer for the local runtime.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


# StartExecution answers that no retry changes.
PERMANENT_START_ERRORS = frozenset(
    {
        "ValidationException",
        "InvalidArn",
        "InvalidName",
        "InvalidExecutionInput",
        "StateMachineDoesNotExist",
        "StateMachineDeleting",
        "AccessDeniedException",
    }
)


class MalformedJobRecord(ValueError):
    """A job INSERT without what the state machine needs: retrying cannot fix it."""


def is_job_insert(record: DynamoDBRecord) -> bool:
    """storage.STREAM_FILTER_PATTERN, evaluated here."""
    if record.raw_event.get("eventName") != "INSERT":
        return False
    image = (record.raw_event.get("dynamodb") or {}).get("NewImage") or {}
    return image.get(storage.ITEM_TYPE) == {"S": storage.JOB_ITEM}


def execution_input(job: dict[str, Any]) -> dict[str, Any]:
    """What the state machine reads: the job id and the hyperparameters as SageMaker strings."""
    job = plain(job)
    job_id = job.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise MalformedJobRecord("the job item has no job_id")
    try:
        hyperparameters = Hyperparameters.model_validate(job.get("hyperparameters", {}))
    except ValueError as e:
        raise MalformedJobRecord(f"job {job_id}: bad hyperparameters ({e})") from e
    return {"job_id": job_id, "hyperparameters": hyperparameters.as_sagemaker()}


def record_handler(record: DynamoDBRecord) -> None:
    if not is_job_insert(record):
        logger.debug("ignored record", event_name=record.raw_event.get("eventName"))
        return
    start_job(record.dynamodb.new_image if record.dynamodb else {})


def start_job(job: dict[str, Any]) -> None:
    """Starts the job's execution; ExecutionAlreadyExists counts as started. What no retry can
    fix (MalformedJobRecord, a PERMANENT_START_ERRORS answer) ends the job FAILED, then raises;
    a transient ClientError is raised as is, for the caller to retry or settle
    (lambdas/redrive/handler.py)."""
    try:
        payload = execution_input(job)
    except MalformedJobRecord as e:
        _fail_for_good(job.get("job_id"), f"the job could not be started: {e}")
        raise
    job_id = payload["job_id"]
    try:
        client("stepfunctions").start_execution(
            stateMachineArn=stream_env().state_machine_arn, name=job_id, input=json.dumps(payload)
        )
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code == "ExecutionAlreadyExists":
            logger.info("execution already started", job_id=job_id)
            return
        logger.error("could not start the execution", job_id=job_id, cause=str(e))
        if code in PERMANENT_START_ERRORS:
            _fail_for_good(job_id, f"the training workflow could not be started ({code}): {e}")
        raise
    logger.info("execution started", job_id=job_id)


def _fail_for_good(job_id: Any, reason: str) -> None:
    if not isinstance(job_id, str) or not job_id:
        return  # no job to end: the record is reported and goes to the DLQ
    status = JobsRepository(stream_env().table_name).fail_unstarted(job_id, reason)
    if status:
        logger.error("job status changed", job_id=job_id, status=status, cause=reason)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
