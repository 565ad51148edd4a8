"""How many CPUs this process may use, on every system."""

from __future__ import annotations

import os
from collections.abc import Mapping


def usable_cpus(environ: Mapping[str, str] = os.environ) -> int:
    """The CPUs this process may run on, at most `SM_NUM_CPUS` where that is set (SageMaker's
    count of the instance's CPUs; the local runner's share of the machine for each of the
    trainings it runs at once)."""
    count = _system_cpus()
    share = environ.get("SM_NUM_CPUS", "")
    return min(count, int(share)) if share.isdigit() and int(share) > 0 else count


def _system_cpus() -> int:
    """Its affinity mask where the system has one (Linux, so a container's or a `taskset`'s
    limit counts), else `os.process_cpu_count` (Python 3.13+, which also reads the affinity
    where it can), else every CPU of the machine (macOS, Windows on Python 3.11/3.12). At
    least 1."""
    sched_getaffinity = getattr(os, "sched_getaffinity", None)
    if sched_getaffinity is not None:
        try:
            return max(1, len(sched_getaffinity(0)))
        except OSError:
            pass
    process_cpu_count = getattr(os, "process_cpu_count", None)
    count = process_cpu_count() if process_cpu_count is not None else None
    return max(1, count or os.cpu_count() or 1)
