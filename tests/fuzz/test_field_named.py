"""The fuzz run's own check that a 400 blaming one field names it (`fuzz_api.field_named`),
judged on answers shaped as the API gives them: it passes what the API writes for odd keys and
fails a name that points at nothing."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lambdas.common.parsing import field_path
from tests.fuzz import fuzz_api

DOCUMENT = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())


class _Answer:
    status_code = 400

    def __init__(self, field: str) -> None:
        self._body = {"error": {"code": "invalid_field", "message": "unknown field", "field": field}}

    def json(self) -> dict[str, Any]:
        return self._body


def _post_job(body: dict[str, Any]) -> Any:
    raw = DOCUMENT["paths"]["/jobs"]["post"]
    return SimpleNamespace(operation=SimpleNamespace(definition=SimpleNamespace(raw=raw)),
                           body=body, query=None, headers=None)


@pytest.fixture(autouse=True)
def _document_schemas() -> None:
    fuzz_api._DOCUMENT_SCHEMAS.clear()
    fuzz_api._DOCUMENT_SCHEMAS.update(DOCUMENT["components"]["schemas"])


@pytest.mark.parametrize("key", ["", "a.b", '"a', 'x"y', "hyperparameters"])
def test_the_name_the_api_gives_an_unknown_key_passes(key: str) -> None:
    fuzz_api.field_named(None, _Answer(field_path((key,)) or ""), _post_job({key: 1}))


@pytest.mark.parametrize("named", ['"a', "nothing_sent"])
def test_a_name_that_points_at_no_field_fails(named: str) -> None:
    # `"a` bare is the start of an unterminated JSON string: the check must say so, not crash
    with pytest.raises(AssertionError, match="names"):
        fuzz_api.field_named(None, _Answer(named), _post_job({"other": 1}))
