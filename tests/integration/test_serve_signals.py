"""`make serve` stops on SIGTERM, SIGINT and SIGHUP, in time, and takes its trainings with it.

Each round starts a real `make serve` in its own process group (as a terminal or a service
manager does), submits a 1-epoch job over HTTP, waits until the job's training process exists,
and at a random moment after that signals the whole group (make forwards SIGTERM, so the stack
gets that one twice). Within `STOP_LIMIT_S` of the signal the stack must be gone, and with it
every process it started: its trainings and Lambda workers, found by the process tree and by
a scan of /proc for working directories under the round's OPENCOMPOSER_HOME. It must have
stopped itself, not just died: it says "stopping the local stack", and its runner saw each
training end.

The rounds: `SIGNAL_ROUNDS` of SIGTERM, SIGINT and SIGHUP in turn (so a race in the stop shows),
three of them special: a training that cannot end (SIGSTOP), which the stop kills at the end of
its grace period; a burst of 30 SIGTERMs microseconds apart, which must count as one; three
jobs at once. Then a second SIGTERM 1.5 s into a stop stuck on such a training, which must force
the stop at once; and `kill -9` of the whole group, while the training imports torch and as it
loads its data, after which the trainings and workers, their parent gone, must end by
themselves within `ORPHAN_LIMIT_S`. Four rounds run at a time.

Linux only (it reads /proc). `SERVE_SIGNALS_SEED=n` replays a run's random moments,
`SERVE_SIGNALS_ROUNDS=n` runs n signal rounds (default 15).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opencomposer.client import Client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree in /proc"),
]

REPO = Path(__file__).resolve().parents[2]
# 15 rounds a run (SERVE_SIGNALS_ROUNDS=n for more), each signal five times: each run draws new
# random moments, so the runs together cover more than one long run, and the suite stays short
# (30 rounds took 217 s of a 13-minute suite).
SIGNAL_ROUNDS = int(os.environ.get("SERVE_SIGNALS_ROUNDS") or 15)
PARALLEL = 4
STOP_LIMIT_S = 30.0  # the bound, from the signal to no process of the stack left
FORCED_LIMIT_S = 3.0  # a second signal: from it to no process of the stack left
ORPHAN_LIMIT_S = 10.0  # kill -9 of the stack: until its trainings and workers are gone
START_LIMIT_S = 120.0  # the stack's start and the job's training process, on a loaded machine
JOB = {"hyperparameters": {"epochs": 1, "batch_size": 16, "update_ratio": 1}}
SEED = int(os.environ.get("SERVE_SIGNALS_SEED") or random.randrange(1 << 30))


# --- the process tree, from /proc ----------------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    start: int  # clock ticks after boot: a pid reused later is another process

    def alive(self) -> bool:
        now = _stat(self.pid)
        return now is not None and now.start == self.start and now.state not in "ZX"


def _stat(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    return Proc(pid=pid, ppid=int(fields[1]), state=fields[0], start=int(fields[19]))


def _children(pid: int) -> list[Proc]:
    """A process's children (cheap: no scan of /proc)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                pids += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return [p for p in map(_stat, pids) if p is not None]


def _descendants(pid: int) -> list[Proc]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child.pid)
    return found


def _cwd_under(p: Proc, prefix: Path) -> bool:
    try:
        cwd = os.readlink(f"/proc/{p.pid}/cwd")
    except OSError:
        return False
    return cwd == str(prefix) or cwd.startswith(str(prefix) + os.sep)


def _execed(p: Proc) -> bool:
    """The training's program runs: its command line is the entry point's (`-m gan.train`), no
    longer the stack's it inherited at the fork."""
    try:
        return b"gan.train" in Path(f"/proc/{p.pid}/cmdline").read_bytes()
    except OSError:
        return False


def _under(home: Path) -> list[Proc]:
    """Every live process whose working directory is under home, by a scan of /proc: the stack's
    trainings (home/training/<job>) and Lambda workers (home/lambda/<function>/<digest>), even
    those whose parent is gone."""
    procs = (_stat(int(d)) for d in os.listdir("/proc") if d.isdigit())
    return [p for p in procs if p is not None and p.state not in "ZX" and _cwd_under(p, home)]


# --- one round -------------------------------------------------------------------------------------
@dataclass
class Round:
    kind: str
    signals: list[signal.Signals]
    delay_s: float  # after the training process appears
    jobs: int = 1
    stop_training: bool = False  # SIGSTOP it first: a training that cannot end by itself
    second_after_s: float | None = None
    burst: int = 0  # more of the same signal straight after, microseconds apart
    after_output: bool = False  # delay_s counts from the training's first output (torch imported)
    # results
    stop_s: float | None = None
    phase: str = ""
    output: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _training_phase(home: Path) -> str:
    """What the (first) training was doing when signalled: importing (no output of its own yet),
    or running (its first lines come once torch is imported and its SIGTERM handler set)."""
    for log in (home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        if text.startswith("Invoking:"):
            return "importing" if len(text.splitlines()) <= 1 else "running"
    return "?"


def _pinned(cpu: int | None) -> list[str]:
    """`taskset -c <cpu>`: a round's whole stack on one core, so rounds side by side do not
    fight over both (the training sizes its thread pool to the cores it may use)."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def _spin() -> None:
    """A few to a few hundred microseconds: signals apart, but within one handler's run."""
    until = time.perf_counter() + random.uniform(0, 300e-6)
    while time.perf_counter() < until:
        pass


def _check_graceful(r: Round, home: Path) -> None:
    """The stack stopped itself (did not just die): it said so, and its runner saw each
    training end (the closing line it writes to the training's log)."""
    if not any("stopping the local stack" in line for line in r.output):
        r.problems.append("the stack did not stop itself (no 'stopping the local stack')")
    for log in (home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        if text.startswith("Invoking:") and "Process exited with code" not in text:
            r.problems.append(f"the runner did not see {log.stem} end")


def _start(r: Round, home: Path, cpu: int | None) -> tuple[subprocess.Popen[bytes], threading.Thread, int]:
    """`make serve` up, on a free port (another one if a stack beside it took that port first)."""
    for _ in range(3):
        port = _free_port()
        env = {**os.environ, "OPENCOMPOSER_PORT": str(port), "OPENCOMPOSER_HOME": str(home)}
        make = subprocess.Popen(
            [*_pinned(cpu), "make", "--no-print-directory", "serve"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal or a service manager starts it
        )
        ready = threading.Event()
        r.output = []

        def read(make: subprocess.Popen[bytes] = make, ready: threading.Event = ready) -> None:
            assert make.stdout is not None
            for raw in make.stdout:
                line = raw.decode(errors="replace").rstrip()
                r.output.append(line)
                if "opencomposer local API:" in line:
                    ready.set()
            ready.set()  # it ended

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        ready.wait(START_LIMIT_S)
        if make.poll() is None or not any("cannot start the local stack" in line for line in r.output):
            return make, reader, port
        make.wait()
        reader.join(5)
    return make, reader, port


def run_round(r: Round, home: Path, cpu: int | None = None) -> Round:
    home.mkdir(parents=True)
    make, reader, port = _start(r, home, cpu)
    snapshot: list[Proc] = []
    try:
        if not any("opencomposer local API:" in line for line in r.output):
            r.problems.append("the stack never said it was up")
            return r
        client = Client(f"http://127.0.0.1:{port}")
        for _ in range(r.jobs):
            client.submit(JOB)
        serve = _children(make.pid)  # make's one child (the recipe execs it)
        if len(serve) != 1:
            r.problems.append(f"make has {len(serve)} children, not the stack alone")
            return r

        def trainings() -> list[Proc]:
            return [p for p in _children(serve[0].pid) if _cwd_under(p, home / "training")]

        if not _wait(lambda: bool(trainings()), START_LIMIT_S):
            r.problems.append("no training process appeared")
            return r
        # A training stuck in its own code, not between fork and exec: stopped there, it would
        # also hold the runner's Popen (which waits for the exec) and it never learns the pid.
        if r.stop_training and not _wait(lambda: all(_execed(p) for p in trainings()), START_LIMIT_S):
            r.problems.append("the training process never started its program")
            return r
        if r.stop_training:
            for p in trainings():
                os.killpg(p.pid, signal.SIGSTOP)
        if r.after_output and not _wait(lambda: _training_phase(home) == "running", START_LIMIT_S):
            r.problems.append("the training never wrote anything")
            return r
        time.sleep(r.delay_s)
        r.phase = _training_phase(home)
        snapshot = [*serve, *_descendants(serve[0].pid)]
        sent = time.monotonic()
        os.killpg(make.pid, r.signals[0])
        for _ in range(r.burst):
            with contextlib.suppress(OSError):
                os.kill(serve[0].pid, r.signals[0])
            _spin()
        if r.second_after_s is not None:
            time.sleep(r.second_after_s)
            if not serve[0].alive():
                r.problems.append("the stack stopped before the second signal: nothing to force")
            sent = time.monotonic()
            os.killpg(make.pid, r.signals[1])

        def left() -> list[Proc]:
            # what ran at the signal, and what the stack started since (a queued job's training)
            return [p for p in snapshot if p.alive()] + (
                _descendants(serve[0].pid) if serve[0].alive() else []
            )

        limit = ORPHAN_LIMIT_S if r.signals[0] == signal.SIGKILL else STOP_LIMIT_S
        if r.second_after_s is not None:
            limit = FORCED_LIMIT_S
        # then a scan of /proc for any process of the stack the tree no longer shows
        if _wait(lambda: make.poll() is not None and not left(), limit) and not _under(home):
            r.stop_s = time.monotonic() - sent
        else:
            _wait(lambda: not _under(home), max(0.0, limit - (time.monotonic() - sent)), step=0.1)
            pids = sorted({p.pid for p in [*left(), *_under(home)]})
            if pids:
                r.problems.append(f"still running {limit:.0f} s after the signal: pids {pids}")
            else:
                r.stop_s = time.monotonic() - sent
        if r.signals[0] != signal.SIGKILL and r.second_after_s is None:
            _check_graceful(r, home)
        return r
    finally:
        # whatever a failed round left behind must not disturb the next ones
        for p in [*snapshot, *_under(home)]:
            if p.alive():
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGKILL)
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        make.wait()
        reader.join(5)


def _rounds(rng: random.Random) -> list[Round]:
    cycle = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
    # SIGNAL_ROUNDS of one signal, three of them special: a training that cannot end, a burst
    # of the same signal (which must count as one), several jobs at once.
    rounds = [
        Round(kind="stuck training", signals=[signal.SIGTERM], delay_s=0.2, stop_training=True),
        Round(kind="SIGTERM burst", signals=[signal.SIGTERM], delay_s=rng.uniform(0.0, 1.5), burst=30),
        Round(kind="3 jobs", signals=[signal.SIGINT], delay_s=rng.uniform(0.5, 2.0), jobs=3),
    ]
    # Mostly while the training still starts (cheap to stop then), one in ten once it trains.
    rounds += [
        Round(
            kind=cycle[i % 3].name,
            signals=[cycle[i % 3]],
            delay_s=rng.uniform(0.0, 1.0) if i % 10 == 0 else rng.uniform(0.0, 1.5),
            after_output=i % 10 == 0,
        )
        for i in range(SIGNAL_ROUNDS - len(rounds))
    ]
    rounds += [
        Round(
            kind="second SIGTERM",
            signals=[signal.SIGTERM, signal.SIGTERM],
            delay_s=rng.uniform(0.0, 1.0),
            stop_training=True,  # so the stop is still under way when the second one comes
            second_after_s=1.5,
        ),
        # kill -9 of the whole group: while the training imports torch, and as it loads its data
        # (its SIGTERM handler set: the parent's death reaches it as SIGTERM either way)
        Round(kind="SIGKILL", signals=[signal.SIGKILL], delay_s=0.0),
        Round(kind="SIGKILL", signals=[signal.SIGKILL], delay_s=0.0, after_output=True),
    ]
    # the long ones first, so they never end the run alone
    rounds.sort(key=lambda r: not (r.stop_training or r.jobs > 1))
    return rounds


def test_make_serve_stops_on_each_signal_in_time_and_leaves_no_process(tmp_path: Path) -> None:
    # `make serve` first brings the environment up to date: once here, not in each round at once
    subprocess.run(["make", "--no-print-directory", "setup"], cwd=REPO, check=True, timeout=600)
    rng = random.Random(SEED)
    rounds = _rounds(rng)
    cpus = sorted(os.sched_getaffinity(0))
    started = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        done = list(
            pool.map(
                lambda ir: run_round(ir[1], tmp_path / f"round{ir[0]}", cpus[ir[0] % len(cpus)]),
                enumerate(rounds),
            )
        )
    wall = time.monotonic() - started

    failures = [
        f"round {i} ({r.kind}, {r.delay_s:.2f} s after the training started, {r.phase}): "
        + "; ".join(r.problems)
        + "\n    "
        + "\n    ".join(r.output[-8:])
        for i, r in enumerate(done)
        if r.problems
    ]
    by_kind: dict[str, list[float]] = {}
    for r in done:
        if r.stop_s is not None:
            by_kind.setdefault(r.kind, []).append(r.stop_s)
    graceful = [t for kind in ("SIGTERM", "SIGINT", "SIGHUP") for t in by_kind.get(kind, [])]
    summary = ", ".join(
        f"{kind}: median {statistics.median(times):.2f} s, worst {max(times):.2f} s (n={len(times)})"
        for kind, times in sorted(by_kind.items())
    )
    counts = {phase: sum(r.phase == phase for r in done) for phase in ("importing", "running")}
    print(f"\nseed {SEED}; {len(done)} rounds in {wall:.0f} s; training when signalled: {counts}")
    print(f"stop times: {summary}")
    if graceful:
        print(f"signal rounds: median {statistics.median(graceful):.2f} s, worst {max(graceful):.2f} s")
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures)
    forced = [r for r in done if r.second_after_s is not None]
    assert all(any("forcing the stop" in line for line in r.output) for r in forced)
