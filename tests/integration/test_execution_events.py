"""The whole local stack: an execution stopped from outside the jobs API (StopExecution, as the
Step Functions console does) ends its job FAILED saying so, through the stack's execution
watcher and the real finaliser in the Lambda runtime, as EventBridge and the rule do on AWS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from contracts import names, statuses
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-home")
    with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5)) as running:
        yield running


def _until(condition: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.3)
    return value


def test_an_execution_stopped_outside_the_api_ends_its_job_failed_saying_so(stack: LocalStack) -> None:
    client = Client(stack.api_url)
    assert stack.resources is not None
    stepfunctions, sagemaker = stack.client("stepfunctions"), stack.client("sagemaker")
    # Given a long job whose training job is running
    job = client.submit({"hyperparameters": {"epochs": 500, "batch_size": 16, "update_ratio": 1}})
    job_id = job["job_id"]
    name = names.training_job_name(stack.names.training_job_prefix, job_id)
    arn = stack.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"

    def training() -> bool:
        try:
            return sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
        except sagemaker.exceptions.ClientError:
            return False  # not created yet

    _until(training, "the training job never started")
    assert client.get(job_id)["status"] in (statuses.STARTING, statuses.TRAINING)

    try:
        # When an operator stops its execution from outside the jobs API
        stepfunctions.stop_execution(executionArn=arn, error="Operator", cause="stopped from the console")
        _until(lambda: stepfunctions.describe_execution(executionArn=arn)["status"] == "ABORTED",
               "the execution did not stop", timeout=30)

        # Then the job does not stay unfinished: it ends FAILED, saying how its workflow ended
        done = _until(lambda: (j := client.get(job_id))["status"] in statuses.FINAL and j,
                      "the job stayed unfinished", timeout=60)
    finally:
        sagemaker.stop_training_job(TrainingJobName=name)  # the stack's runner ends the process
    assert done["status"] == statuses.FAILED
    assert done["failure_reason"].startswith(
        "the job's training workflow ended ABORTED because its execution was stopped outside the jobs API")
    assert (stack.logs_dir / f"{stack.names.function_name('finaliser')}.log").exists()
