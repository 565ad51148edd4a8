"""Dataset build: all of Bach's chorales from a cold start, and the cached load.

- cold build: `python -m gan.data --rebuild` in a fresh process (interpreter start, music21
  import, a pool of 2 workers) into a fresh temporary cache folder. music21's own cache of parsed
  pickles is not used: the builder parses with `forceSource=True, storePickle=False`.
  Wall time counts whatever else the machine runs; the build's own CPU seconds (its processes'
  user + system time) do not, and divided by the 2 workers estimate an idle machine's wall time.
- baseline, in this process on the same sample of files, one process each: the naive
  conversion (`stripTies(inPlace=False)` then the flat notes of each part) against ours.
- warm load: reading the cache and splitting by melody.
Target: cold build of all chorales in 60 s or less on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gan import data

try:
    import resource  # POSIX only
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

BASELINE_SAMPLE = 24  # files: enough for a per-file figure, short enough for a loaded machine
TARGET_S = 60.0


def naive_convert(path: Path) -> int:
    """What a first attempt does: stripTies on a copy, then every part's flat notes."""
    from music21 import converter, stream

    score = converter.parse(path, forceSource=True, storePickle=False)
    notes = 0
    for part in score.stripTies(inPlace=False).getElementsByClass(stream.Part):
        notes += len(part.flatten().notes)
    return notes


def _per_file(convert, paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        convert(path)
    return (time.perf_counter() - started) / len(paths)


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-data-") as folder:
        cpu_before = _children_cpu_s()
        started = time.perf_counter()
        build = subprocess.run(
            [sys.executable, "-m", "gan.data", "--cache-dir", folder, "--rebuild"],
            check=True,
            capture_output=True,
            text=True,
        )
        cold_s = time.perf_counter() - started
        cpu_after = _children_cpu_s()
        cpu_s = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        print(build.stdout.strip())
        print(
            f"cold build, fresh process, {data.BUILD_WORKERS} workers: {cold_s:.1f} s wall "
            f"(target <= {TARGET_S:.0f} s), "
            + (f"{cpu_s:.1f} CPU s" if cpu_s is not None else "CPU s not measured on this system")
        )

        started = time.perf_counter()
        splits = data.load_chorales(Path(folder))
        warm_s = time.perf_counter() - started
        cache = data.cache_path(Path(folder))
        size_mb = cache.stat().st_size / 1e6
        built = len(data.read_chorales(cache))

    paths = data.corpus_paths()
    sample = paths[:: max(1, len(paths) // BASELINE_SAMPLE)][:BASELINE_SAMPLE]
    ours_per_file = _per_file(data.convert_file, sample)
    naive_per_file = _per_file(naive_convert, sample)

    results = {
        "cold_build_s": round(cold_s, 2),
        "cold_build_cpu_s": round(cpu_s, 2) if cpu_s is not None else None,
        "target_s": TARGET_S,
        "warm_load_s": round(warm_s, 3),
        "workers": data.BUILD_WORKERS,
        "files": len(paths),
        "chorales": built,
        "skipped": build.stdout.count("skipped "),
        "splits": splits.counts(),
        "cache_mb": round(size_mb, 3),
        "sample_files": len(sample),
        "naive_s_per_file": round(naive_per_file, 4),
        "ours_s_per_file": round(ours_per_file, 4),
        "speedup_vs_naive": round(naive_per_file / ours_per_file, 2),
    }
    print(f"warm load of the cache: {warm_s * 1000:.0f} ms ({size_mb:.2f} MB)")
    print(
        f"per file, one process, {len(sample)} files: naive (stripTies) {naive_per_file * 1000:.0f} ms, "
        f"ours {ours_per_file * 1000:.0f} ms: {results['speedup_vs_naive']}x"
    )
    return results


def _children_cpu_s() -> float | None:
    """User + system CPU seconds of this process's waited-for children: `getrusage` where the
    system has it, else `os.times`, whose children's figures are always 0 on Windows (None)."""
    if resource is not None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    if sys.platform == "win32":
        return None
    times = os.times()
    return times.children_user + times.children_system


if __name__ == "__main__":
    main()
