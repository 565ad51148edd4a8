"""EventBridge's "Step Functions Execution Status Change" → the end of a job its execution left
unfinished.

The state machine records every ending it can see: its Catch hands any error of a task to one
recording step. Some endings it cannot see: an execution stopped from the console or the API
(ABORTED), an error of the interpreter itself (`States.Runtime`, which no Catch takes), a
timeout (TIMED_OUT), or a recording step out of retries. Each leaves its job STARTING, TRAINING
or STOPPING for ever. The stack's rule sends this function the FAILED, TIMED_OUT and ABORTED
events of its state machine; the job (named as the execution: one execution per job, named
after its id) is ended with a conditional update: STOPPING → STOPPED, any other unfinished
status → FAILED with a reason that names the execution's status, error and cause. A job already
final (the state machine recorded its end: the usual case, since its own Fail states end the
execution FAILED too) keeps its status: the update's condition fails and nothing changes.

The event's `detail` may carry no error and cause (the documented event has neither): then
DescribeExecution gives them. A transient AWS error is raised: the event is delivered again
(Lambda's asynchronous retries; locally the stack's watcher tries again).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import functions, training
from lambdas.common.dal import JobsRepository
from lambdas.common.dal.executions import describe_execution
from lambdas.common.env import finaliser_env

logger = Logger(service="opencomposer-finaliser")

# What each ending means to the user, after "the job's training workflow ended <STATUS>", and
# what to do next where there is something.
_WHY = {
    "FAILED": "outside its own error handling",
    "TIMED_OUT": "at its time limit",
    "ABORTED": "because its execution was stopped outside the jobs API",
}
_NEXT = {"ABORTED": "; POST /jobs/{id}/stop is the way to stop a job"}


class ExecutionDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1)
    state_machine_arn: str = Field(alias="stateMachineArn", min_length=1)
    name: str = Field(min_length=1)
    status: str
    error: str | None = None
    cause: str | None = None


class ExecutionStatusChange(BaseModel):
    """The event, as EventBridge delivers it (Step Functions developer guide, "EventBridge for
    Step Functions execution status changes")."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: ExecutionDetail

    @model_validator(mode="after")
    def _is_an_execution_status_change(self) -> ExecutionStatusChange:
        if (self.source, self.detail_type) != (functions.EXECUTION_EVENT_SOURCE,
                                               functions.EXECUTION_EVENT_DETAIL_TYPE):
            raise ValueError(f"not a Step Functions execution status change: "
                             f"{self.source}/{self.detail_type}")
        return self


def failure_reason(status: str, error: str | None, cause: str | None) -> str:
    """What the job's `failure_reason` says, within what SageMaker's own reasons may hold."""
    reason = f"the job's training workflow ended {status} {_WHY.get(status, '')}".rstrip()
    said = ": ".join(part for part in (error, cause) if part)
    if said:
        reason += f" ({said})"
    reason += _NEXT.get(status, "")
    if len(reason) > training.FAILURE_REASON_MAX:
        reason = reason[: training.FAILURE_REASON_MAX - 1] + "…"
    return reason


def finalise(change: ExecutionStatusChange) -> str | None:
    """Ends the execution's job if it is unfinished: the status written, or None."""
    detail = change.detail
    if detail.status not in functions.EXECUTION_ENDED_OUTSIDE:
        logger.debug("not an ending to act on", execution_arn=detail.execution_arn, status=detail.status)
        return None
    error, cause = detail.error, detail.cause
    if error is None and cause is None:
        described = describe_execution(detail.execution_arn)
        error, cause = described.get("error"), described.get("cause")
    reason = failure_reason(detail.status, error, cause)
    written = JobsRepository(finaliser_env().table_name).end_abandoned(detail.name, reason)
    if written:
        logger.error("job status changed", job_id=detail.name, status=written, cause=reason,
                     execution_status=detail.status)
    else:
        logger.info("the job was already final", job_id=detail.name, execution_status=detail.status)
    return written


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event)
    return {"job_id": change.detail.name, "status": finalise(change)}
