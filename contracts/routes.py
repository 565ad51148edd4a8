"""The HTTP API's routes (v1): what the API Gateway construct declares, what the local front
door matches, what the api handler serves and the client calls, and what the OpenAPI document
(`lambdas/api/openapi.py` → `docs/openapi.json`, served at `GET /openapi.json`) describes.
The README's API table lists the same rows, with the same success and error statuses (a test
compares it with the document)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Statuses beside a route's own `errors`, which the README's table leaves to its preamble. Every
# route: 403 (on AWS, API Gateway refuses a request without a valid SigV4 signature; the handler
# refuses one without a caller identity) and 500 (an unexpected failure). A route that acts on
# the caller's jobs also answers 503 when a dependency throttles (a retry may succeed).
COMMON_ERRORS = (403, 500)
OWNED_ERRORS = (503,)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway's resource form: `/jobs/{job_id}`
    summary: str
    operation_id: str  # the OpenAPI operationId (and the client's method, in snake case)
    success: int  # the one success status
    errors: tuple[int, ...] = ()  # the route's own error statuses (the README table lists these)
    owned: bool = True  # acts for the caller (needs its identity); False: answers anyone
    function: str = "api"  # the `contracts.functions` key of the Lambda function that serves it

    def all_errors(self) -> tuple[int, ...]:
        """Every error status the route can answer, in ascending order."""
        common = (*COMMON_ERRORS, *OWNED_ERRORS) if self.owned else COMMON_ERRORS
        return tuple(sorted({*self.errors, *common}))


ROUTES: tuple[Route, ...] = (
    # 404 and 409: the job's `dataset` is unknown (or another caller's), or not READY.
    Route("POST", "/jobs", "submit a training job", "createJob", 202, (400, 404, 409, 413, 415)),
    Route("GET", "/jobs", "the caller's jobs, newest first (status, limit, next_token)", "listJobs", 200,
          (400,)),
    Route("GET", "/jobs/{job_id}", "one job", "getJob", 200, (404,)),
    Route("GET", "/jobs/{job_id}/metrics", "the job's per-epoch metrics, beside Bach's values",
          "getJobMetrics", 200, (404,)),
    Route("GET", "/jobs/{job_id}/model", "a presigned URL of the job's trained model (model.tar.gz)",
          "getJobModel", 200, (404, 409)),
    Route("GET", "/jobs/{job_id}/compositions",
          "the training's MIDI and your compositions, newest first (limit, next_token)",
          "listCompositions", 200, (400, 404)),
    # Runs the model: served by the compose function (a container image with PyTorch on AWS).
    Route("POST", "/jobs/{job_id}/compositions", "compose: the job's model accompanies a melody",
          "createComposition", 201, (400, 404, 409, 413, 415), function="compose"),
    Route("DELETE", "/jobs/{job_id}/compositions/{composition_id}", "delete one of your compositions",
          "deleteComposition", 204, (404, 409)),
    Route("POST", "/jobs/{job_id}/stop", "stop a job", "stopJob", 202, (404, 409)),
    Route("DELETE", "/jobs/{job_id}", "delete a finished job, its compositions and its files", "deleteJob",
          204, (404, 409)),
    # A user's MIDI collection (contracts/datasets.py): created with a presigned upload, built by the
    # datasets function on the upload's S3 event, then named by jobs (`dataset`, `tags`).
    Route("POST", "/datasets", "create a dataset: a presigned upload for a zip of MIDI files",
          "createDataset", 201, (400, 413, 415)),
    Route("GET", "/datasets", "the caller's datasets, newest first (limit, next_token)", "listDatasets", 200,
          (400,)),
    Route("GET", "/datasets/{dataset_id}", "one dataset: status and build report (files accepted, rejected "
          "with reasons, pieces per tag)", "getDataset", 200, (404,)),
    Route("DELETE", "/datasets/{dataset_id}", "delete a dataset and its files (not while it builds)",
          "deleteDataset", 204, (404, 409)),
    Route("GET", "/melodies", "the sample melodies (name, title, bars, meter, key)", "listMelodies", 200,
          owned=False),
    Route("GET", "/openapi.json", "this API's OpenAPI 3.1 document", "getOpenApi", 200, owned=False),
)


def resources() -> dict[str, tuple[str, ...]]:
    """Each resource path with its methods, in the order of ROUTES."""
    found: dict[str, list[str]] = {}
    for route in ROUTES:
        found.setdefault(route.path, []).append(route.method)
    return {path: tuple(methods) for path, methods in found.items()}


def served_by(function: str) -> tuple[Route, ...]:
    """The routes one function (a `contracts.functions` key) serves, in the order of ROUTES."""
    return tuple(route for route in ROUTES if route.function == function)


def function_for(method: str, resource: str) -> str:
    """The function an API Gateway method (method, resource path) invokes; the api function for
    anything the routes do not declare (it answers 404)."""
    for route in ROUTES:
        if (route.method, route.path) == (method, resource):
            return route.function
    return "api"


def path_of(operation_id: str, **values: str) -> str:
    """A route's path with its parameters filled: `path_of("getJobModel", job_id=...)`."""
    (route,) = (route for route in ROUTES if route.operation_id == operation_id)
    return route.path.format(**values)


def pattern(path: str) -> re.Pattern[str]:
    """A resource path as a regular expression; each `{name}` is a named group of one segment."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


def parameters(path: str) -> list[str]:
    """The path parameters of a resource path, in order: `/jobs/{job_id}` → `["job_id"]`."""
    return re.findall(r"\{(\w+)\}", path)


def handler_path(path: str) -> str:
    """The resource in Powertools' route form: `/jobs/<job_id>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)
