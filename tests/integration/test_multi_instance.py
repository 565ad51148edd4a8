"""A local stack whose training jobs have two instances (the stack's InstanceCount, as
OPENCOMPOSER_INSTANCE_COUNT=2 sets it), driven over HTTP as a user drives it.

One stack for the module, one job at a time: a 2-epoch job trained by two host processes to
COMPLETED, and a job one of whose hosts dies mid-training.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pretty_midi
import pytest

from contracts import names, statuses
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

SHORT = {"epochs": 2, "batch_size": 16, "update_ratio": 1, "seed": 3}
LONG = {"epochs": 500, "batch_size": 16, "update_ratio": 1, "seed": 3}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-instances")
    options = LocalStackOptions(home=home, port=0, stop_grace_s=5, max_trainings=1, instance_count=2)
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Client:
    return Client(stack.api_url)


def _until(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.2)
    return value


def _logs(stack: LocalStack, job_id: str) -> tuple[str, str]:
    """The training's two host logs: the leader's, the second host's."""
    name = names.training_job_name(stack.names.training_job_prefix, job_id)
    return (stack.logs_dir / f"{name}.log").read_text(), (stack.logs_dir / f"{name}.algo-2.log").read_text()


def test_two_hosts_train_one_job_to_completed_and_only_the_leader_reports(
    stack: LocalStack, client: Client, tmp_path: Path
) -> None:
    # Given a 2-epoch job on a stack of two instances per training job
    job = client.submit({"name": "two-hosts", "hyperparameters": SHORT})

    # When it trains to the end
    done = client.wait(job["job_id"], interval=0.5, timeout=400)

    # Then it completed, trained by two host processes that both ended well
    assert done["status"] == statuses.COMPLETED, done.get("failure_reason")
    leader, second = _logs(stack, job["job_id"])
    assert "Invoking on algo-1 (1 of 2)" in leader and "Invoking on algo-2 (2 of 2)" in second
    assert "Process exited with code 0" in leader and "Process exited with code 0" in second
    # And only the leader reported its epochs: each shows once in the job's metrics
    assert "epoch 2/2" in leader and "epoch 1/2" not in second
    assert [e["epoch"] for e in client.metrics(job["job_id"])["epochs"]] == [1, 2]
    # And the final composition is a 4-track MIDI
    paths = {p.stem: p for p in client.download(job["job_id"], tmp_path / job["job_id"])}
    final = pretty_midi.PrettyMIDI(str(paths["final"]))
    assert len(final.instruments) == 4 and all(track.notes for track in final.instruments)


def test_a_host_that_dies_fails_the_job_with_its_reason_and_leaves_no_process(
    stack: LocalStack, client: Client
) -> None:
    # Given a long job whose two hosts are past their first epoch
    job = client.submit({"name": "a-host-dies", "hyperparameters": LONG})

    def epochs_done() -> int:
        return int((client.get(job["job_id"]).get("progress") or {}).get("epoch", 0))

    _until("an epoch is reported", lambda: epochs_done() >= 1, timeout=300)
    assert stack.runner is not None
    runner = stack.runner

    def both_hosts() -> list[subprocess.Popen[bytes]] | None:
        running = [p for p in runner.processes() if p.poll() is None]
        return running if len(running) == 2 else None

    hosts: list[subprocess.Popen[bytes]] = _until("both hosts run", both_hosts)
    leader, second = hosts  # the runner starts the leader first

    # When the second host dies (killed from outside, as the out-of-memory killer does)
    os.kill(second.pid, signal.SIGKILL)

    # Then the job fails with that host's reason
    done = client.wait(job["job_id"], interval=0.5, timeout=120)
    assert done["status"] == statuses.FAILED
    assert done["failure_reason"].startswith(
        "AlgorithmError: host algo-2: the training process was killed by SIGKILL"
    )
    # And the leader was stopped with it: no process of the job is left
    assert leader.poll() is not None and second.poll() is not None
    for process in hosts:
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)
    still = [j for j in client.list(limit=100)["jobs"] if j["status"] not in statuses.FINAL]
    assert still == [], f"jobs left in a non-final status: {still}"
