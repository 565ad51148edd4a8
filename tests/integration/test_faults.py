"""Faults from outside the code, on the whole local stack: each ends in the right final status
with a reason, and nothing is left in a non-final status.

One stack for the module, one training at a time (OPENCOMPOSER_MAX_TRAININGS=1), its tests in
order: a Lambda environment that dies mid-request (the caller gets API Gateway's 502 with a
request id, and the retry with the same Idempotency-Key returns the one job); a stop while a job
waits for training capacity; a training process killed mid-epoch (as the out-of-memory killer
does); a training container that fails as it starts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from contracts import names, statuses
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

TINY = {"epochs": 1, "batch_size": 16, "update_ratio": 1, "seed": 3}
LONG = {"epochs": 500, "batch_size": 16, "update_ratio": 1, "seed": 3}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-faults")
    with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5, max_trainings=1)) as running:
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


def _final(client: Client, job_id: str, timeout: float = 240) -> dict[str, Any]:
    return client.wait(job_id, interval=0.5, timeout=timeout)  # type: ignore[no-any-return]


def _execution_status(stack: LocalStack, job_id: str) -> str:
    """The job's execution once it ended (named after the job): none is left running."""
    assert stack.resources is not None
    arn = stack.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
    stepfunctions = stack.client("stepfunctions")

    def ended() -> str | None:
        status = stepfunctions.describe_execution(executionArn=arn)["status"]
        return None if status == "RUNNING" else str(status)

    return str(_until(f"execution {job_id} ends", ended, timeout=30))


def _post_job(url: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url + "/jobs",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", names.IDEMPOTENCY_HEADER: key},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class _HeldWrite:
    """Holds moto's next DynamoDB TransactWriteItems (the POST /jobs write) until released, so a
    test can kill the Lambda environment that is waiting for it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        self.entered, self.released = threading.Event(), threading.Event()
        original = DynamoDBBackend.transact_write_items
        held = self

        def transact_write_items(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if not held.entered.is_set():
                held.entered.set()
                held.released.wait(timeout=60)
            return original(backend, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)


def _kill_the_busy_api_worker(stack: LocalStack) -> int:
    assert stack.runtime is not None
    busy = stack.runtime.busy_processes(stack.names.function_name("api"))
    assert len(busy) == 1, f"one API environment should be serving the request, not {len(busy)}"
    os.kill(busy[0].pid, signal.SIGKILL)
    busy[0].wait(timeout=10)
    return busy[0].pid


def _jobs_named(client: Client, name: str) -> list[dict[str, Any]]:
    return [job for job in client.list(limit=100)["jobs"] if job.get("name") == name]


def test_a_lambda_environment_dying_mid_request_is_a_502_with_a_request_id_and_a_retry_returns_the_one_job(
    stack: LocalStack, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a POST /jobs whose Lambda environment is waiting for its DynamoDB write
    held = _HeldWrite(monkeypatch)
    body, key = {"name": "worker-died", "hyperparameters": TINY}, "fault-test-worker-died"
    answers: list[tuple[int, dict[str, str], bytes]] = []
    request = threading.Thread(target=lambda: answers.append(_post_job(stack.api_url, body, key)))
    request.start()
    assert held.entered.wait(timeout=60), "the request never reached DynamoDB"

    # When that environment dies (SIGKILL), and the write it sent completes after all
    _kill_the_busy_api_worker(stack)
    request.join(timeout=60)
    held.released.set()

    # Then the caller got API Gateway's 502, with the request id the function had logged
    [(status, headers, data)] = answers
    assert status == 502, data
    assert json.loads(data) == {"message": "Internal server error"}
    request_id = headers[names.REQUEST_ID_HEADER]
    assert request_id in (stack.logs_dir / f"{stack.names.function_name('api')}.log").read_text()

    # And the retry with the same Idempotency-Key answers the one job (a fresh environment serves it)
    status, _, data = _post_job(stack.api_url, body, key)
    assert status == 202, data
    job = json.loads(data)
    assert [j["job_id"] for j in _jobs_named(client, "worker-died")] == [job["job_id"]]

    # And that one job runs once, to the end
    assert _final(client, job["job_id"])["status"] == statuses.COMPLETED
    assert _execution_status(stack, job["job_id"]) == "SUCCEEDED"


def test_the_clients_own_retry_gets_the_one_job_when_the_environment_dies(
    stack: LocalStack, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same fault, met by the client's submit (its own Idempotency-Key, its own retries)
    held = _HeldWrite(monkeypatch)
    submitted: list[dict[str, Any]] = []
    retrying = Client(stack.api_url, retry_delays_s=(1.0, 2.0, 4.0))
    submit = threading.Thread(target=lambda: submitted.append(retrying.submit({"name": "client-retried"})))
    submit.start()
    assert held.entered.wait(timeout=60)

    # When the environment dies mid-request
    _kill_the_busy_api_worker(stack)
    held.released.set()
    submit.join(timeout=60)

    # Then submit returned the job, and there is exactly one
    [job] = submitted
    assert [j["job_id"] for j in _jobs_named(client, "client-retried")] == [job["job_id"]]
    client.stop(job["job_id"])  # its training is not what this test is about
    assert _final(client, job["job_id"])["status"] in (statuses.STOPPED, statuses.COMPLETED)


def _training_process(stack: LocalStack) -> int:
    assert stack.runner is not None
    processes = [p for p in stack.runner.processes() if p.poll() is None]
    return processes[0].pid if len(processes) == 1 else 0


def test_a_stop_while_waiting_for_training_capacity_ends_the_job_stopped(
    stack: LocalStack, client: Client
) -> None:
    # Given a long job training in the one slot, and a second job waiting for it
    first = client.submit({"name": "holds-the-slot", "hyperparameters": LONG})
    _until("the first job trains", lambda: client.get(first["job_id"])["status"] == statuses.TRAINING)
    waiting = client.submit({"name": "waits", "hyperparameters": TINY})

    def says_it_waits() -> bool:
        job = client.get(waiting["job_id"])
        return job["status"] == statuses.STARTING and "waiting for training capacity" in (
            job.get("status_message") or ""
        )

    _until("the second job says it waits for capacity", says_it_waits)

    # When the user stops the waiting job
    assert client.stop(waiting["job_id"])["status"] == statuses.STOPPING

    # Then it ends STOPPED at once, without ever having started a training
    done = _final(client, waiting["job_id"], timeout=60)
    assert done["status"] == statuses.STOPPED
    assert "status_message" not in done or not done["status_message"]
    assert _execution_status(stack, waiting["job_id"]) in ("FAILED", "SUCCEEDED")
    name = names.training_job_name(stack.names.training_job_prefix, waiting["job_id"])
    assert not (stack.logs_dir / f"{name}.log").exists(), "a stopped waiting job started a training"
    # and the first job still trains
    assert client.get(first["job_id"])["status"] == statuses.TRAINING


def test_a_training_killed_mid_epoch_ends_failed_saying_it_was_killed(
    stack: LocalStack, client: Client
) -> None:
    # Given the long job, past its first epoch and into the next
    [first] = _jobs_named(client, "holds-the-slot")

    def epochs_done() -> int:
        return int((client.get(first["job_id"]).get("progress") or {}).get("epoch", 0))

    _until("an epoch is reported", lambda: epochs_done() >= 1)
    pid = _until("the training process runs", lambda: _training_process(stack))

    # When something outside kills the training process (as the out-of-memory killer does)
    os.kill(pid, signal.SIGKILL)

    # Then the job ends FAILED, saying it was killed and what to do
    done = _final(client, first["job_id"], timeout=60)
    assert done["status"] == statuses.FAILED
    assert "killed by SIGKILL" in done["failure_reason"]
    assert "submit the job again" in done["failure_reason"]
    assert _execution_status(stack, first["job_id"]) == "FAILED"


def test_a_training_container_that_fails_as_it_starts_ends_failed_with_what_it_printed(
    stack: LocalStack, client: Client
) -> None:
    # Given an image whose entry point dies before it trains (its module is not in the image)
    assert stack.runner is not None
    runner, entry_point = stack.runner, stack.runner.entry_point
    runner.entry_point = [sys.executable, "-m", "gan.not_in_this_image"]
    try:
        job = client.submit({"name": "broken-image", "hyperparameters": TINY})
        done = _final(client, job["job_id"], timeout=120)
    finally:
        runner.entry_point = entry_point

    # Then the job failed with the container's own last words, and nothing waits or runs
    assert done["status"] == statuses.FAILED
    assert "exited with code 1" in done["failure_reason"]
    assert "No module named" in done["failure_reason"]
    assert _execution_status(stack, job["job_id"]) == "FAILED"
    assert stack.runner is not None and all(p.poll() is not None for p in stack.runner.processes())
    still = [j for j in client.list(limit=100)["jobs"] if j["status"] not in statuses.FINAL]
    assert still == [], f"jobs left in a non-final status: {still}"

