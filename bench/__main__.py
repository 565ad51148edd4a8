"""Run the benchmarks and write their figures to bench/results/bench.json.

    python -m bench              # every bench/bench_*.py
    python -m bench api dataset  # only bench_api.py and bench_dataset.py

Each module's `main()` prints its own figures as it goes and returns them as a dict. The file
keeps the figures of benchmarks not run this time; each entry says when it ran.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench.json"


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    results: dict[str, object] = _earlier()
    results |= {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    failed = []
    for name in names:
        print(f"\n=== bench {name} ===", flush=True)
        started = time.perf_counter()
        run_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            results[name] = {"run_at": run_at, **importlib.import_module(f"bench.bench_{name}").main()}
        except Exception as exc:  # a broken benchmark must not hide the others' figures
            failed.append(name)
            results[name] = {"run_at": run_at, "error": f"{type(exc).__name__}: {exc}"}
            print(f"bench {name} failed: {exc}", file=sys.stderr)
        print(f"=== {name}: {time.perf_counter() - started:.1f} s ===", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nfigures written to {RESULTS.relative_to(HERE.parent)}")
    return 1 if failed else 0


def _earlier() -> dict[str, object]:
    """The figures already written, or none (a missing or unreadable file)."""
    try:
        earlier = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return earlier if isinstance(earlier, dict) else {}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
