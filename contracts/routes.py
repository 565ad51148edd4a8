"""The HTTP API's routes (v1): what the API Gateway construct declares, what the local front
door matches, what the api handler serves and the client calls. `docs/contracts.md` and the
README's API table list the same rows (a test compares them)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway's resource form: `/jobs/{job_id}`
    summary: str


ROUTES: tuple[Route, ...] = (
    Route("POST", "/jobs", "submit a training job"),
    Route("GET", "/jobs", "the caller's jobs, newest first (status, limit, next_token)"),
    Route("GET", "/jobs/{job_id}", "one job"),
    Route("GET", "/jobs/{job_id}/metrics", "the job's per-epoch metrics, beside Bach's values"),
    Route("GET", "/jobs/{job_id}/compositions", "presigned URLs of the job's MIDI"),
    Route("POST", "/jobs/{job_id}/stop", "stop a job"),
    Route("DELETE", "/jobs/{job_id}", "delete a finished job and its files"),
)


def resources() -> dict[str, tuple[str, ...]]:
    """Each resource path with its methods, in the order of ROUTES."""
    found: dict[str, list[str]] = {}
    for route in ROUTES:
        found.setdefault(route.path, []).append(route.method)
    return {path: tuple(methods) for path, methods in found.items()}


def pattern(path: str) -> re.Pattern[str]:
    """A resource path as a regular expression; each `{name}` is a named group of one segment."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


def handler_path(path: str) -> str:
    """The resource in Powertools' route form: `/jobs/<job_id>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)
