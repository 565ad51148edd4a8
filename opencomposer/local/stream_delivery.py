"""DynamoDB-stream event-source mappings, delivered asynchronously with partial-batch retries.

moto runs a table's event-source mappings inside `put_item`, so a POST would wait for the stream
handler. `StreamDelivery.install` replaces moto's `send_dynamodb_items`: records are queued and a
poller thread per mapping invokes the function (through moto's Lambda, so in the local runtime),
honouring `BatchSize`, `Enabled`, `MaximumRetryAttempts` and `batchItemFailures` (retrying from
the first failed record, as Lambda does), so nothing is lost.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from contracts import events

log = logging.getLogger(__name__)


class StreamDelivery:
    """DynamoDB-stream batches delivered off moto's request thread, with partial-batch retries.

    One poller thread per mapping, as Lambda polls each shard with one concurrent batch. Records
    are kept while a mapping is disabled (as the stream keeps them) and delivered once it is
    enabled again.
    """

    def __init__(self, max_backoff_s: float = 5.0) -> None:
        self.max_backoff_s = max_backoff_s
        self._queues: dict[tuple[str, str], queue.Queue[dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        from moto.awslambda.models import LambdaBackend

        delivery = self
        self._original = LambdaBackend.send_dynamodb_items

        def send_dynamodb_items(backend: Any, function_arn: str, items: list[Any], source: str) -> str:
            delivery.enqueue(backend, function_arn, items, source)
            return "queued"  # truthy: moto then clears the shard's pending items

        LambdaBackend.send_dynamodb_items = send_dynamodb_items  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaBackend

        if self._original is not None:
            LambdaBackend.send_dynamodb_items = self._original  # type: ignore[method-assign]
            self._original = None
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def enqueue(self, backend: Any, function_arn: str, items: list[Any], source: str) -> None:
        key = (function_arn, source)
        with self._lock:
            q = self._queues.get(key)
            if q is None:
                q = self._queues[key] = queue.Queue()
                thread = threading.Thread(
                    target=self._poll,
                    args=(backend, function_arn, source, q),
                    daemon=True,
                    name=f"stream-delivery-{function_arn.rsplit(':', 1)[-1]}",
                )
                self._threads.append(thread)
                thread.start()
        for item in items:
            q.put(events.stream_record(item.to_json(), source, region=backend.region_name))

    def _poll(self, backend: Any, function_arn: str, source: str, q: queue.Queue[dict[str, Any]]) -> None:
        pending: list[dict[str, Any]] = []
        while not self._stop.is_set():
            esm = _mapping(backend, function_arn, source)
            if esm is None or not esm.enabled:
                time.sleep(0.1)
                continue
            if not pending:
                try:
                    pending.append(q.get(timeout=0.1))
                except queue.Empty:
                    continue
            while len(pending) < int(esm.batch_size or 100):
                try:
                    pending.append(q.get_nowait())
                except queue.Empty:
                    break
            # Disabled while this thread waited for records: they wait for the re-enable.
            esm = _mapping(backend, function_arn, source)
            if esm is None or not esm.enabled:
                continue
            pending = self._deliver(backend, function_arn, esm, pending)

    def _deliver(
        self, backend: Any, function_arn: str, esm: Any, batch: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Invoke until the batch is processed; returns the records still to deliver (none)."""
        attempts = 0
        max_retries = int(esm.max_retry_attempts if esm.max_retry_attempts is not None else -1)
        reports_failures = "ReportBatchItemFailures" in (esm.function_response_types or [])
        while batch and not self._stop.is_set():
            failed_from = self._invoke(backend, function_arn, batch, reports_failures)
            if failed_from is None:
                return []
            batch = batch[failed_from:]
            attempts += 1
            if 0 <= max_retries < attempts:
                log.error("dropping %d stream records after %d retries", len(batch), max_retries)
                return []
            time.sleep(min(self.max_backoff_s, 0.2 * 2 ** (attempts - 1)))
        return batch

    @staticmethod
    def _invoke(
        backend: Any, function_arn: str, batch: list[dict[str, Any]], reports_failures: bool
    ) -> int | None:
        """Index of the first record to retry, or None when the whole batch succeeded."""
        fn = backend._lambdas.get_arn(function_arn)
        headers: dict[str, str] = {}
        raw = fn.invoke(json.dumps({"Records": batch}), {}, headers)
        if "x-amz-function-error" in headers:
            return 0
        if not reports_failures:
            return None
        try:
            response = json.loads(raw) or {}
        except (TypeError, ValueError):
            return None
        failed = {f.get("itemIdentifier") for f in response.get("batchItemFailures") or []}
        if not failed:
            return None
        # Lambda checkpoints at the lowest failed sequence number and retries from there.
        for index, record in enumerate(batch):
            if record["dynamodb"].get("SequenceNumber") in failed:
                return index
        return 0  # an identifier that matches nothing fails the whole batch, as on Lambda


def _mapping(backend: Any, function_arn: str, source: str) -> Any:
    for esm in backend.list_event_source_mappings(source, None):
        if esm.function_arn == function_arn:
            return esm
    return None
