"""S3 event notifications to Lambda, delivered asynchronously, as S3 invokes a function.

moto 5.2.5 does deliver a bucket's `LambdaFunctionConfigurations` (moto/s3/notifications.py:
`send_event` → `_invoke_awslambda` → the function's `invoke`, which the local runtime serves),
applying the configuration's events and prefix/suffix filter, but inside the request that wrote
the object: a dataset's upload would wait for its whole build. `S3EventDelivery.install`
replaces `_invoke_awslambda` with a queue and a thread that invokes the function, retrying a
failed invocation twice as Lambda's asynchronous invocation does; nothing else changes.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Lambda's asynchronous invocation: two retries after a function error, a minute then two
# apart on AWS; shorter here, the local stack has no throttling to wait out.
RETRIES = 2
RETRY_DELAYS_S = (1.0, 2.0)

_Event = tuple[str, Any, str, str]  # account, event body, function ARN, region


class S3EventDelivery:
    def __init__(self, retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self.retry_delays_s = retry_delays_s
        self._queue: queue.Queue[_Event | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._original: Callable[..., Any] | None = None
        self._idle = threading.Event()
        self._idle.set()

    def install(self) -> None:
        from moto.s3 import notifications

        self._original = notifications._invoke_awslambda
        delivery = self

        def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            delivery._idle.clear()
            delivery._queue.put((account_id, event_body, fn_arn, region_name))

        notifications._invoke_awslambda = _invoke_awslambda
        self._thread = threading.Thread(target=self._deliver, name="s3-event-delivery", daemon=True)
        self._thread.start()

    def uninstall(self, timeout_s: float = 5.0) -> None:
        from moto.s3 import notifications

        if self._original is not None:
            notifications._invoke_awslambda = self._original
            self._original = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def wait_idle(self, timeout_s: float) -> bool:
        """Whether every queued event was delivered within `timeout_s` (for tests)."""
        return self._idle.wait(timeout_s)

    def _deliver(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._invoke(*event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the delivery of the next
                log.exception("S3 event delivery failed")
            if self._queue.empty():
                self._idle.set()

    def _invoke(self, account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        from moto.awslambda.utils import get_backend

        function = get_backend(account_id, region_name).get_function(fn_arn)
        for attempt in range(RETRIES + 1):
            headers: dict[str, str] = {}
            function.invoke(json.dumps(event_body), {}, headers)
            if "x-amz-function-error" not in headers:
                return
            if attempt < RETRIES:
                log.warning("S3 event: %s failed, retrying", fn_arn)
                time.sleep(self.retry_delays_s[min(attempt, len(self.retry_delays_s) - 1)])
        log.error("S3 event: %s failed %d times; dropped", fn_arn, RETRIES + 1)


INTERRUPTED_BUILD = "the local stack stopped while this dataset was being built: upload the zip again"


def end_interrupted_builds(dynamodb: Any, table: str) -> int:
    """After a restart from a snapshot: every dataset restored BUILDING ends FAILED (its build
    died with the stack, and no event will come for it again), conditionally on still being
    BUILDING; returns how many. On AWS the next retry of the event ends such a build."""
    from contracts import datasets, storage
    from contracts.timestamps import utc_timestamp

    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table, FilterExpression=f"{storage.ITEM_TYPE} = :dataset AND #s = :building",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":dataset": {"S": datasets.DATASET_ITEM},
                                   ":building": {"S": datasets.BUILDING}})
    ended = 0
    for item in (item for page in pages for item in page["Items"]):
        try:
            dynamodb.update_item(
                TableName=table,
                Key={k: item[k] for k in (storage.PARTITION_KEY, storage.SORT_KEY)},
                UpdateExpression="SET #s = :failed, failure_reason = :reason, updated_at = :now",
                ConditionExpression="#s = :building",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":failed": {"S": datasets.FAILED}, ":building": {"S": datasets.BUILDING},
                    ":reason": {"S": INTERRUPTED_BUILD}, ":now": {"S": utc_timestamp()}})
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue
        ended += 1
    return ended
