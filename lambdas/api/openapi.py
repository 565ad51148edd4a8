"""The OpenAPI 3.1 document of API v1, built from one source: the routes, their statuses and
operation ids from `contracts.routes`, the request models (`lambdas.common.models`), the
response models (`lambdas.common.schemas`, which the handler checks every body against) and the
error classes (`lambdas.common.errors`). The api serves it at `GET /openapi.json`;
`python -m lambdas.api.openapi` writes it to `docs/openapi.json` (a test fails when the committed
file is not what this module builds now).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts import deployment, names, routes
from lambdas.common import errors, schemas
from lambdas.common.models import (
    CreateCompositionRequest,
    CreateDatasetRequest,
    CreateJobRequest,
    ListCompositionsQuery,
    ListDatasetsQuery,
    ListJobsQuery,
    not_null,
)

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
_REF = "#/components/schemas/{model}"
JSON = "application/json"

# Request bodies and query strings, by (method, path) as in `contracts.routes`.
REQUEST_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/jobs"): CreateJobRequest,
    ("POST", "/jobs/{job_id}/compositions"): CreateCompositionRequest,
    ("POST", "/datasets"): CreateDatasetRequest,
}
QUERIES: dict[tuple[str, str], type[BaseModel]] = {
    ("GET", "/jobs"): ListJobsQuery,
    ("GET", "/jobs/{job_id}/compositions"): ListCompositionsQuery,
    ("GET", "/datasets"): ListDatasetsQuery,
}
# What a request without a body does, where it is not "submits the default job".
_NO_BODY = {("POST", "/datasets"): "creates an unnamed dataset"}
# Routes that read the Idempotency-Key header.
IDEMPOTENT = frozenset({("POST", "/jobs")})

_DESCRIPTION = f"""\
opencomposer's jobs API: submit a GAN training job on a melody, follow it, fetch its MIDI, then
compose with the trained model: accompany any melody, with your seed and instruments.

JSON in and out. Every error is `{{"error": {{"code", "message", "field"}}}}` (`field` only
where one field is at fault), never a stack trace. On AWS every request is SigV4-signed
(IAM authorization, service `execute-api`) and goes to the stack's `{deployment.OUTPUT_API_URL}`
output; the local stack (`make serve`) needs no signature and serves one fixed caller."""

_PATH_PARAMETERS = {
    "job_id": {
        "description": "the job's id (another caller's job, or any text that is no job id, is 404)",
        "schema": {"type": "string", "pattern": names.JOB_ID_PATTERN},
    },
    "composition_id": {
        "description": "one of your compositions' id (20 hex digits); the training's own outputs "
                       "(`final`, `epoch-NNNN`) go only with their job",
        "schema": {"type": "string", "pattern": names.COMPOSITION_ID_PATTERN},
    },
    "dataset_id": {
        "description": "the dataset's id, or `bach-chorales` (the built-in one); another caller's "
                       "dataset, or any text that is no dataset id, is 404",
        "schema": {"type": "string"},
    },
}


def _codes_by_status() -> dict[int, list[str]]:
    """Every error code of the api's domain errors, by HTTP status (plus the handler's own 500)."""
    found: dict[int, set[str]] = {HTTPStatus.INTERNAL_SERVER_ERROR: {"internal_error"}}
    pending: list[type[errors.DomainError]] = [errors.DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not errors.DomainError:
            found.setdefault(int(cls.status), set()).add(cls.code)
    return {status: sorted(codes) for status, codes in found.items()}


def _error_response(status: int, codes: dict[int, list[str]], owned: bool) -> dict[str, Any]:
    """An error status with the codes it may carry (the caller's identity only where it is read)."""
    listed = ", ".join(f"`{code}`" for code in codes.get(status, []))
    description = HTTPStatus(status).phrase + (f": {listed}" if listed else "")
    if status == HTTPStatus.FORBIDDEN:
        gateway = "API Gateway's own refusal of an unsigned or denied request, on AWS"
        description = f"{description} (no caller identity), or {gateway}" if owned else (
            f"{HTTPStatus(status).phrase}: {gateway}")
    return {"description": description, "content": {JSON: {"schema": {"$ref": _REF.format(model="Error")}}}}


def _schemas() -> dict[str, Any]:
    models: set[type[BaseModel]] = {schemas.Error, *REQUEST_BODIES.values(), *QUERIES.values()}
    models |= {model for model in schemas.RESPONSE_BODIES.values() if model is not None}
    ordered = sorted(models, key=lambda model: model.__name__)
    _, top = models_json_schema([(model, "validation") for model in ordered], ref_template=_REF)
    return dict(sorted(top.get("$defs", {}).items()))


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    """Each field of a query model as a query parameter (a query string holds no nulls)."""
    schema = components[model.__name__]
    parameters = []
    for name, field in schema["properties"].items():
        field = copy.deepcopy(field)
        not_null(field)
        field.pop("title", None)
        description = model.model_fields[name].description
        parameter = {"name": name, "in": "query", "required": name in schema.get("required", []),
                     "schema": field}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _operation(
    route: routes.Route, components: dict[str, Any], codes: dict[int, list[str]]
) -> dict[str, Any]:
    key = (route.method, route.path)
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    parameters = [{"name": name, "in": "path", "required": True, **_PATH_PARAMETERS[name]}
                  for name in routes.parameters(route.path)]
    if key in QUERIES:
        parameters += _query_parameters(QUERIES[key], components)
    if key in IDEMPOTENT:
        parameters.append({
            "name": names.IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "makes a repeated request answer with the first one's job (scoped to its "
                           "caller); the same key with another body is 409 `idempotency_key_reused`",
            "schema": {"type": "string", "pattern": names.IDEMPOTENCY_KEY_PATTERN},
        })
    if parameters:
        operation["parameters"] = parameters
    if key in REQUEST_BODIES:
        operation["requestBody"] = {
            "required": False,
            "description": "every field is optional; no body at all "
                           + _NO_BODY.get(key, "submits the default job"),
            "content": {JSON: {"schema": {"$ref": _REF.format(model=REQUEST_BODIES[key].__name__)}}},
        }
    body = schemas.RESPONSE_BODIES[key]
    success: dict[str, Any] = {"description": HTTPStatus(route.success).phrase}
    if body is not None:
        success["content"] = {JSON: {"schema": {"$ref": _REF.format(model=body.__name__)}}}
    responses = {str(route.success): success}
    responses |= {str(status): _error_response(status, codes, route.owned) for status in route.all_errors()}
    operation["responses"] = responses
    return operation


@functools.cache
def _document_text() -> str:
    components = _schemas()
    codes = _codes_by_status()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes.ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components, codes)
    for model in QUERIES.values():  # its fields are parameters, not a schema of their own
        del components[model.__name__]
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "opencomposer", "version": API_VERSION, "description": _DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "servers": [{"url": f"http://127.0.0.1:{deployment.DEFAULT_LOCAL_PORT}",
                     "description": "the local stack (`make serve`)"}],
        "paths": paths,
        "components": {"schemas": components},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def document() -> dict[str, Any]:
    """The document, a fresh copy each call."""
    result: dict[str, Any] = json.loads(_document_text())
    return result


def text() -> str:
    """The document as `docs/openapi.json` holds it."""
    return _document_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambdas.api.openapi", description=__doc__)
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH, help="default: %(default)s")
    args = parser.parse_args(argv)
    args.output.write_text(text())
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
