"""The finaliser (lambdas/finaliser/handler.py) against moto: real executions that ended outside
the state machine's Catch, the event the local stack's watcher builds for them (EventBridge's
documented shape), and the job each leaves behind, from every status."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from contracts import deployment, functions, statuses, storage
from contracts.statuses import JobStatus
from lambdas.common import env
from lambdas.common.errors import ServiceUnavailableError
from lambdas.finaliser.handler import lambda_handler
from opencomposer.local.execution_events import execution_status_change
from tests.unit.conftest import TABLE, FakeContext, failing_calls, put_job_item

JOB_ID = "f" * 32
# A path the input lacks: the interpreter's own error (States.Runtime), which no Catch takes.
BROKEN = {"StartAt": "Broken", "States": {"Broken": {
    "Type": "Pass", "Parameters": {"missing.$": "$.not_there"}, "End": True}}}
SLOW = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 600, "End": True}}}


@pytest.fixture
def finaliser_env(aws: None) -> Iterator[None]:
    env.finaliser_env.cache_clear()
    yield
    env.finaliser_env.cache_clear()


def _ended(definition: dict[str, Any], job_id: str = JOB_ID, stop: bool = False) -> dict[str, Any]:
    """A real execution of `definition`, named after the job as the stream handler names it, once
    it has ended (stopped first with `stop`): its DescribeExecution answer."""
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name=f"m{time.monotonic_ns()}", definition=json.dumps(definition),
                                       roleArn=f"arn:aws:iam::{deployment.LOCAL_ACCOUNT}:role/states")
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=job_id,
                              input=json.dumps({"job_id": job_id}))["executionArn"]
    if stop:
        sfn.stop_execution(executionArn=arn, error="Console", cause="stopped by an operator")
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.1)
    return described  # type: ignore[no-any-return]


def _job(job_id: str = JOB_ID) -> dict[str, Any]:
    item: dict[str, Any] = boto3.resource("dynamodb").Table(TABLE).get_item(
        Key=storage.job_key(job_id), ConsistentRead=True)["Item"]
    return item


def _finalise(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = lambda_handler(event, FakeContext(function_name="finaliser"))
    return result


def test_the_event_is_eventbridges_documented_shape(finaliser_env: None) -> None:
    execution = _ended(BROKEN)
    event = execution_status_change(execution)

    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region",
                          "resources", "detail"}
    assert (event["source"], event["detail-type"]) == ("aws.states", "Step Functions Execution Status Change")
    assert event["resources"] == [execution["executionArn"]]
    assert (event["account"], event["region"]) == (deployment.LOCAL_ACCOUNT, deployment.LOCAL_REGION)
    detail = event["detail"]
    assert set(detail) == {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate",
                           "input", "inputDetails", "output", "outputDetails"}
    assert detail["status"] == "FAILED" and detail["name"] == JOB_ID
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    json.dumps(event)  # what an Invoke carries


def test_an_execution_failed_by_the_interpreter_ends_its_job_failed_naming_the_error(
    finaliser_env: None,
) -> None:
    # Given a job TRAINING whose execution failed with an error no Catch takes
    put_job_item(JOB_ID, "TRAINING")
    execution = _ended(BROKEN)
    assert execution["status"] == "FAILED" and execution["error"] == "States.Runtime"

    # When EventBridge hands the finaliser the ending (without error or cause, as documented)
    result = _finalise(execution_status_change(execution))

    # Then the job is FAILED, and says how its workflow ended, with the execution's own error
    assert result == {"job_id": JOB_ID, "status": "FAILED"}
    job = _job()
    assert job["status"] == "FAILED"
    reason = job["failure_reason"]
    assert reason.startswith("the job's training workflow ended FAILED outside its own error handling "
                             "(States.Runtime: ")
    assert execution["cause"] in reason


@pytest.mark.parametrize("before", list(JobStatus))
def test_a_stopped_execution_ends_its_job_only_as_the_contract_allows(
    finaliser_env: None, before: JobStatus
) -> None:
    put_job_item(JOB_ID, before.value, failure_reason="as it was" if before == statuses.FAILED else None)
    execution = _ended(SLOW, stop=True)
    assert execution["status"] == "ABORTED"

    result = _finalise(execution_status_change(execution))

    after = JobStatus(_job()["status"])
    if before in statuses.FINAL:
        # A final job never changes: the state machine recorded its end (the usual case).
        assert after == before and result["status"] is None
        assert _job().get("failure_reason") == ("as it was" if before == statuses.FAILED else None)
    elif before == statuses.STOPPING:
        # The user asked for the stop: it ends as one.
        assert after == statuses.STOPPED and _job().get("failure_reason") is None
    else:
        assert after == statuses.FAILED
        # (moto's DescribeExecution keeps no error or cause for a stop; AWS's may add them)
        reason = _job()["failure_reason"]
        assert reason.startswith("the job's training workflow ended ABORTED because its execution was "
                                 "stopped outside the jobs API")
        assert reason.endswith("; POST /jobs/{id}/stop is the way to stop a job")
    assert after == before or statuses.may_move(before, after)
    assert (after in statuses.FINAL) and result["status"] == (None if before in statuses.FINAL else after)


def test_a_timed_out_execution_names_its_timeout_from_the_events_own_error(finaliser_env: None) -> None:
    put_job_item(JOB_ID, "STARTING")
    event = execution_status_change(_ended(BROKEN))
    # An event that carries the error and cause itself: no DescribeExecution is needed.
    event["detail"].update(status="TIMED_OUT", error="States.Timeout", cause="the execution ran 60 s")

    with failing_calls({"DescribeExecution": "AccessDeniedException"}):
        _finalise(event)

    assert _job()["failure_reason"] == ("the job's training workflow ended TIMED_OUT at its time limit "
                                        "(States.Timeout: the execution ran 60 s)")


def test_other_endings_and_deleted_jobs_are_left_alone(finaliser_env: None) -> None:
    put_job_item(JOB_ID, "TRAINING")
    event = execution_status_change(_ended(BROKEN))
    event["detail"]["status"] = "SUCCEEDED"  # the rule passes none: the handler checks again

    assert _finalise(event)["status"] is None
    assert _job()["status"] == "TRAINING"

    # A deleted job is not brought back by the conditional update.
    gone = execution_status_change(_ended(BROKEN, job_id="0" * 32))
    assert _finalise(gone)["status"] is None
    assert "Item" not in boto3.resource("dynamodb").Table(TABLE).get_item(Key=storage.job_key("0" * 32))


def test_a_throttled_update_is_raised_for_the_event_to_be_delivered_again(finaliser_env: None) -> None:
    put_job_item(JOB_ID, "TRAINING")
    event = execution_status_change(_ended(BROKEN))

    with failing_calls({"UpdateItem": "ThrottlingException"}), pytest.raises(ServiceUnavailableError):
        _finalise(event)
    assert _job()["status"] == "TRAINING"
    # ... and the next delivery ends it.
    assert _finalise(event)["status"] == "FAILED"


def test_an_event_of_another_kind_is_refused(finaliser_env: None) -> None:
    event = execution_status_change(_ended(BROKEN))
    event["detail-type"] = "SageMaker Training Job State Change"

    with pytest.raises(ValidationError, match="not a Step Functions execution status change"):
        _finalise(event)
    assert functions.FINALISER.environment == (functions.ENV_TABLE,)
