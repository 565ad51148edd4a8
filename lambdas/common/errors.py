"""Domain errors. Each of the api's classes carries its HTTP status and error code once; the api's
single exception handler turns any of them into `{"error": {"code", "message", "field"}}`. The
last few (starting an execution, reading the stream back) are the stream and redrive handlers'.
"""

from __future__ import annotations

from http import HTTPStatus


class DomainError(Exception):
    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    code: str = "internal_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidFieldError(DomainError):
    """A request field (body, query or header) is missing, malformed or out of range."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_field"

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, field)


class InvalidJsonError(DomainError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_json"


class BodyTooLargeError(DomainError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "body_too_large"


class UnsupportedMediaTypeError(DomainError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class UnauthenticatedError(DomainError):
    status = HTTPStatus.FORBIDDEN
    code = "unauthenticated"


class JobNotFoundError(DomainError):
    """Also raised for another caller's job, so a job id reveals nothing to other callers."""

    status = HTTPStatus.NOT_FOUND
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class JobStateConflictError(DomainError):
    """The job's status does not allow the action (stop a finished job, delete a running one)."""

    status = HTTPStatus.CONFLICT
    code = "job_state_conflict"


class CompositionNotFoundError(DomainError):
    status = HTTPStatus.NOT_FOUND
    code = "composition_not_found"

    def __init__(self, job_id: str, composition_id: str) -> None:
        super().__init__(f"job {job_id!r} has no composition {composition_id!r}")


class DatasetNotFoundError(DomainError):
    """Also raised for another caller's dataset, as for a job: an id reveals nothing to others."""

    status = HTTPStatus.NOT_FOUND
    code = "dataset_not_found"

    def __init__(self, dataset_id: str, field: str | None = None) -> None:
        super().__init__(f"no dataset {dataset_id!r}", field)
        self.dataset_id = dataset_id


class DatasetStateConflictError(DomainError):
    """The dataset's status (or its being the built-in one) does not allow the action."""

    status = HTTPStatus.CONFLICT
    code = "dataset_state_conflict"


class IdempotencyKeyReusedError(DomainError):
    status = HTTPStatus.CONFLICT
    code = "idempotency_key_reused"


class ConditionFailedError(DomainError):
    """A conditional update found the item in another state than expected."""

    status = HTTPStatus.CONFLICT
    code = "condition_failed"


class ServiceUnavailableError(DomainError):
    """A dependency throttled or failed in a way a retry may fix."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"


# --- the stream and redrive handlers' errors (no HTTP status) -----------------------------------
class ExecutionStartError(Exception):
    """StartExecution did not start the job's execution: Step Functions' error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ExecutionRefusedError(ExecutionStartError):
    """An answer no retry changes (the state machine is gone, the input is invalid, ...)."""


class ExecutionUnavailableError(ExecutionStartError):
    """An answer a retry may change (throttling, an outage)."""


class RecordsGone(Exception):
    """The records a failed stream batch held are no longer in the stream."""
