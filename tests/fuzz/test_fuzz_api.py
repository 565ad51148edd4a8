"""The API fuzzed with schemathesis against the whole local stack (`tests/fuzz/fuzz_api.py`
holds the run): a short run here, inside `make test` (OPENCOMPOSER_FUZZ_CASES, default 150;
`make fuzz` runs 1,200). Zero 5xx, every response what the document says, every 4xx that
blames a field names it."""

from __future__ import annotations

import pytest

from contracts import routes
from tests.fuzz import fuzz_api

pytestmark = pytest.mark.slow


def test_the_api_survives_the_fuzz() -> None:
    wanted = fuzz_api.cases_wanted()
    result = fuzz_api.run(wanted, fuzz_api.DEFAULT_SEED)
    print(result.report())
    figures = result.figures()
    assert result.ok, result.report()
    # Every operation was fuzzed, and about as many cases as asked for ran (an operation with
    # nothing to vary runs once).
    assert figures["operations"] == len(routes.ROUTES)
    assert all(op.cases > 0 for op in result.operations.values())
    assert figures["cases"] >= wanted * 0.75, result.table()
