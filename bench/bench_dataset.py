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

A user's collection (`gan.datasets.build_zip`): synthetic zips of 1,000 and 10,000 small
4-voice MIDI files (2 to 9 bars, each different), built in a fresh process with the default 2
workers and an empty piece cache, then rebuilt with the cache warm. Files per second of wall
time, and peak memory: the sum over the build process and its workers of their proportional
set size (PSS: forked workers' shared pages counted once), sampled every 20 ms from /proc
(Linux), and the largest single process's peak RSS from `getrusage` (everywhere). The bound:
memory must not grow with the file count.
"""

from __future__ import annotations

import json
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
COLLECTION_SIZES = (1_000, 10_000)
RSS_SAMPLE_S = 0.02
# The build in a fresh process: its own result, and the largest single process's peak RSS
# (getrusage's maxrss is per process, in KiB on Linux).
BUILD_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from gan.datasets import build_zip
started = time.perf_counter()
report = build_zip(Path(sys.argv[1]), Path(sys.argv[2]), cache_dir=Path(sys.argv[3]))
seconds = time.perf_counter() - started
peaks = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(json.dumps({"seconds": seconds, "accepted": report["accepted"], "files": report["files"],
                  "max_single_rss_kib": max(peaks)}))
"""


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

    results_collections = {str(n): collection_build(n) for n in COLLECTION_SIZES}

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
        "collections": results_collections,
    }
    print(f"warm load of the cache: {warm_s * 1000:.0f} ms ({size_mb:.2f} MB)")
    print(
        f"per file, one process, {len(sample)} files: naive (stripTies) {naive_per_file * 1000:.0f} ms, "
        f"ours {ours_per_file * 1000:.0f} ms: {results['speedup_vs_naive']}x"
    )
    return results


def synthetic_midi(seed: int) -> bytes:
    """A small 4-voice MIDI file (one track per voice, 2 to 9 bars of 4/4), different per seed."""
    import io
    import random

    import mido

    rng = random.Random(seed)
    song = mido.MidiFile(ticks_per_beat=96)
    bars = rng.randint(2, 9)
    for low in (64, 57, 50, 40):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=f"voice {low}"))
        for _ in range(bars * 4):
            pitch = low + rng.randint(0, 9)
            length = rng.choice((48, 96, 96, 192)) if rng.random() < 0.3 else 96
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=length))
        song.tracks.append(track)
    out = io.BytesIO()
    song.save(file=out)
    return out.getvalue()


def _memory_bytes(pid: int) -> int:
    """A process's proportional set size (PSS: its private pages plus its share of pages shared
    with others, so forked workers' common pages count once in a sum), else its RSS."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _tree_memory_bytes(pid: int) -> int | None:
    """Memory of a process and all its descendants, from /proc (None where there is no /proc)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += _memory_bytes(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            if current == pid and not Path("/proc").exists():
                return None
    return total


def collection_build(files: int) -> dict:
    """Build a zip of `files` synthetic MIDI files cold (empty piece cache), then warm."""
    import threading
    import zipfile

    figures: dict = {"files": files}
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-collection-") as folder:
        archive = Path(folder) / "collection.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as opened:
            for n in range(files):
                opened.writestr(f"set{n % 10}/piece{n:05d}.mid", synthetic_midi(n))
        figures["zip_mb"] = round(archive.stat().st_size / 1e6, 2)
        for run in ("cold", "warm"):
            command = [sys.executable, "-c", BUILD_SCRIPT, str(archive), f"{folder}/built-{run}"]
            process = subprocess.Popen(
                [*command, f"{folder}/cache"],
                stdout=subprocess.PIPE,
                text=True,
            )
            peak = [0]

            def sample(process=process, peak=peak) -> None:
                while process.poll() is None:
                    peak[0] = max(peak[0], _tree_memory_bytes(process.pid) or 0)
                    time.sleep(RSS_SAMPLE_S)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            out, _ = process.communicate()
            sampler.join()
            if process.returncode:
                raise RuntimeError(f"the {run} build of {files} files failed ({process.returncode})")
            result = json.loads(out.strip().splitlines()[-1])
            assert result["accepted"] == files, result
            figures[run] = {
                "seconds": round(result["seconds"], 2),
                "files_per_s": round(files / result["seconds"], 1),
                "peak_pss_mb_all_processes": round(peak[0] / 2**20, 1) if peak[0] else None,
                "peak_rss_mb_largest_process": round(result["max_single_rss_kib"] / 1024, 1),
            }
            shown = figures[run]
            print(
                f"collection of {files} files, {run} cache: {result['seconds']:.1f} s, "
                f"{shown['files_per_s']} files/s, peak memory {shown['peak_pss_mb_all_processes']} MB "
                f"(PSS of build + workers), largest process RSS {shown['peak_rss_mb_largest_process']} MB"
            )
    return figures


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
