"""The README's API table lists exactly the routes of `contracts.routes` (the construct, the
handler, the front door and the client are checked against the same routes in their own tests)."""

from __future__ import annotations

import re
from pathlib import Path

from contracts import routes

README = Path(__file__).resolve().parents[2] / "README.md"


def _api_table_routes() -> set[tuple[str, str]]:
    section = README.read_text().split("## HTTP API (v1)", 1)[1].split("\n## ", 1)[0]
    return {(m[0], m[1]) for m in re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/\S*)` \|", section, re.M)}


def test_the_readme_api_table_lists_every_route_and_no_other() -> None:
    assert _api_table_routes() == {(r.method, r.path) for r in routes.ROUTES}
