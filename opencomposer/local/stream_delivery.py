"""DynamoDB-stream event-source mappings, delivered asynchronously with partial-batch retries.

moto runs a table's event-source mappings inside `put_item`, so a POST would wait for the stream
handler. `StreamDelivery.install` replaces moto's `send_dynamodb_items`: records are queued and a
poller thread per mapping invokes the function (through moto's Lambda, so in the local runtime),
honouring `BatchSize`, `Enabled`, `MaximumRetryAttempts` and `batchItemFailures` (retrying from
the first failed record, as Lambda does), so nothing is lost.

The stream keeps its records, as DynamoDB's does for 24 hours, so GetRecords reads them back
(the redrive does, from a failed batch's sequence numbers). moto 5.2.5's `StreamShard.add` hands
a table's mappings every record it holds and empties the shard once a delivery answers, and so
numbers every record after that the same; `install` replaces it: each record gets the next
sequence number, is kept, and only it goes to the mappings; records older than 24 hours are
dropped from the shard's start (its TRIM_HORIZON moves past them).

Requests first: on AWS the stream's Lambda, Step Functions and SageMaker have machines of their
own; here the pipeline a batch starts (StartExecution, the state machine, CreateTrainingJob) runs
in the same process and on the same CPUs as the API's requests. Given `busy` (the front door's
"requests in flight"), a ready batch waits while requests are being served, at most
`max_yield_s` (1 s, like a short batching window), so a burst of submissions is answered
before the pipelines it starts (measured: `python -m bench burst`, README).
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

    def __init__(
        self,
        max_backoff_s: float = 5.0,
        busy: Callable[[], bool] | None = None,
        max_yield_s: float = 1.0,
    ) -> None:
        self.max_backoff_s = max_backoff_s
        self.busy = busy
        self.max_yield_s = max_yield_s
        self._queues: dict[tuple[str, str], queue.Queue[dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None
        self._original_add: Callable[..., Any] | None = None

    def install(self) -> None:
        from moto.awslambda.models import LambdaBackend
        from moto.dynamodb.models.table import StreamShard

        delivery = self
        self._original = LambdaBackend.send_dynamodb_items
        self._original_add = StreamShard.add

        def send_dynamodb_items(backend: Any, function_arn: str, items: list[Any], source: str) -> str:
            delivery.enqueue(backend, function_arn, items, source)
            return "queued"

        LambdaBackend.send_dynamodb_items = send_dynamodb_items  # type: ignore[method-assign,assignment]
        StreamShard.add = _add_and_keep  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaBackend
        from moto.dynamodb.models.table import StreamShard

        if self._original is not None:
            LambdaBackend.send_dynamodb_items = self._original  # type: ignore[method-assign]
            StreamShard.add = self._original_add  # type: ignore[method-assign,assignment]
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
            self._yield_to_requests()
            # Disabled while this thread waited: the records wait for the re-enable.
            esm = _mapping(backend, function_arn, source)
            if esm is None or not esm.enabled:
                continue
            pending = self._deliver(backend, function_arn, esm, pending)

    def _yield_to_requests(self) -> None:
        """Wait while `busy()`, at most `max_yield_s` (module docstring: requests first)."""
        if self.busy is None:
            return
        deadline = time.monotonic() + self.max_yield_s
        while self.busy() and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.02)

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


# How long a stream keeps a record (DynamoDB Streams: 24 hours).
RETENTION_S = 24 * 3600


def _add_and_keep(shard: Any, old: Any, new: Any) -> None:
    """`StreamShard.add`, keeping the shard's records (module docstring). Called under the table's
    writes, which `dynamodb_transactions` serialises."""
    from moto.awslambda.utils import get_backend
    from moto.dynamodb.models.table import StreamRecord

    now = time.monotonic()
    kept_since = getattr(shard, "kept_since", [])  # each kept record's time, oldest first
    expired = next((i for i, added in enumerate(kept_since) if now - added < RETENTION_S), len(kept_since))
    if expired:
        del shard.items[:expired], kept_since[:expired]
        shard.starting_sequence_number += expired  # the trim horizon: moto reads from it
    event = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    view = shard.table.stream_specification["StreamViewType"]
    sequence_number = shard.starting_sequence_number + len(shard.items)
    record = StreamRecord(shard.table, view, event, old, new, sequence_number)
    shard.items.append(record)
    kept_since.append(now)
    shard.kept_since = kept_since
    for arn, esm in shard.table.lambda_event_source_mappings.items():
        lambdas = get_backend(shard.account_id, arn.split(":")[3])
        lambdas.send_dynamodb_items(arn, [record], esm.event_source_arn)


def _mapping(backend: Any, function_arn: str, source: str) -> Any:
    for esm in backend.list_event_source_mappings(source, None):
        if esm.function_arn == function_arn:
            return esm
    return None
