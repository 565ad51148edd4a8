"""Lambda without Docker: the real handlers in warm worker processes, behind moto's Lambda.

moto ends every invocation path (Invoke, event-source mappings, Step Functions' `lambda:invoke`)
in `LambdaFunction._invoke_lambda`, which would start a Docker container. `LambdaRuntime.install`
replaces that one method: the function's deployment package is unzipped once (Lambda's
`/var/task`), and worker processes (`opencomposer.local.worker`) import the handler once (the
init phase) and then serve invocations one at a time each, as real execution environments do.

Concurrency, as Lambda scales: an invocation takes an idle warm worker of its function, else
starts another while the function has fewer than `concurrency` workers (Lambda's reserved
concurrency; `OPENCOMPOSER_LAMBDA_CONCURRENCY`, default 4), else waits for one to be free. So
a burst of requests is served side by side, and a slow one (a composition) holds up no other.
Each function's log (handler output plus Lambda's START/END/REPORT lines, its workers' lines
interleaved, as CloudWatch merges log streams) lands in `<logs>/<function name>.log`.

A worker's replies are read by a thread of its own into a queue, so an invocation waits for its
reply with a timeout on every system: `select` on a pipe, the obvious alternative, works on
POSIX only (Windows' `select` takes sockets alone).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from opencomposer.local.processes import new_session

# What a worker inherits from the stack's own environment; everything else comes from the
# function's configuration, as on Lambda.
# OPENCOMPOSER_RECORD_AWS_CALLS: the IAM check's record of the handlers' AWS calls (aws_calls.py).
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "OPENCOMPOSER_RECORD_AWS_CALLS")
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


ENV_CONCURRENCY = "OPENCOMPOSER_LAMBDA_CONCURRENCY"
DEFAULT_CONCURRENCY = 4


def concurrency_from_env() -> int:
    """Workers per function at most: $OPENCOMPOSER_LAMBDA_CONCURRENCY, else DEFAULT_CONCURRENCY."""
    raw = os.environ.get(ENV_CONCURRENCY, "").strip()
    if not raw:
        return DEFAULT_CONCURRENCY
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV_CONCURRENCY} must be a whole number of workers, 1 or more (not {raw!r})")
    return int(raw)


class LambdaRuntime:
    """Warm worker processes for moto's Lambda functions, up to `concurrency` per function."""

    def __init__(self, state_dir: Path, logs_dir: Path, endpoint_url: str, concurrency: int = 1) -> None:
        self.code_root = state_dir / "lambda"
        self.logs_dir = logs_dir
        self.endpoint_url = endpoint_url
        self.concurrency = max(1, concurrency)
        self._pools: dict[str, _Pool] = {}
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
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.retire(busy_too=True)

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes, read without a lock (copying a dict's values or a list is one
        step under the GIL), so a signal handler may call it whatever another thread holds."""
        return [worker.process for pool in list(self._pools.values()) for worker in list(pool.workers)]

    def busy_processes(self, function_name: str) -> list[subprocess.Popen[bytes]]:
        """The worker processes of `function_name` serving an invocation right now (what a fault
        test kills to see a Lambda environment die mid-request)."""
        pools = [pool for pool in list(self._pools.values()) if pool.config.function_name == function_name]
        return [worker.process for pool in pools for worker in pool.busy()]

    # --- invocation -------------------------------------------------------------------------
    def invoke(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        """moto's contract: (response payload, errored, log tail)."""
        pool = self._pool_for(fn)
        worker = pool.take()
        try:
            return worker.invoke(event if event is not None else {}, float(fn.timeout or 3))
        finally:
            pool.give_back(worker)

    def prewarm(self, fn: Any, workers: int = 1) -> None:
        """Start `workers` of the function's workers now (at most its concurrency), so their init
        phase is not paid by the first requests; returns at once, they import meanwhile."""
        pool = self._pool_for(fn)
        taken = [pool.take() for _ in range(min(workers, self.concurrency))]
        for worker in taken:
            pool.give_back(worker)

    def _pool_for(self, fn: Any) -> _Pool:
        with self._lock:  # one code extraction and one pool per function, however many callers
            config = self._config(fn)
            pool = self._pools.get(fn.function_arn)
            if pool is not None and pool.config.key == config.key:
                return pool
            if pool is not None:  # new code or configuration: new environments, as Lambda starts
                pool.retire()
            pool = _Pool(config, self.concurrency)
            self._pools[fn.function_arn] = pool
            return pool

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
                # The deployment package, ahead of the installed project: the handlers (and the
                # contracts) come from it, never from the working tree; the worker module and
                # the handlers' dependencies come from this environment.
                "PYTHONPATH": str(code_dir),
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


class _Pool:
    """A function's execution environments: idle ones are reused (the most recently used first,
    as Lambda keeps warm the environments it used last), one is started while fewer than `limit`
    exist, else the caller waits for one to be given back, in the order the callers came: a
    burst's requests are served first come, first served, none left waiting while later ones
    barge past it (which a bare condition variable allows, and which made a burst's slowest
    requests several times slower than its median)."""

    def __init__(self, config: _WorkerConfig, limit: int) -> None:
        self.config = config
        self.limit = limit
        self.workers: list[_Worker] = []  # every live one, busy or idle
        self._idle: list[_Worker] = []
        self._changed = threading.Condition()
        self._queue: deque[object] = deque()  # the callers waiting, oldest first
        self._retired = False

    def take(self) -> _Worker:
        with self._changed:
            ticket = object()
            self._queue.append(ticket)
            try:
                while True:
                    if self._queue[0] is ticket and (worker := self._take_now()) is not None:
                        return worker
                    self._changed.wait()
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()  # the next in line may take what is left

    def _take_now(self) -> _Worker | None:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            self._forget(worker)
        if len(self.workers) < self.limit:
            worker = _Worker(self.config)
            self.workers.append(worker)
            return worker
        return None

    def busy(self) -> list[_Worker]:
        with self._changed:
            return [worker for worker in self.workers if worker not in self._idle]

    def give_back(self, worker: _Worker) -> None:
        with self._changed:
            if worker.alive() and not self._retired:
                self._idle.append(worker)
            else:
                self._forget(worker)
                worker.close()
            self._changed.notify_all()  # the oldest caller takes it (see take)

    def retire(self, busy_too: bool = False) -> None:
        """Close the idle workers now, the busy ones as they are given back (or now too: the
        runtime's end, whose invocations then answer a runtime error)."""
        with self._changed:
            self._retired = True
            closing, self._idle = (list(self.workers) if busy_too else self._idle), []
            for worker in closing:
                self._forget(worker)
            self._changed.notify_all()
        for worker in closing:
            worker.close()

    def _forget(self, worker: _Worker) -> None:
        with contextlib.suppress(ValueError):
            self.workers.remove(worker)


class _Worker:
    """One execution environment: a process that imported the handler and serves invocations."""

    def __init__(self, config: _WorkerConfig) -> None:
        self.config = config
        self.config_key = config.key
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(config.log_path, "ab", buffering=0)  # noqa: SIM115 - lives with the worker
        self._lock = threading.Lock()
        self._proc = self.process = subprocess.Popen(
            [sys.executable, "-m", "opencomposer.local.worker"],
            cwd=config.code_dir,
            env=config.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            # Out of the terminal's process group: Ctrl-C stops the stack, which then ends its
            # workers; a worker whose stack died hard sees its stdin close and exits.
            **new_session(),
        )
        assert self._proc.stdout is not None
        # Each line the worker writes, then b"" at its end of file.
        self._replies: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(
            target=_read_lines,
            args=(self._proc.stdout, self._replies),
            name=f"lambda-replies-{config.function_name}",
            daemon=True,
        )
        self._reader.start()

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
        """The worker's next reply line; TimeoutError past `timeout_s`, EOFError once it exited."""
        try:
            line = self._replies.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            raise TimeoutError from None
        if not line:
            self._replies.put(line)  # the end of file stays the answer
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
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        # The reader closes stdout at its end of file, which the worker's exit brings.
        self._reader.join(timeout=1)
        self._log.close()


def _read_lines(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    """A worker's reply reader: every line into `lines`, then b"" at the end of file."""
    try:
        for line in iter(stream.readline, b""):
            lines.put(line)
    except (OSError, ValueError):  # a stream closed under it: the end too
        pass
    finally:
        lines.put(b"")
        with contextlib.suppress(OSError):
            stream.close()
