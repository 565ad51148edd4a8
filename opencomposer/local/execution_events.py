"""EventBridge's "Step Functions Execution Status Change" events, for the local stack.

On AWS a rule sends the finaliser (`lambdas/finaliser/handler.py`) the events of executions that
end FAILED, TIMED_OUT or ABORTED (`infra/components/execution_finaliser.py`). moto emits no
events, so `ExecutionEvents` hooks the moment moto's interpreter records an execution's end
(`BaseExecutionWorkerCommunication.terminated`, in this process) and hands each such ending,
once, to the same finaliser through the local Lambda runtime (an Invoke, as EventBridge's target
does), from a thread of its own, with the event in the shape the Step Functions developer guide
documents ("EventBridge for Step Functions execution status changes": no error or cause in
`detail`, which the finaliser then reads with DescribeExecution, as it must on AWS). A hook
rather than listing the executions: a stack with hundreds of ended executions would otherwise
list them all twice a second for as long as it runs.

A failed invocation is tried again `RETRY_AFTER_S` later, up to `MAX_ATTEMPTS` in all (Lambda's
asynchronous invocation: the first and two retries), then left with an ERROR in the log, as AWS
leaves it in the finaliser's dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from contracts import functions

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_AFTER_S = 1.0


def _millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


def execution_status_change(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge event for an execution, from its DescribeExecution answer."""
    arn = str(execution["executionArn"])
    _, _, _, region, account, *_ = arn.split(":")
    stopped = execution.get("stopDate")
    when = stopped if isinstance(stopped, datetime) else datetime.now(UTC)
    output = execution.get("output")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": functions.EXECUTION_EVENT_DETAIL_TYPE,
        "source": functions.EXECUTION_EVENT_SOURCE,
        "account": account,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": _millis(execution.get("startDate")),
            "stopDate": _millis(stopped),
            "input": execution.get("input"),
            "inputDetails": {"included": True},
            "output": output,
            "outputDetails": {"included": True} if output is not None else None,
        },
    }


class ExecutionEvents:
    """Sends the finaliser each ending of one state machine's executions it acts on.
    `client(service)`: a boto3 client of the local AWS."""

    def __init__(self, client: Callable[[str], Any], state_machine_arn: str, function_name: str) -> None:
        self._client = client
        self.state_machine_arn = state_machine_arn
        self.function_name = function_name
        self._ended: queue.Queue[tuple[str, int] | None] = queue.Queue()  # (execution ARN, attempt)
        self._thread: threading.Thread | None = None
        self._original: Callable[..., Any] | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

        self._original = original = BaseExecutionWorkerCommunication.terminated
        events = self

        def terminated(communication: Any) -> None:
            original(communication)
            execution = communication.execution
            status = getattr(execution.exec_status, "value", execution.exec_status)
            if status in functions.EXECUTION_ENDED_OUTSIDE and execution.state_machine_arn == (
                events.state_machine_arn
            ):
                events._ended.put((execution.exec_arn, 1))

        BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign,assignment]
        self._thread = threading.Thread(target=self._run, name="execution-events", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Ends the watching. Waits at most `timeout_s` (the stack's stop has a deadline): an
        invocation under way ends on its own, and the thread is a daemon."""
        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

        if self._original is not None:
            BaseExecutionWorkerCommunication.terminated = self._original  # type: ignore[method-assign]
            self._original = None
        self._stopping.set()  # what is still queued is not delivered: the runtime goes next
        self._ended.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        stepfunctions, lambda_ = self._client("stepfunctions"), self._client("lambda")
        while (ended := self._ended.get()) is not None and not self._stopping.is_set():
            arn, attempt = ended
            try:
                execution = stepfunctions.describe_execution(executionArn=arn)
                done = self._invoke(lambda_, arn, attempt, execution_status_change(execution))
            except Exception:  # noqa: BLE001 - the watcher outlives a failed delivery (moto stopping, ...)
                log.debug("could not deliver the end of %s", arn, exc_info=True)
                done = attempt >= MAX_ATTEMPTS
            if not done and not self._stopping.is_set():
                retry = threading.Timer(RETRY_AFTER_S, self._ended.put, args=((arn, attempt + 1),))
                retry.daemon = True
                retry.start()

    def _invoke(self, lambda_: Any, arn: str, attempt: int, event: dict[str, Any]) -> bool:
        """True once the ending needs no other try: delivered, or out of tries."""
        answer = lambda_.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if "FunctionError" not in answer:
            log.info("execution %s ended %s: finaliser answered %s", arn, event["detail"]["status"],
                     payload.decode(errors="replace"))
            return True
        if attempt >= MAX_ATTEMPTS:
            log.error("the finaliser failed %d times for execution %s, which ended %s; its job may "
                      "still be unfinished: %s", attempt, arn, event["detail"]["status"],
                      payload.decode(errors="replace"))
            return True
        return False
