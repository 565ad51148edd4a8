"""The training and worker processes the local stack starts: each leads a session of its own,
is signalled as a group, and dies with the stack."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable


def die_with_parent() -> Callable[[], None] | None:
    """Linux: the `preexec_fn` that makes the kernel SIGTERM the training when the thread that
    starts it dies, so no training outlives its stack, even one killed by SIGKILL: that thread
    supervises the training until it exits. Elsewhere None: stopping the stack stops them.

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
    the entry point may have started workers of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, sig)
        elif process.poll() is None:  # no process groups (Windows): the process itself
            process.send_signal(sig)
