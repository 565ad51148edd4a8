"""`make serve`'s state outlives it: stopped or killed with `kill -9` mid-training, and started
again on the same home, its finished jobs, their files and compositions are all there, and the
interrupted job has ended with a reason; nothing is left STARTING or TRAINING."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from contracts import statuses
from opencomposer.client import ApiError, Client
from opencomposer.local import snapshot
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = {"epochs": 1, "batch_size": 16, "update_ratio": 1}
LONG = {"epochs": 500, "batch_size": 16, "update_ratio": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    """`python -m opencomposer.local.serve` (what `make serve` execs), in a session of its own."""
    env = {**os.environ, "OPENCOMPOSER_HOME": str(home), "OPENCOMPOSER_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "opencomposer.local.serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = Client(f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 120
    while True:
        try:
            client.list(limit=1)
            return process
        except ApiError as e:
            assert e.status == 0, e  # not up yet: nothing answers the port
            assert process.poll() is None, "the stack did not start"
            assert time.monotonic() < deadline, "the stack never answered"
            time.sleep(0.5)


def _until(condition: Any, what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def test_kill_9_mid_training_then_start_again(tmp_path: Path) -> None:
    port = _free_port()
    first = _serve(tmp_path, port)
    try:
        client = Client(f"http://127.0.0.1:{port}", timeout=60)
        # Given a finished job with a composition, and a job in the middle of its training
        done = client.wait(client.submit({"name": "kept", "hyperparameters": TINY})["job_id"], 0.5, 300)
        assert done["status"] == statuses.COMPLETED
        composed = client.compose(done["job_id"], sample="ode-to-joy", seed=4)
        final_midi = _fetch(client, done["job_id"], "final")
        running = client.submit({"name": "interrupted", "hyperparameters": LONG})["job_id"]
        _until(lambda: client.get(running)["status"] == statuses.TRAINING, "the long job to train")
        time.sleep(snapshot.INTERVAL_S + 2)  # a snapshot taken since

        # When the stack is killed hard
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        _until(lambda: not _trainings(tmp_path), "the orphaned training to end", timeout=30)

        # and started again on the same home
        second = _serve(tmp_path, port)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    try:
        jobs = {job["job_id"]: job for job in client.list()["jobs"]}
        # Then the finished job, its files and its composition are as they were
        assert jobs[done["job_id"]]["status"] == statuses.COMPLETED
        assert jobs[done["job_id"]]["outputs"] == done["outputs"]
        assert _fetch(client, done["job_id"], "final") == final_midi
        mine = [c for c in client.compositions(done["job_id"])["compositions"] if c["kind"] == "composition"]
        assert [c["composition_id"] for c in mine] == [composed["composition_id"]]
        assert len(client.metrics(done["job_id"])["epochs"]) == 1
        # and the interrupted job ended, saying what happened and what to do
        interrupted = jobs[running]
        assert interrupted["status"] == statuses.FAILED
        assert "stopped while this job was TRAINING" in interrupted["failure_reason"]
        assert "submit it again" in interrupted["failure_reason"]
        assert not [j for j in jobs.values() if j["status"] not in statuses.FINAL]
        # and the restarted stack trains as before
        again = client.wait(client.submit({"hyperparameters": TINY})["job_id"], 0.5, 300)
        assert again["status"] == statuses.COMPLETED
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(40)


def test_a_clean_stop_keeps_the_stopped_job_and_a_fresh_home_starts_empty(tmp_path: Path) -> None:
    with LocalStack(LocalStackOptions(home=tmp_path, port=0, stop_grace_s=2, persist=True)) as stack:
        client = Client(stack.api_url)
        job_id = client.submit({"hyperparameters": LONG})["job_id"]
        _until(lambda: client.get(job_id)["status"] == statuses.TRAINING, "the job to train")
    # the stop ended its training (STOPPED) and saved that
    with LocalStack(LocalStackOptions(home=tmp_path, port=0, persist=True)) as stack:
        job = Client(stack.api_url).get(job_id)
        assert job["status"] == statuses.STOPPED, job["failure_reason"]
        assert stack.restored["jobs"] == 1 and stack.restored["interrupted"] == 0
    with LocalStack(LocalStackOptions(home=tmp_path / "elsewhere", port=0, persist=True)) as stack:
        assert Client(stack.api_url).list()["jobs"] == []


@pytest.mark.parametrize("status", list(statuses.JobStatus))
def test_a_restored_job_ends_only_as_the_contract_allows(status: statuses.JobStatus) -> None:
    final = snapshot.interrupted_end(status)
    if status in statuses.FINAL:
        assert final is None
    else:
        assert final in statuses.FINAL and statuses.may_move(status, final)


def _fetch(client: Client, job_id: str, name: str) -> bytes:
    (composition,) = [c for c in client.compositions(job_id)["compositions"] if c["name"] == name]
    import urllib.request

    with urllib.request.urlopen(composition["url"], timeout=30) as reply:
        return bytes(reply.read())


def _trainings(home: Path) -> list[int]:
    """Live processes whose working directory is a training's, under home (Linux's /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(home / "training")):
                    found.append(int(entry))
            except OSError:
                continue
    return found
