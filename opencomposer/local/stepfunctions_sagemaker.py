"""The Step Functions `sagemaker:createTrainingJob.sync` integration for moto's interpreter.

moto 5.2.5 lists `sagemaker` among the services it does not integrate
(`_UNSUPPORTED_SERVICE_NAMES` in `state_task_service_factory`): a `.sync` task then ends in
`States.Runtime`, which no Catch sees. `install()` puts the service below in its place.
It behaves as Step Functions does on AWS for this integration:

- CreateTrainingJob is called with the task's Parameters; an API error fails the task as
  Step Functions names it (`sagemaker_error`): `SageMaker.<exception class>` for the errors
  SageMaker models (`SageMaker.ResourceLimitExceededException`, `...ResourceInUseException`),
  `SageMaker.AmazonSageMakerException` for the rest (throttling, validation, server errors),
  with the AWS SDK's message as the Cause, the error code and status in it, which is what the
  state machine tells those apart by;
- the task then polls the job until it is Completed, Failed or Stopped (moto's interpreter
  every 0.5 s: here each poll reads the job's status in moto's backend, in this process, and
  only the last one calls DescribeTrainingJob; 200 executions each calling it twice a second
  over HTTP kept a core busy answering them, and the API slow, while a backlog waited);
- Completed: the description is the task's result; Failed/Stopped: the task fails with
  `States.TaskFailed` and the description as its Cause (JSON, `FailureReason` included), which
  is what the state machine reads its failure reason from.

The AWS SDK integration (`aws-sdk:sagemaker:describeTrainingJob`, which the state machine polls
an existing training job with) is moto's own, with one fix: its answer's datetimes become ISO
strings, as for `.sync` (AWS's integration answers JSON; moto's fails to serialise them).

Only this one optimised action is supported (the only one the project's state machine uses). Installing
patches module state of moto's interpreter, so import and call it once per process, before
any execution starts; it is safe to call twice. Pins: moto==5.2.5 (see pyproject).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (  # noqa: E501
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

SERVICE_NAME: Final = "sagemaker"
# WaitForTaskToken is declared too, though unused: with it the callback machinery creates the
# endpoint that its cleanup (`interrupt_all()`) dereferences unconditionally.
_PATTERNS: Final = {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
_ACTION: Final = "create_training_job"
_FINISHED_OK: Final = {"Completed"}
_FINISHED_BADLY: Final = {"Failed", "Stopped"}


def _jsonable(value: Any) -> Any:
    """The description's datetimes as ISO strings: execution output must serialise to JSON."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    def __init__(self) -> None:
        # moto types the conditions as plain str constants but annotates the set as enum-like.
        super().__init__(supported_integration_patterns=set(_PATTERNS))  # type: ignore[arg-type]

    def _get_supported_parameters(self) -> set[str] | None:
        # Any parameter: SageMaker validates them itself, as on AWS.
        return set() if self._get_boto_service_action() == _ACTION else None

    def _client(self, region: str, credentials: StateCredentials) -> Any:
        return boto_client_for(service=SERVICE_NAME, region=region, state_credentials=credentials)

    def _task_failure(self, env: Environment, error: str, cause: str) -> FailureEvent:
        name = (
            StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
            if error == StatesErrorNameType.StatesTaskFailed.to_name()
            else CustomErrorName(error)
        )
        return FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's total=True TypedDict
                taskFailedEventDetails=TaskFailedEventDetails(
                    error=error,
                    cause=cause,
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                )
            ),
        )

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            return self._task_failure(env, *sagemaker_error(ex))
        return super()._from_error(env=env, ex=ex)

    def _wait_for_task_token(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"Unsupported .waitForTaskToken procedure in {self.resource.resource_arn}")

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        sagemaker = self._client(resource_runtime_part.region, state_credentials)
        response = getattr(sagemaker, self._get_boto_service_action())(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> Callable[[], Any] | None:
        env.stack.pop()  # CreateTrainingJob's answer: only the ARN, the name is in the request
        name = normalised_parameters["TrainingJobName"]
        sagemaker = self._client(resource_runtime_part.region, state_credentials)

        region = resource_runtime_part.region
        account = resource_runtime_part.account

        def resolve() -> Any | None:
            if _status_in_backend(account, region, name) in _STILL_RUNNING:
                return None
            description = sagemaker.describe_training_job(TrainingJobName=name)
            description.pop("ResponseMetadata", None)
            status = description.get("TrainingJobStatus")
            if status in _FINISHED_OK:
                return _jsonable(description)
            if status in _FINISHED_BADLY:
                failure = self._task_failure(
                    env, StatesErrorNameType.StatesTaskFailed.to_name(), json.dumps(_jsonable(description))
                )
                raise FailureEventException(failure)
            return None  # InProgress or Stopping: poll again

        return resolve


_STILL_RUNNING: Final = {"InProgress", "Stopping"}

# The error codes SageMaker's API models as exceptions of their own (its service model's error
# shapes; the AWS SDK for Java names each `<code>Exception`, or the code where it ends so): Step
# Functions' optimised integration names a failure after the exception class, so every other
# code (ThrottlingException, ValidationException, InternalFailure, ...) is the service's base
# class, AmazonSageMakerException, as AWS's own examples catch it (Step Functions developer
# guide, "Create and manage Amazon SageMaker AI jobs", Retry on
# SageMaker.AmazonSageMakerException and SageMaker.ResourceLimitExceededException).
_MODELLED_ERRORS: Final = {
    "ResourceLimitExceeded": "ResourceLimitExceededException",
    "ResourceInUse": "ResourceInUseException",
    "ResourceNotFound": "ResourceNotFoundException",
    "ConflictException": "ConflictException",
}


def sagemaker_error(error: ClientError) -> tuple[str, str]:
    """(error, cause) of a failed SageMaker call, as Step Functions reports it: the cause is the
    AWS SDK for Java's message, `<message> (Service: AmazonSageMaker; Status Code: <status>;
    Error Code: <code>; Request ID: <id>; Proxy: null)`."""
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    metadata = error.response.get("ResponseMetadata", {})
    cause = (f"{details.get('Message', '')} (Service: AmazonSageMaker; "
             f"Status Code: {metadata.get('HTTPStatusCode', 400)}; Error Code: {code}; "
             f"Request ID: {metadata.get('RequestId', '')}; Proxy: null)")
    return f"SageMaker.{_MODELLED_ERRORS.get(code, 'AmazonSageMakerException')}", cause


def _status_in_backend(account: str, region: str, name: str) -> str | None:
    """The training job's status as moto holds it (None where it cannot tell: then the poll asks
    DescribeTrainingJob, as it would on AWS)."""
    from moto.sagemaker.models import sagemaker_backends

    try:
        return str(sagemaker_backends[account][region].training_jobs[name].training_job_status)
    except (KeyError, AttributeError):
        return None


class StateTaskServiceAwsSdkJson(StateTaskServiceAwsSdk):
    """moto's AWS SDK integration, its answers made JSON (datetimes as ISO strings)."""

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(_jsonable(env.stack.pop()))


_original_factory: Callable[..., StateTaskService] | None = None


def install() -> None:
    """Makes moto's interpreter build SageMaker tasks with the service above."""
    global _original_factory
    if _original_factory is not None:
        return
    original = _original_factory = state_task_factory.state_task_service_for

    def state_task_service_for(service_name: str) -> StateTaskService:
        if service_name == SERVICE_NAME:
            return StateTaskServiceSageMaker()
        if service_name == "aws-sdk":
            return StateTaskServiceAwsSdkJson()
        return original(service_name)

    state_task_factory.state_task_service_for = state_task_service_for


def uninstall() -> None:
    """Puts moto's own factory back (SageMaker tasks are unsupported again)."""
    global _original_factory
    if _original_factory is not None:
        state_task_factory.state_task_service_for = _original_factory
        _original_factory = None
