"""The REST API (API Gateway REST proxy events): routes, the caller's identity, error mapping.

One function per route of `contracts.routes.ROUTES`, registered from the contract: a route
without a function, or a function without a route, fails at import. The caller is
`requestContext.identity.userArn` (IAM authorization on AWS), falling back to
`requestContext.identity.caller`; the local front door sends `deployment.LOCAL_OWNER`. The
owner of a job is the caller as `contracts.owners.owner` reduces it (an assumed role's session
name dropped, so every session of a role shares its jobs).

Every body it sends is checked against its model in `lambdas.common.schemas` (each success
status comes from `contracts.routes`), the models the OpenAPI document (`lambdas.api.openapi`,
served at `GET /openapi.json`) is built from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from contracts import names, owners, routes
from lambdas.api import openapi, parsing
from lambdas.api.jobs import JobService
from lambdas.common import schemas
from lambdas.common.dal import ArtifactsStore, JobsRepository, Training
from lambdas.common.env import api_env
from lambdas.common.errors import DomainError, UnauthenticatedError
from lambdas.common.models import CreateJobRequest, ListJobsQuery

logger = Logger(service="opencomposer-api")
app = APIGatewayRestResolver()
_JOB_PATH = re.compile(r"^/jobs/([^/]+)")


def _service() -> JobService:
    env = api_env()
    return JobService(JobsRepository(env.table_name), ArtifactsStore(env.bucket_name), Training())


def _owner() -> str:
    identity = app.current_event.request_context.identity
    caller = identity.user_arn or identity.caller
    if not caller:
        raise UnauthenticatedError("the request carries no caller identity (IAM authorization required)")
    return owners.owner(caller)


def _job_id_in_path() -> str | None:
    """For the logs: the job a failed request was about (path parameters vary with the
    API Gateway resource, e.g. `{proxy+}`, so read the path itself)."""
    match = _JOB_PATH.match(app.current_event.path or "")
    return match.group(1) if match else None


def _json(status: int, body: Any, model: type[BaseModel]) -> Response:
    """`body` as JSON, after checking that JSON against its model (what the OpenAPI document
    says of it): a body the document would not describe is a 500, never a silent surprise."""
    text = json.dumps(body)
    model.model_validate_json(text)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=text)


_ROUTES = {(route.method, route.path): route for route in routes.ROUTES}


def _answer(method: str, path: str, body: Any = None) -> Response:
    """The route's success: its status from `contracts.routes`, its body's model from
    `schemas.RESPONSE_BODIES` (None: no body)."""
    status = _ROUTES[(method, path)].success
    model = schemas.RESPONSE_BODIES[(method, path)]
    if model is None:
        return Response(status_code=status, body=None)
    return _json(status, body, model)


# --- the routes ----------------------------------------------------------------------------------
def create_job() -> Response:
    event = app.current_event
    raw = parsing.body_bytes(event.body, bool(event.is_base64_encoded), event.decoded_body)
    request = parsing.parse_body(CreateJobRequest, raw, event.headers.get("content-type"))
    key = parsing.idempotency_key(event.headers.get(names.IDEMPOTENCY_HEADER))
    return _answer("POST", "/jobs", _service().create(_owner(), request, key))


def list_jobs() -> Response:
    query = parsing.parse_query(ListJobsQuery, app.current_event.query_string_parameters)
    return _answer("GET", "/jobs", _service().list(_owner(), query))


def get_job(job_id: str) -> Response:
    return _answer("GET", "/jobs/{job_id}", _service().get(_owner(), job_id))


def get_metrics(job_id: str) -> Response:
    return _answer("GET", "/jobs/{job_id}/metrics", _service().metrics(_owner(), job_id))


def get_compositions(job_id: str) -> Response:
    return _answer("GET", "/jobs/{job_id}/compositions", _service().compositions(_owner(), job_id))


def stop_job(job_id: str) -> Response:
    return _answer("POST", "/jobs/{job_id}/stop", _service().stop(_owner(), job_id))


def delete_job(job_id: str) -> Response:
    _service().delete(_owner(), job_id)
    return _answer("DELETE", "/jobs/{job_id}")


def get_openapi() -> Response:
    # Anyone's: the document names no job (API Gateway's IAM authorization still applies on AWS).
    return _answer("GET", "/openapi.json", openapi.document())


# (method, path as in contracts.routes) → the function that serves it.
RouteFunctions = dict[tuple[str, str], Callable[..., Response]]
ROUTE_FUNCTIONS: RouteFunctions = {
    ("POST", "/jobs"): create_job,
    ("GET", "/jobs"): list_jobs,
    ("GET", "/jobs/{job_id}"): get_job,
    ("GET", "/jobs/{job_id}/metrics"): get_metrics,
    ("GET", "/jobs/{job_id}/compositions"): get_compositions,
    ("POST", "/jobs/{job_id}/stop"): stop_job,
    ("DELETE", "/jobs/{job_id}"): delete_job,
    ("GET", "/openapi.json"): get_openapi,
}


def register(resolver: APIGatewayRestResolver, functions: RouteFunctions) -> None:
    """Registers each contract route's function, in the order of ROUTES; RuntimeError when a
    route has no function or a function no route."""
    contract = [(route.method, route.path) for route in routes.ROUTES]
    unserved = [key for key in contract if key not in functions]
    unknown = [key for key in functions if key not in contract]
    if unserved or unknown:
        raise RuntimeError(f"contracts.routes and the api's functions differ: routes without a "
                           f"function {unserved}, functions without a route {unknown}")
    for method, path in contract:
        resolver.route(routes.handler_path(path), method=method)(functions[(method, path)])


register(app, ROUTE_FUNCTIONS)


def _error(status: HTTPStatus, code: str, message: str, field: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return _json(status, {"error": error}, schemas.Error)


@app.exception_handler(DomainError)
def domain_error(e: DomainError) -> Response:
    # The one place where domain errors become HTTP statuses (each class carries its own).
    log = logger.error if e.status >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.info
    job_id = _job_id_in_path()
    log("request failed", status=int(e.status), code=e.code, field=e.field, job_id=job_id, cause=e.message)
    return _error(e.status, e.code, e.message, e.field)


@app.exception_handler(Exception)
def unexpected_error(e: Exception) -> Response:
    logger.exception("unexpected error", path=app.current_event.path, job_id=_job_id_in_path())
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error; see the api's log")


@app.not_found
def not_found(e: Exception) -> Response:
    event = app.current_event
    return _error(HTTPStatus.NOT_FOUND, "not_found", f"no route {event.http_method} {event.path}")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("request", method=event.get("httpMethod"), path=event.get("path"))
    return app.resolve(event, context)
