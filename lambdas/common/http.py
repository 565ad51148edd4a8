"""What every HTTP-facing function shares (the api and the compose function, each serving its
routes of `contracts.routes`): the caller's identity, bodies checked against their models, the
route table registered from the contract, and the one error shape.

The caller is `requestContext.identity.userArn` (IAM authorization on AWS), falling back to
`requestContext.identity.caller`; the local front door sends `deployment.LOCAL_OWNER`. The
owner of a job is the caller as `contracts.owners.owner` reduces it (an assumed role's session
name dropped, so every session of a role shares its jobs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from pydantic import BaseModel

from contracts import owners, routes
from lambdas.common import schemas
from lambdas.common.errors import DomainError, UnauthenticatedError

_JOB_PATH = re.compile(r"^/jobs/([^/]+)")
_ROUTES = {(route.method, route.path): route for route in routes.ROUTES}

# (method, path as in contracts.routes) → the function that serves it.
RouteFunctions = dict[tuple[str, str], Callable[..., Response]]


def owner(app: APIGatewayRestResolver) -> str:
    identity = app.current_event.request_context.identity
    caller = identity.user_arn or identity.caller
    if not caller:
        raise UnauthenticatedError("the request carries no caller identity (IAM authorization required)")
    return owners.owner(caller)


def json_response(status: int, body: Any, model: type[BaseModel]) -> Response:
    """`body` as JSON, after checking that JSON against its model (what the OpenAPI document
    says of it): a body the document would not describe is a 500, never a silent surprise."""
    text = json.dumps(body)
    model.model_validate_json(text)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=text)


def answer(method: str, path: str, body: Any = None) -> Response:
    """The route's success: its status from `contracts.routes`, its body's model from
    `schemas.RESPONSE_BODIES` (None: no body)."""
    status = _ROUTES[(method, path)].success
    model = schemas.RESPONSE_BODIES[(method, path)]
    if model is None:
        return Response(status_code=status, body=None)
    return json_response(status, body, model)


def register(resolver: APIGatewayRestResolver, function: str, served: RouteFunctions) -> None:
    """Registers a function for each route `function` (a `contracts.functions` key) serves, in
    the order of ROUTES; RuntimeError when such a route has none or a function has no route."""
    contract = [(route.method, route.path) for route in routes.served_by(function)]
    unserved = [key for key in contract if key not in served]
    unknown = [key for key in served if key not in contract]
    if unserved or unknown:
        raise RuntimeError(
            f"contracts.routes and the {function} function differ: routes without a "
            f"function {unserved}, functions without a route {unknown}"
        )
    for method, path in contract:
        resolver.route(routes.handler_path(path), method=method)(served[(method, path)])


def _error(status: HTTPStatus, code: str, message: str, field: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response(status, {"error": error}, schemas.Error)


def handle_errors(app: APIGatewayRestResolver, logger: Logger) -> None:
    """The one place where domain errors become HTTP statuses (each class carries its own);
    anything else is a 500 whose cause only the log holds."""

    def job_id_in_path() -> str | None:
        # For the logs: the job a failed request was about (path parameters vary with the API
        # Gateway resource, e.g. `{proxy+}`, so read the path itself).
        match = _JOB_PATH.match(app.current_event.path or "")
        return match.group(1) if match else None

    @app.exception_handler(DomainError)
    def domain_error(e: DomainError) -> Response:
        log = logger.error if e.status >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.info
        log(
            "request failed",
            status=int(e.status),
            code=e.code,
            field=e.field,
            job_id=job_id_in_path(),
            cause=e.message,
        )
        return _error(e.status, e.code, e.message, e.field)

    @app.exception_handler(Exception)
    def unexpected_error(e: Exception) -> Response:
        logger.exception("unexpected error", path=app.current_event.path, job_id=job_id_in_path())
        return _error(
            HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error; see the function's log"
        )

    @app.not_found
    def not_found(e: Exception) -> Response:
        event = app.current_event
        return _error(HTTPStatus.NOT_FOUND, "not_found", f"no route {event.http_method} {event.path}")
