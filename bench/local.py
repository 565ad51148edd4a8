"""The local stack the benchmarks measure: fresh, in a temporary home, stopped at the end."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opencomposer.local.stack import LocalStack, LocalStackOptions


@contextmanager
def local_stack() -> Iterator[LocalStack]:
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-") as home:
        stack = LocalStack(LocalStackOptions(home=Path(home), port=0, stop_grace_s=5))
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
