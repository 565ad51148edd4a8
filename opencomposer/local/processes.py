"""The training and worker processes the local stack starts: each leads a session of its own,
is signalled as a group, and dies with the stack.

Portability: process groups, sessions, `os.killpg` and `preexec_fn` are POSIX; the kernel's
parent-death signal is Linux's. Each has a fallback here, so the callers need not ask: on
Windows a process is started in a new process group (so Ctrl-C in the console does not reach
it) and signalled alone (`terminate`/`kill`, both TerminateProcess there), and `SIGKILL`,
which Windows lacks, is `SIGTERM`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

# The signal that cannot be caught; Windows has none (a SIGTERM there is TerminateProcess too).
SIGKILL: signal.Signals = getattr(signal, "SIGKILL", signal.SIGTERM)


def new_session() -> dict[str, Any]:
    """`subprocess.Popen` keywords that put the child out of the terminal's process group: a
    session of its own on POSIX (it leads its process group, which `signal_group` signals), a
    new process group on Windows (where `start_new_session` is ignored)."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}


def die_with_parent() -> Callable[[], None] | None:
    """Linux: the `preexec_fn` that makes the kernel SIGTERM the training when the thread that
    starts it dies, so no training outlives its stack, even one killed by SIGKILL: that thread
    supervises the training until it exits. Elsewhere None (macOS has no parent-death signal,
    Windows no `preexec_fn`): stopping the stack stops them, but a stack killed hard leaves them.

    Called in the parent, before the fork: `preexec_fn` runs in the child of a threaded process,
    where loading a library (`dlopen` takes the loader's lock, which another thread may have
    held at the fork) or importing could hang. So the child only makes one foreign call and one
    system call; if the stack died between the fork and the prctl, no signal will come, so
    the child ends itself.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        if os.getppid() != parent:
            os._exit(128 + signal.SIGTERM)

    return preexec


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """The whole process group (trainings and Lambda workers each lead a session of their own:
    the entry point may have started workers of its own). Without process groups (Windows) the
    process itself: `kill` for SIGKILL, `terminate` for SIGTERM."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, sig)
        elif process.poll() is None:
            if sig == SIGKILL:
                process.kill()
            elif sig == signal.SIGTERM:
                process.terminate()
            else:
                process.send_signal(sig)


# How much less CPU priority a local training gets than the stack (POSIX nice, added to the
# stack's own, 19 at most). On AWS a training has machines of its own; here it shares the CPUs
# with the api's workers and moto, and under contention those must win or requests wait behind it.
TRAINING_NICENESS = 10


def lower_priority(process: subprocess.Popen[bytes]) -> None:
    """Lower a just-started training's CPU priority (its threads, started later, inherit it).
    Windows has no `os.setpriority`: the training keeps the normal priority there."""
    if not hasattr(os, "setpriority"):
        return
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + TRAINING_NICENESS)
    with contextlib.suppress(OSError):  # it has already exited
        os.setpriority(os.PRIO_PROCESS, process.pid, niceness)
