"""Lambda without Docker: the real handlers in warm worker processes, behind moto's Lambda.

moto ends every invocation path (Invoke, event-source mappings, Step Functions' `lambda:invoke`)
in `LambdaFunction._invoke_lambda`, which would start a Docker container. `LambdaRuntime.install`
replaces that one method: the function's deployment package is unzipped once (Lambda's
`/var/task`), and one worker process per function imports the handler once (the init phase)
and then serves invocations one at a time, as a real execution environment does. Each
function's log (handler output plus Lambda's START/END/REPORT lines) lands in
`<logs>/<function name>.log`.

`StreamDelivery.install` makes moto's DynamoDB-stream event-source mappings asynchronous (moto
runs them inside `put_item`, so a POST would wait for the stream handler) and honours
`batchItemFailures`, retrying from the first failed record as Lambda does, so nothing is lost.

Run as `python -m opencomposer.local.lambda_runtime`, this module is the worker itself.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# What a worker inherits from the stack's own environment; everything else comes from the
# function's configuration, as on Lambda.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class LambdaRuntime:
    """Warm worker processes for moto's Lambda functions, one per function."""

    def __init__(self, state_dir: Path, logs_dir: Path, endpoint_url: str) -> None:
        self.code_root = state_dir / "lambda"
        self.logs_dir = logs_dir
        self.endpoint_url = endpoint_url
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    # --- moto hook ------------------------------------------------------------------------
    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction

        runtime = self
        self._original = LambdaFunction._invoke_lambda

        def _invoke_lambda(fn: Any, event: Any = None) -> tuple[str, bool, str]:
            return runtime.invoke(fn, event)

        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaFunction

        if self._original is not None:
            LambdaFunction._invoke_lambda = self._original  # type: ignore[method-assign]
            self._original = None
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    # --- invocation -------------------------------------------------------------------------
    def invoke(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        """moto's contract: (response payload, errored, log tail)."""
        worker = self._worker_for(fn)
        return worker.invoke(event if event is not None else {}, float(fn.timeout or 3))

    def prewarm(self, fn: Any) -> None:
        """Start a function's worker now, so its init phase is not paid by the first request."""
        self._worker_for(fn)

    def _worker_for(self, fn: Any) -> _Worker:
        with self._lock:  # one code extraction and one worker per function, however many callers
            config = self._config(fn)
            worker = self._workers.get(fn.function_arn)
            if worker is not None and worker.config_key == config.key and worker.alive():
                return worker
            if worker is not None:
                worker.close()
            worker = _Worker(config)
            self._workers[fn.function_arn] = worker
            return worker

    def _config(self, fn: Any) -> _WorkerConfig:
        code = fn.code_bytes or b""
        digest = hashlib.sha256(code).hexdigest()[:16]
        code_dir = self.code_root / fn.function_name / digest
        if not code_dir.exists():
            tmp = code_dir.with_name(digest + ".tmp")
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(tmp)
            tmp.rename(code_dir)
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        env.update(_FAKE_CREDENTIALS)
        env.update(
            {
                # Lambda's reserved variables
                "_HANDLER": fn.handler,
                "AWS_REGION": fn.region,
                "AWS_DEFAULT_REGION": fn.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
                "LAMBDA_TASK_ROOT": str(code_dir),
                # the AWS SDK inside the handler talks to moto
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "PYTHONPATH": os.pathsep.join([str(code_dir), *_runtime_path()]),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        return _WorkerConfig(
            function_name=fn.function_name,
            function_arn=fn.function_arn,
            handler=fn.handler,
            memory_size=int(fn.memory_size or 128),
            code_dir=code_dir,
            env=env,
            log_path=self.logs_dir / f"{fn.function_name}.log",
        )


def _runtime_path() -> list[str]:
    """Where this package lives, so the worker can run this module even without an install.

    Appended after the function's code, so the handlers always come from the deployment
    package, never from the working tree.
    """
    return [str(Path(__file__).resolve().parents[2])]


class _WorkerConfig:
    def __init__(
        self,
        function_name: str,
        function_arn: str,
        handler: str,
        memory_size: int,
        code_dir: Path,
        env: dict[str, str],
        log_path: Path,
    ) -> None:
        self.function_name = function_name
        self.function_arn = function_arn
        self.handler = handler
        self.memory_size = memory_size
        self.code_dir = code_dir
        self.env = env
        self.log_path = log_path
        self.key = json.dumps([handler, str(code_dir), sorted(env.items())])


class _Worker:
    """One execution environment: a process that imported the handler and serves invocations."""

    def __init__(self, config: _WorkerConfig) -> None:
        self.config = config
        self.config_key = config.key
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(config.log_path, "ab", buffering=0)  # noqa: SIM115 - lives with the worker
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "opencomposer.local.lambda_runtime"],
            cwd=config.code_dir,
            env=config.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            # Out of the terminal's process group: Ctrl-C stops the stack, which then ends its
            # workers; a worker whose stack died hard sees its stdin close and exits.
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self._proc.poll() is None

    def invoke(self, event: Any, timeout_s: float) -> tuple[str, bool, str]:
        with self._lock:
            request_id = str(uuid.uuid4())
            started = time.monotonic()
            self._write_log(f"START RequestId: {request_id} Version: $LATEST\n")
            request = {
                "event": event,
                "request_id": request_id,
                "deadline_ms": int((time.time() + timeout_s) * 1000),
                "function_arn": self.config.function_arn,
                "memory_size": self.config.memory_size,
            }
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(json.dumps(request).encode() + b"\n")
                self._proc.stdin.flush()
                line = self._read_line(timeout_s)
            except (BrokenPipeError, OSError, TimeoutError, EOFError) as e:
                # A dead or timed-out environment is discarded; the next invocation starts fresh.
                self.close()
                reason = (
                    f"Task timed out after {timeout_s:.2f} seconds"
                    if isinstance(e, TimeoutError)
                    else f"Runtime exited with error: {self._proc.poll()}"
                )
                self._write_log(f"{datetime.now().isoformat()} {request_id} {reason}\n")
                payload = json.dumps({"errorMessage": reason, "errorType": "Runtime.ExitError"})
                self._report(request_id, started)
                return payload, True, ""
            reply = json.loads(line)
            self._report(request_id, started)
            if "error" in reply:
                return json.dumps(reply["error"]), True, ""
            return json.dumps(reply["result"]), False, ""

    def _read_line(self, timeout_s: float) -> bytes:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        line = self._proc.stdout.readline()
        if not line:
            raise EOFError
        return line

    def _report(self, request_id: str, started: float) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        self._write_log(
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\t"
            f"Duration: {elapsed_ms:.2f} ms\tMemory Size: {self.config.memory_size} MB\n"
        )

    def _write_log(self, text: str) -> None:
        if not self._log.closed:
            self._log.write(text.encode())

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


# --- asynchronous event-source mappings -----------------------------------------------------


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
        self.delivered = 0

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
            q.put(_stream_record(item, backend.region_name, source))

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
                self.delivered += len(batch)
                return []
            self.delivered += failed_from
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


def _stream_record(item: Any, region: str, source: str) -> dict[str, Any]:
    """A Lambda stream record, as moto's `send_dynamodb_items` builds it."""
    record = item.to_json()
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record["eventVersion"],
        "eventSource": record["eventSource"],
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": source,
    }


# --- the worker process ----------------------------------------------------------------------


class _Context:
    """The Lambda context object handlers and Powertools read."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = int(request["memory_size"])
        self.aws_request_id = request["request_id"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "local"
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _load_handler(name: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = name.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)  # type: ignore[no-any-return]


def worker_main() -> None:
    # Replies go to the original stdout; anything the handler prints joins stderr (the log).
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    handler = _load_handler(os.environ["_HANDLER"])
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = handler(request["event"], _Context(request))
            reply: dict[str, Any] = {"result": result}
            text = json.dumps(reply, default=str)
        except Exception as e:  # noqa: BLE001 - reported to the caller as Lambda does
            traceback.print_exc()
            error = {
                "errorMessage": str(e),
                "errorType": type(e).__name__,
                "stackTrace": traceback.format_tb(e.__traceback__),
            }
            text = json.dumps({"error": error})
        sys.stderr.flush()
        replies.write(text + "\n")


if __name__ == "__main__":
    worker_main()
