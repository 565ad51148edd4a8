"""Data-parallel training: one host against two (gan.distributed), in the same run.

Each run is the training's own entry point (`python -m gan.train`) with SageMaker's host
variables, hosts being processes on this machine, as the local stack's runner starts them:

- one host: `SM_NUM_CPUS` = every usable CPU (its threads share them);
- two hosts: each half of the CPUs (one thread each on two cores), each its shard of the pieces
  and half of each batch; gradients averaged over gloo after every backward pass.

Both train the same hyperparameters (`EPOCHS` epochs, the defaults otherwise) from the same
seed. Figures: training iterations per second of the epochs (the leader's epoch time minus its
validation, which only the leader does, timed apart with the leader's threads), their ratio
(two hosts / one), and the quality each model reaches on the validation melodies at the end
(similarity index, in-key ratio), which should agree: the updates are those of the whole batch
either way, drawn differently. Beside them, to explain the ratio: the cost of the gradient
all-reduces of one iteration between two one-thread processes over gloo (`update_ratio` critic
updates and one generator update, each one `gan.distributed.average_gradients`), the ratio it
implies where each host has as many cores as the single host (SageMaker's instances), and the
machine's load average while the bench ran (it may share the machine with other work).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from contracts.hyperparameters import HYPERPARAMETERS
from gan.cpus import usable_cpus
from gan.reporter import PROGRESS_FILE
from gan.train import STEPS_PER_EPOCH

EPOCHS = int(os.environ.get("OPENCOMPOSER_BENCH_DISTRIBUTED_EPOCHS", "10"))
QUALITY = ("similarity", "in_key_ratio")
UPDATE_RATIO = int(next(h.default for h in HYPERPARAMETERS if h.name == "update_ratio"))
ALLREDUCE_ITERATIONS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(hosts: int, root: Path, threads: int | None = None) -> dict[str, Any]:
    """`hosts` processes of one job, each with `threads` threads (default its share of the CPUs)."""
    names = [f"algo-{i + 1}" for i in range(hosts)]
    cpus = threads or max(1, usable_cpus() // hosts)
    root = root / f"{hosts}-hosts-{cpus}-threads"
    port = _free_port()
    started = time.perf_counter()
    processes = []
    for name in names:
        folder = root / name
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SM_")},
            "SM_MODEL_DIR": str(folder / "model"),
            "SM_OUTPUT_DATA_DIR": str(folder / "output" / "data"),
            "SM_HOSTS": json.dumps(names),
            "SM_CURRENT_HOST": name,
            "SM_NUM_CPUS": str(cpus),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "gan.train", "--epochs", str(EPOCHS)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for process in processes:
        _, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise RuntimeError(f"a host failed: {err.decode(errors='replace')[-2000:]}")
    wall = time.perf_counter() - started
    leader = root / names[0] / "output" / "data" / PROGRESS_FILE
    epochs = [json.loads(line) for line in leader.open() if json.loads(line)["event"] == "epoch"]
    # An epoch's `seconds` spans its training steps and the leader's validation: the steps alone
    # are what more hosts share, so the validation's own time (timed below) is taken out.
    seconds = sum(e["metrics"]["seconds"] for e in epochs)
    last = epochs[-1]["metrics"]
    return {
        "hosts": hosts,
        "threads_each": cpus,
        "wall_s": round(wall, 1),
        "epochs_s": round(seconds, 1),
        "quality": {name: round(last[name], 4) for name in QUALITY if name in last},
    }


def _validation_s(threads: int) -> float:
    """The leader's per-epoch validation alone, timed here on a fresh model with the leader's
    threads (a leader of two hosts validates on its one thread)."""
    import torch

    from gan import data as gan_data
    from gan.model import ModelConfig
    from gan.train import Hyperparameters, new_state, validate

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        splits = gan_data.load_chorales()
        state = new_state(Hyperparameters(), ModelConfig())
        validate(state["generator"], splits.validation, 0)  # warm
        started = time.perf_counter()
        validate(state["generator"], splits.validation, 0)
        return time.perf_counter() - started
    finally:
        torch.set_num_threads(previous)


def _allreduce_as_host(rank: int, port: int, folder: str) -> None:
    """One of two one-thread hosts (a torch.multiprocessing process): the gradient all-reduces
    of `ALLREDUCE_ITERATIONS` iterations, through the training's own function."""
    import torch

    from gan import distributed
    from gan.model import Critic, Generator, ModelConfig

    torch.set_num_threads(1)
    world = distributed.World(rank=rank, size=2, address="127.0.0.1", port=port)
    distributed.start(world)
    try:
        generator, critic = Generator(ModelConfig()), Critic(ModelConfig())
        for module in (generator, critic):
            for parameter in module.parameters():
                parameter.grad = torch.randn_like(parameter)

        def iteration() -> None:
            for _ in range(UPDATE_RATIO):
                distributed.average_gradients(critic, world)
            distributed.average_gradients(generator, world)

        for _ in range(3):
            iteration()  # warm: the connections made
        started = time.perf_counter()
        for _ in range(ALLREDUCE_ITERATIONS):
            iteration()
        seconds = (time.perf_counter() - started) / ALLREDUCE_ITERATIONS
        counts = [sum(p.numel() for p in m.parameters()) for m in (generator, critic)]
        if rank == 0:
            Path(folder, "allreduce.json").write_text(json.dumps({"s": seconds, "parameters": counts}))
    finally:
        distributed.finish(world)


def _allreduce() -> dict[str, Any]:
    import torch.multiprocessing

    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-allreduce-") as folder:
        torch.multiprocessing.spawn(_allreduce_as_host, args=(_free_port(), folder), nprocs=2)
        return json.loads(Path(folder, "allreduce.json").read_text())  # type: ignore[no-any-return]


class _Load:
    """The machine's 1-minute load average, sampled every few seconds while the bench runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples = [os.getloadavg()[0]]
        self._every = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self._every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {
            "at_start": round(self.samples[0], 2),
            "mean": round(sum(self.samples) / len(self.samples), 2),
            "max": round(max(self.samples), 2),
        }


def main() -> dict[str, Any]:
    cpus = usable_cpus()
    with _Load() as load:
        validation = {threads: _validation_s(threads) for threads in sorted({cpus, max(1, cpus // 2)})}
        with tempfile.TemporaryDirectory(prefix="opencomposer-bench-dp-") as folder:
            runs = [_run(1, Path(folder)), _run(2, Path(folder))]
            # the control: one host with the threads each of the two has, to tell how much of the
            # ratio is data parallelism and how much one process's threads (see _explanation)
            if cpus > 1:
                runs.append(_run(1, Path(folder), threads=runs[1]["threads_each"]))
        allreduce = _allreduce()
    for run in runs:
        training_s = max(1e-9, run["epochs_s"] - EPOCHS * validation[run["threads_each"]])
        run["iterations_per_s"] = round(EPOCHS * STEPS_PER_EPOCH / training_s, 2)
        print(
            f"{run['hosts']} host(s), {run['threads_each']} thread(s) each: {EPOCHS} epochs in "
            f"{run['epochs_s']} s ({run['wall_s']} s wall), {run['iterations_per_s']} it/s "
            f"without validation; quality after {EPOCHS} epochs {run['quality']}",
            flush=True,
        )
    one, two = runs[:2]
    ratio = two["iterations_per_s"] / one["iterations_per_s"]
    control = runs[2] if len(runs) > 2 else one
    iteration_2 = 1 / two["iterations_per_s"]
    reduce_s = allreduce["s"]
    # Each host with the single host's cores: half the work on as many cores, plus the all-reduce.
    projected = (1 / one["iterations_per_s"]) / ((1 / one["iterations_per_s"]) / 2 + reduce_s)
    figures = {
        "epochs": EPOCHS,
        "cpus": cpus,
        "validation_s": {str(k): round(v, 2) for k, v in validation.items()},
        "runs": runs,
        "ratio": round(ratio, 2),
        # two hosts against one host of as many threads as each of them: data parallelism alone
        "ratio_same_threads": round(two["iterations_per_s"] / control["iterations_per_s"], 2),
        # one host's own threads: its iterations per second against one thread's
        "threads_speedup": round(one["iterations_per_s"] / control["iterations_per_s"], 2),
        "allreduce_ms_per_iteration": round(reduce_s * 1000, 1),
        "allreduce_share_of_two_host_iteration": round(reduce_s / iteration_2, 3),
        "gradient_parameters": dict(zip(("generator", "critic"), allreduce["parameters"], strict=True)),
        "projected_ratio_with_a_host_per_machine": round(projected, 2),
        "load_average": load.summary(),
    }
    print(f"two hosts / one: {ratio:.2f}x iterations per second; against one host of "
          f"{two['threads_each']} thread(s): {figures['ratio_same_threads']:.2f}x; one host's "
          f"{one['threads_each']} threads against {control['threads_each']}: "
          f"{figures['threads_speedup']:.2f}x", flush=True)  # fmt: skip
    print(_explanation(figures), flush=True)
    return figures


def _explanation(f: dict[str, Any]) -> str:
    one, two = f["runs"][:2]
    load = f["load_average"]
    threads = (
        "its second thread made it slower, not faster; the likely cause: at every parallel "
        "region a process's threads wait for the slowest of them (OpenMP's barrier), and on a "
        "busy machine one of "
        "them is often descheduled, where one-thread processes wait for each other only at the "
        "all-reduce; so most of the headline ratio is that loss, not data parallelism"
        if f["threads_speedup"] < 1
        else "so the headline ratio is data parallelism against how well one process's threads "
        "share its work"
    )
    crowded = (
        f", and above all by the machine's other work (a mean load of {load['mean']} on "
        f"{f['cpus']} CPU(s): two processes got far less than two cores)"
        if load["mean"] > f["cpus"]
        else ""
    )
    return (
        f"Why: this machine has {f['cpus']} usable CPU(s). One host trains each update's whole "
        f"batch with {one['threads_each']} thread(s); two hosts each train half of it with "
        f"{two['threads_each']} thread(s), on the same cores: no more compute, the same work per "
        f"update. Against one host of {two['threads_each']} thread(s) (the control), two hosts go "
        f"{f['ratio_same_threads']:.2f}x: that is data parallelism on twice the cores, short of "
        f"2x by the all-reduces (an iteration's {UPDATE_RATIO} critic updates and 1 generator "
        f"update, {f['gradient_parameters']['critic']:,} and {f['gradient_parameters']['generator']:,} "
        f"gradients, take {f['allreduce_ms_per_iteration']} ms over gloo on loopback, "
        f"{100 * f['allreduce_share_of_two_host_iteration']:.1f}% of a two-host iteration) and by "
        f"each host waiting for the slower one at every all-reduce{crowded}. One host's "
        f"{one['threads_each']} threads go {f['threads_speedup']:.2f}x its "
        f"{two['threads_each']} thread(s): {threads}. With a host per machine of as many cores as "
        f"the single host (SageMaker's instances), each would do half the work on the same cores: "
        f"about {f['projected_ratio_with_a_host_per_machine']:.2f}x from this all-reduce cost (less "
        f"over a real network, whose all-reduce is slower than loopback). Load average (1 min, "
        f"the bench's own processes included) "
        f"during the bench: {load['at_start']} at the start, mean {load['mean']}, max {load['max']}, "
        f"on {f['cpus']} CPU(s), shared with other work: it slows every run, and a multi-threaded "
        f"one most."
    )

if __name__ == "__main__":
    main()
