"""`make serve`: the local stack in the foreground, until Ctrl-C, SIGTERM or SIGHUP.

    python -m opencomposer.local.serve      # API on http://127.0.0.1:$OPENCOMPOSER_PORT (8000)
                                            # and the console page at its root, /

Stopping. SIGINT (Ctrl-C), SIGTERM (a service manager, a CI teardown, `kill`) and SIGHUP (the
terminal closed) each stop the stack: the API stops answering, every training gets SIGTERM
(its job ends STOPPED) and SIGKILL if it has not ended by its grace period, then the Lambda
workers and moto go, and the process exits 0. The whole stop has one deadline,
`STOP_DEADLINE_S` after the signal, whatever the stack was doing (starting, many trainings
running or queued); past it the stop is forced.

A second signal forces the stop at once: every training's process group and every Lambda worker
gets SIGKILL and the process exits with 128 + the signal's number. A repeat within
`REPEAT_WINDOW_S` of the first signal is the same request, not a second one: a signal sent to
the whole process group of `make serve` (`kill -TERM -<pgid>`, as a service manager or a CI
teardown sends it) reaches this process twice, directly and forwarded by make, milliseconds
apart. So to force a stop, signal again a second or more after the first.

Why the handlers do so little: a Python signal handler runs in the main thread between two
bytecodes, possibly while that thread holds a lock. `threading.Event.wait` holds its condition's
(non-reentrant) lock on the way in and out of the wait, and `Event.set` holds it while it
notifies; a handler calling `Event.set()` at such a moment, or a second signal's handler landing
inside the first one's `set()`, waits for ever on a lock its own thread holds. So the handlers
here take no lock, directly or not: the first records the signal (two attribute stores), the
interpreter's C-level handler wakes the main thread through `signal.set_wakeup_fd`, and the main
thread does the stop; a forcing signal only reads what is running and calls `os.killpg`,
`os.write` and `os._exit`. A watchdog thread enforces the deadline the same way. This works on
every platform (no `sigwait`/`pthread_sigmask`, which Windows lacks; the wake-up fd is a socket,
which Windows' `select` and `set_wakeup_fd` take, where a pipe would not do). Windows has no
SIGHUP (the stop signals are those the system has) and no SIGKILL (`processes.SIGKILL`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from types import FrameType

from opencomposer.client import ApiError, Client
from opencomposer.local.processes import SIGKILL
from opencomposer.local.stack import LocalStack, LocalStackOptions, api_port

# From the first signal to the process's exit, at most (then the stop is forced).
STOP_DEADLINE_S = 25.0
# What the stop leaves to the steps after the stack's own stop (and the forced stop itself).
_STOP_MARGIN_S = 4.0
# A signal this soon after the first is the same request (make forwards the group's SIGTERM).
REPEAT_WINDOW_S = 1.0
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _Stopper:
    """The signals' side of the stop; see the module's docstring for why it takes no lock."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.signum = 0
        self.requested_at: float | None = None  # monotonic time of the first signal
        self._wake_read, self._wake_write = socket.socketpair()
        for end in (self._wake_read, self._wake_write):
            end.setblocking(False)

    def install(self) -> None:
        signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.requested_at is None:
            self.signum = signum
            self.requested_at = now
        elif now - self.requested_at > REPEAT_WINDOW_S:
            self.force(signum, "a second signal")

    def wait(self) -> None:
        """Until a stop is requested: the wake-up fd ends the wait at once, the timeout is a backstop."""
        while self.requested_at is None:
            with contextlib.suppress(OSError):
                select.select([self._wake_read], [], [], 1.0)
            with contextlib.suppress(OSError):
                self._wake_read.recv(4096)

    def time_left(self) -> float:
        started = self.requested_at if self.requested_at is not None else time.monotonic()
        return STOP_DEADLINE_S - _STOP_MARGIN_S - (time.monotonic() - started)

    def _watchdog(self) -> None:
        # Polls: it must not wait on anything a signal handler would have to set. It lives until
        # the process ends, so a stop stuck anywhere (interpreter shutdown included) is forced.
        while True:
            time.sleep(0.25)
            if self.requested_at is not None and time.monotonic() - self.requested_at > STOP_DEADLINE_S:
                self.force(self.signum, f"not stopped {STOP_DEADLINE_S:.0f} s after the signal")

    def force(self, signum: int, why: str) -> None:
        """SIGKILL every training and Lambda worker, then exit now. Takes no lock."""
        with contextlib.suppress(OSError):
            os.write(2, f"forcing the stop ({why}): killing the trainings and Lambda workers\n".encode())
        with contextlib.suppress(Exception):
            self.stack.kill_processes()
        _kill_children()
        os._exit(128 + signum)


def _kill_children() -> None:
    """Linux: SIGKILL each child of this process and its process group (a training's or a Lambda
    worker's session), whether or not the stack still knows of it. A child not yet reaped keeps
    its pid, so none of these can be someone else's. Elsewhere (no `/proc/self/task`) nothing:
    the stack's own list (`kill_processes`, just before) is all there is."""
    if not sys.platform.startswith("linux"):
        return
    pids: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError, ValueError):
                fd = os.open(f"/proc/self/task/{task}/children", os.O_RDONLY)
                try:
                    pids.update(int(pid) for pid in os.read(fd, 1 << 16).split())
                finally:
                    os.close(fd)
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, SIGKILL)
            else:
                os.kill(pid, SIGKILL)


def main() -> int:
    stack = LocalStack(LocalStackOptions(port=api_port(), persist=True))
    stopper = _Stopper(stack)
    stopper.install()  # before the start: a signal while it starts stops it once it has started
    try:
        stack.start()
    except OSError as e:
        print(
            f"cannot start the local stack on port {api_port()}: {e} (set OPENCOMPOSER_PORT)", file=sys.stderr
        )
        return 1
    except ValueError as e:  # a setting that makes no sense, named by the message
        print(f"cannot start the local stack: {e}", file=sys.stderr)
        return 1
    code = 0
    try:
        if stopper.requested_at is None:
            Client(stack.api_url).list(limit=1)  # it answers: only then say where it is
            print(f"opencomposer local API: {stack.api_url}", flush=True)
            print(f"  console: {stack.api_url}/  (open it in a browser)", flush=True)
            print(f"  state and logs: {stack.home}  (logs in {stack.logs_dir})", flush=True)
            print(f"  AWS endpoint (moto): {stack.moto_url}  (AWS_ENDPOINT_URL for boto3, the SageMaker SDK)",
                  flush=True)  # fmt: skip
            if stack.instance_count > 1:
                hosts = stack.instance_count
                print(f"  training jobs: {hosts} hosts each (OPENCOMPOSER_INSTANCE_COUNT)", flush=True)
            if stack.restored.get("jobs"):
                print(
                    f"  restored {stack.restored['jobs']} job(s) from the last run"
                    + (
                        f"; {stack.restored['interrupted']} interrupted by its stop ended"
                        if stack.restored["interrupted"]
                        else ""
                    ),
                    flush=True,
                )
            print(
                f"  try: opencomposer --api {stack.api_url} submit --epochs 5 --wait   (Ctrl-C stops)",
                flush=True,
            )
        stopper.wait()
    except ApiError as e:
        print(f"the local API does not answer: {e}", file=sys.stderr)
        code = 1
    finally:
        if stopper.requested_at is None:  # stopping for another reason: the same deadline
            stopper.requested_at = time.monotonic()
        with contextlib.suppress(OSError):  # a terminal gone (SIGHUP) must not skip the stop
            print("stopping the local stack", file=sys.stderr, flush=True)
        stack.stop(timeout_s=max(0.0, stopper.time_left()))
    return code


def _exit(code: int) -> None:
    """Exit once the stack has stopped, without the interpreter's teardown: it has nothing left
    to clean up, and the teardown would spend a second freeing moto's and botocore's objects and
    wait for any non-daemon thread a library left running."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
