"""Data-parallel training: one host against two (gan.distributed), in the same run.

Each run is the training's own entry point (`python -m gan.train`) with SageMaker's host
variables, hosts being processes on this machine, as the local stack's runner starts them:

- one host: `SM_NUM_CPUS` = every usable CPU (its threads share them);
- two hosts: each half of the CPUs (one thread each on two cores), each its shard of the pieces
  and half of each batch; gradients averaged over gloo after every backward pass.

Both train the same hyperparameters (`EPOCHS` epochs, the defaults otherwise) from the same
seed. Figures: training iterations per second of the epochs (the leader's epoch time minus its
validation, which only the leader does), their ratio (two hosts / one), and the quality each
model reaches on the validation melodies at the end (similarity index, in-key ratio), which
should agree: the updates are those of the whole batch either way, drawn differently.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gan.cpus import usable_cpus
from gan.reporter import PROGRESS_FILE
from gan.train import STEPS_PER_EPOCH

EPOCHS = int(os.environ.get("OPENCOMPOSER_BENCH_DISTRIBUTED_EPOCHS", "10"))
QUALITY = ("similarity", "in_key_ratio")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(hosts: int, root: Path) -> dict[str, Any]:
    names = [f"algo-{i + 1}" for i in range(hosts)]
    cpus = max(1, usable_cpus() // hosts)
    port = _free_port()
    started = time.perf_counter()
    processes = []
    for name in names:
        folder = root / f"{hosts}-hosts" / name
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
    leader = root / f"{hosts}-hosts" / names[0] / "output" / "data" / PROGRESS_FILE
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


def _validation_s() -> float:
    """The leader's per-epoch validation alone, timed here on a fresh model."""
    import torch

    from gan import data as gan_data
    from gan.model import ModelConfig
    from gan.train import Hyperparameters, new_state, validate

    torch.set_num_threads(usable_cpus())
    splits = gan_data.load_chorales()
    state = new_state(Hyperparameters(), ModelConfig())
    validate(state["generator"], splits.validation, 0)  # warm
    started = time.perf_counter()
    validate(state["generator"], splits.validation, 0)
    return time.perf_counter() - started


def main() -> dict[str, Any]:
    validation = _validation_s()
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-dp-") as folder:
        runs = [_run(1, Path(folder)), _run(2, Path(folder))]
    for run in runs:
        training_s = max(1e-9, run["epochs_s"] - EPOCHS * validation)
        run["iterations_per_s"] = round(EPOCHS * STEPS_PER_EPOCH / training_s, 2)
        print(
            f"{run['hosts']} host(s), {run['threads_each']} thread(s) each: {EPOCHS} epochs in "
            f"{run['epochs_s']} s ({run['wall_s']} s wall), {run['iterations_per_s']} it/s "
            f"without validation; quality {run['quality']}",
            flush=True,
        )
    ratio = runs[1]["iterations_per_s"] / runs[0]["iterations_per_s"]
    print(f"two hosts / one: {ratio:.2f}x iterations per second (validation {validation:.2f} s an epoch)")
    return {"epochs": EPOCHS, "validation_s": round(validation, 2), "runs": runs, "ratio": round(ratio, 2)}


if __name__ == "__main__":
    main()
