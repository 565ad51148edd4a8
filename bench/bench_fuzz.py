"""Fuzz: cases run, 5xx count, schema violations (and 4xx without their field), over every
operation of API v1, by the run `make fuzz` and the test share (`tests/fuzz/fuzz_api.py`):
schemathesis against the whole local stack in this process, positive and negative cases,
with the stream's mapping disabled so no job trains but the one tiny job trained to COMPLETED
first (as `make fuzz` does), which the routes that need a model are fuzzed with.

OPENCOMPOSER_FUZZ_CASES (default 1,200) sets the size; OPENCOMPOSER_FUZZ_SEED the seed (default
the test's, so the figure is reproducible).
"""

from __future__ import annotations

import os
from typing import Any

from tests.fuzz import fuzz_api


def main() -> dict[str, Any]:
    cases = int(os.environ.get(fuzz_api.CASES_ENV, fuzz_api.FULL_CASES))
    seed = int(os.environ.get(fuzz_api.SEED_ENV) or fuzz_api.DEFAULT_SEED)
    result = fuzz_api.run(cases, seed, trained=True)
    print(result.report(), flush=True)
    return result.figures()
