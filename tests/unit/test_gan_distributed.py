"""Data-parallel training across SageMaker hosts (gan.distributed): who is who from SageMaker's
variables, and two real host processes of the training's entry point training one job."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan import distributed
from gan.reporter import PROGRESS_FILE
from gan.train import CHECKPOINT_FILE, MODEL_FILE

HOSTS = ["algo-1", "algo-2"]


def test_one_host_or_no_sagemaker_variables_is_training_alone() -> None:
    assert distributed.from_env({}) == distributed.ALONE
    alone = distributed.from_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"})
    assert (alone.rank, alone.size, alone.leader, alone.parallel) == (0, 1, True, False)
    assert alone.shard([1, 2, 3]) == [1, 2, 3] and alone.batch(64) == 64


def test_each_host_knows_its_rank_its_shard_and_its_share_of_the_batch() -> None:
    env = {"SM_HOSTS": json.dumps(HOSTS), "SM_CURRENT_HOST": "algo-2"}
    second = distributed.from_env(env)
    assert (second.rank, second.size, second.leader) == (1, 2, False)
    # the leader's name is the address, as it resolves inside a SageMaker cluster
    assert (second.address, second.port) == ("algo-1", distributed.DEFAULT_PORT)
    first = distributed.from_env({**env, "SM_CURRENT_HOST": "algo-1"})
    pieces = list(range(7))
    assert sorted(first.shard(pieces) + second.shard(pieces)) == pieces
    assert first.batch(64) == second.batch(64) == 32
    # torchrun's variables, which the local runner sets for hosts that are processes here
    local = distributed.from_env({**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    assert (local.address, local.port) == ("127.0.0.1", 29500)


def test_a_current_host_not_among_the_hosts_is_named() -> None:
    with pytest.raises(ValueError, match="algo-3"):
        distributed.from_env({"SM_HOSTS": json.dumps(HOSTS), "SM_CURRENT_HOST": "algo-3"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_env(root: Path, host: str, port: int) -> dict[str, str]:
    folder = root / host
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SM_")},
        "SM_MODEL_DIR": str(folder / "model"),
        "SM_OUTPUT_DATA_DIR": str(folder / "output" / "data"),
        "SM_HOSTS": json.dumps(HOSTS),
        "SM_CURRENT_HOST": host,
        "SM_NUM_CPUS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


@pytest.mark.slow
def test_two_hosts_train_one_job_and_only_the_leader_writes_it(tmp_path: Path) -> None:
    # Given the training's entry point started on two hosts of one job (processes here)
    port = _free_port()
    hosts = [
        subprocess.Popen(
            [sys.executable, "-m", "gan.train", "--dry-run", "--seed", "5"],
            env=_host_env(tmp_path, host, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for host in HOSTS
    ]
    outputs = [host.communicate(timeout=300)[0].decode(errors="replace") for host in hosts]

    # Then both trained to the end, and ended with their logs whole (a host that joined a
    # process group skips the interpreter's teardown: gan.distributed.end_process)
    for host, output in zip(hosts, outputs, strict=True):
        assert host.returncode == 0, output[-3000:]
        assert "INFO gan.train done: " in output, output[-3000:]

    # And the leader alone wrote the progress, the checkpoint, the model and the composition
    leader, follower = (tmp_path / host for host in HOSTS)
    events = [json.loads(line)["event"] for line in (leader / "output" / "data" / PROGRESS_FILE).open()]
    assert events == ["reference", "epoch", "sample", "compositions"]
    assert (leader / "model" / MODEL_FILE).exists() and (leader / "checkpoints" / CHECKPOINT_FILE).exists()
    assert not [p for p in follower.rglob("*") if p.is_file()], "the second host wrote files"


def _train_steps_as_host(rank: int, port: int, folder: str) -> None:
    """One host of two (a process of torch.multiprocessing): two training steps on its shard."""
    from gan import data as gan_data
    from gan.encoding import Windows
    from gan.model import ModelConfig
    from gan.train import Hyperparameters, _join_hosts, new_state, train_step

    torch.set_num_threads(1)
    world = distributed.World(rank=rank, size=2, address="127.0.0.1", port=port)
    distributed.start(world)
    try:
        hp = Hyperparameters(epochs=1, update_ratio=1, batch_size=8, seed=3)
        state = new_state(hp, ModelConfig())
        _join_hosts(state, world)
        windows = Windows(world.shard(gan_data.load_chorales().train[:8]), ModelConfig())
        first = windows.sample(4, torch.Generator().manual_seed(int(state["rng"].initial_seed())))
        for _ in range(2):
            train_step(state, windows, hp, 1e-3, world)
        weights = [p.detach().clone() for p in state["generator"].parameters()]
        torch.save({"weights": weights, "first_batch": first.condition}, Path(folder) / f"{rank}.pt")
    finally:
        distributed.finish(world)


@pytest.mark.slow
def test_the_hosts_draw_different_batches_and_keep_the_same_weights(tmp_path: Path) -> None:
    # Given two hosts each taking training steps on its own shard of the pieces
    torch.multiprocessing.spawn(_train_steps_as_host, args=(_free_port(), str(tmp_path)), nprocs=2)
    first, second = (torch.load(tmp_path / f"{rank}.pt") for rank in (0, 1))

    # Then they drew different batches
    assert not torch.equal(first["first_batch"], second["first_batch"])
    # And after the averaged updates every weight is the same on both
    for mine, theirs in zip(first["weights"], second["weights"], strict=True):
        assert torch.equal(mine, theirs)
