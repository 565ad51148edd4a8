"""DynamoDB stream → Step Functions: one execution per new job (`lambdas/common/starting.py`).

Acts only on the INSERT of a job item (on AWS the event source's filter already drops the rest).
A record that fails is reported in `batchItemFailures` (partial batch response), so Lambda
retries it alone. A transient failure (throttling, an outage) is retried by the event source
until its retry limit, then goes to the on-failure destination (the DLQ on AWS), which the
redrive handler (`lambdas/redrive/handler.py`) settles.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common.starting import is_job_insert, start_job

logger = Logger(service="opencomposer-stream")
# A batch whose records all failed is reported record by record too, not raised: the same
# retry on AWS, and one shape of answer for the local runtime.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def record_handler(record: DynamoDBRecord) -> None:
    if not is_job_insert(record):
        logger.debug("ignored record", event_name=record.raw_event.get("eventName"))
        return
    start_job(record.dynamodb.new_image if record.dynamodb else {}, logger)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
