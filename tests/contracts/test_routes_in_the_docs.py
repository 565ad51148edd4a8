"""The README's API table lists exactly the routes of `contracts.routes` (the construct, the
handler, the front door and the client are checked against the same routes in their own tests),
each with the success status and the error statuses of the route and of the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts import routes
from lambdas.api import openapi

README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/\S*)` \|([^|]*)\|([^|]*)\|\s*$", re.M)
_STATUS = re.compile(r"`(\d{3})`")


def _api_table() -> dict[tuple[str, str], tuple[list[int], list[int]]]:
    """(method, path) → (the success column's statuses, the errors column's statuses)."""
    section = README.read_text().split("## HTTP API (v1)", 1)[1].split("\n## ", 1)[0]
    return {
        (m[0], m[1]): ([int(s) for s in _STATUS.findall(m[2])], [int(s) for s in _STATUS.findall(m[3])])
        for m in _ROW.findall(section)
    }


def test_the_readme_api_table_lists_every_route_and_no_other() -> None:
    assert set(_api_table()) == {(r.method, r.path) for r in routes.ROUTES}


@pytest.mark.parametrize("route", routes.ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_readme_row_agrees_with_the_route_and_the_openapi_document(route: routes.Route) -> None:
    success, errors = _api_table()[(route.method, route.path)]
    operation = openapi.document()["paths"][route.path][route.method.lower()]
    documented = sorted(int(status) for status in operation["responses"])

    # The success column names one status: the route's, the one success the document lists.
    assert success == [route.success]
    assert [s for s in documented if s < 400] == [route.success]
    # The errors column names the route's own errors; the document lists those and the common ones.
    assert errors == list(route.errors)
    assert [s for s in documented if s >= 400] == list(route.all_errors())
    assert set(route.errors) <= set(route.all_errors())
    assert operation["operationId"] == route.operation_id and operation["summary"] == route.summary


def test_the_readme_preamble_names_the_common_error_statuses() -> None:
    preamble = README.read_text().split("## HTTP API (v1)", 1)[1].split("| method and path |", 1)[0]
    common = {int(s) for s in _STATUS.findall(preamble)}
    assert common == set(routes.COMMON_ERRORS) | set(routes.OWNED_ERRORS)
