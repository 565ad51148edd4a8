"""Step Functions executions of the training state machine."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.dal.aws import client, error_code, error_message, raise_common
from lambdas.common.errors import ExecutionRefusedError, ExecutionUnavailableError


class Executions:
    # StartExecution answers that no retry changes.
    PERMANENT_ERRORS = frozenset(
        {
            "ValidationException",
            "InvalidArn",
            "InvalidName",
            "InvalidExecutionInput",
            "StateMachineDoesNotExist",
            "StateMachineDeleting",
            "AccessDeniedException",
        }
    )

    def __init__(self, state_machine_arn: str) -> None:
        self._arn = state_machine_arn

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Starts the execution `name`: True; False when an execution of that name exists already
        (started before). ExecutionRefusedError for an answer in PERMANENT_ERRORS,
        ExecutionUnavailableError for any other."""
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except ClientError as e:
            code = error_code(e)
            if code == "ExecutionAlreadyExists":
                return False
            error = ExecutionRefusedError if code in self.PERMANENT_ERRORS else ExecutionUnavailableError
            raise error(code, error_message(e)) from e
        return True


def describe_execution(execution_arn: str) -> dict[str, Any]:
    """DescribeExecution's answer (status, error, cause, ...); throttling and transient answers
    become ServiceUnavailableError, for the caller's retry."""
    try:
        answer: dict[str, Any] = client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as e:
        raise_common(e)
    return answer
