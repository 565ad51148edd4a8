"""Fuzzing API v1 with schemathesis against the running local stack: the one run that the test
(`tests/fuzz/test_fuzz_api.py`, a short run inside `make test`), `make fuzz` (this module's
`main`, at least 1,000 cases) and the bench figure (`bench/bench_fuzz.py`) share.

The stack runs in this process with its stream's event-source mapping disabled, so the jobs the
fuzz POSTs are stored (the whole API path) but never train. schemathesis reads the document the
stack serves (`GET /openapi.json`) and generates requests for every operation, valid ones
(positive) and ones that break the document (negative: wrong types, out-of-range values, unknown
fields, bad headers). Half the cases with a `job_id` in their path use one of a few real jobs
seeded before the run (SUBMITTED, STOPPING, FAILED, and for `make fuzz` a tiny job trained to
COMPLETED before the mapping is disabled, half of those), so the code past the 404 runs too;
the DELETEs run last, so a seeded job they remove serves the other operations first.

Every response is checked:
- no 5xx (`not_a_server_error`);
- it is what the document says of that operation: a declared status, a declared content type, a
  body valid against the status's schema (`status_code_conformance`, `content_type_conformance`,
  `response_schema_conformance`, `response_headers_conformance`);
- `field_named`: an error whose fault is one request field (code `invalid_field`, a 400) names
  that field: one the request can carry (a body property, a query parameter or the
  `Idempotency-Key` header, dotted or indexed below the top level: `instruments[2].program`), or,
  for an unknown field, the name it was sent under.

    python -m tests.fuzz.fuzz_api [--cases N] [--seed S] [--no-trained]   # what `make fuzz` runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contracts import names, storage
from opencomposer.local.stack import LocalStack, LocalStackOptions

CASES_ENV = "OPENCOMPOSER_FUZZ_CASES"
SEED_ENV = "OPENCOMPOSER_FUZZ_SEED"
SHORT_CASES = 200  # the run inside `make test`
FULL_CASES = 1200  # `make fuzz`
DEFAULT_SEED = 20261203
TINY = {"epochs": 1, "batch_size": 16, "update_ratio": 1, "seed": 3}  # the trained seed job's
TRAIN_TIMEOUT_S = 300
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
FIELD_AT_FAULT = "invalid_field"  # the error code whose fault is one request field (errors.py)
SERVER_ERRORS = "5xx"
SCHEMA_VIOLATIONS = "schema violations"
FIELD_MISSING = "4xx without its field"


def field_named(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """An error that blames one request field names it, and names one the request can carry."""
    if not 400 <= response.status_code < 500:
        return
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return  # not the API's error shape: response_schema_conformance judges that
    if not isinstance(error, dict) or error.get("code") != FIELD_AT_FAULT:
        return
    named = error.get("field")
    if not isinstance(named, str) or not named:
        raise AssertionError(f"{response.status_code} {FIELD_AT_FAULT} names no field: {error}")
    # `hyperparameters.epochs`, `instruments[2].program`: the top-level name is the request's.
    # A key that is empty, holds a dot or starts with a quote is named as its JSON string (`""`).
    if named.startswith('"'):
        try:
            top = json.JSONDecoder().raw_decode(named)[0]
        except ValueError:
            raise AssertionError(f"{response.status_code} names {named!r}, which starts with a quote "
                                 "but is no JSON string") from None
    else:
        top = re.split(r"[.\[]", named)[0]
    declared = _request_fields(case.operation.definition.raw)
    if top.lower() in {name.lower() for name in declared}:
        return
    if error.get("message") == "unknown field" and {named, top} & _sent_fields(case):
        return  # a field the document does not declare, named as it was sent
    raise AssertionError(f"{response.status_code} names {named!r}, which is neither a field this request "
                         f"can carry ({sorted(declared)}) nor an unknown one it sent")


def _sent_fields(case: schemathesis.Case) -> set[str]:
    sent = set(case.query or {}) | set(case.headers or {})
    if isinstance(case.body, dict):
        sent |= set(case.body)
    return sent


def _request_fields(operation: dict[str, Any]) -> set[str]:
    """The top-level names a request of this operation carries: its query and header parameters
    and its JSON body's properties (the document's refs resolved by name)."""
    known = {p["name"] for p in operation.get("parameters", []) if p.get("in") in ("query", "header")}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    if ref:
        known |= set(_DOCUMENT_SCHEMAS.get(ref.rsplit("/", 1)[1], {}).get("properties", {}))
    return known


_DOCUMENT_SCHEMAS: dict[str, Any] = {}  # components.schemas of the document under test

CHECKS: dict[str, tuple[str, Callable[..., Any]]] = {
    # check name → (the figure it counts toward, the check)
    "not_a_server_error": (SERVER_ERRORS, not_a_server_error),
    "status_code_conformance": (SCHEMA_VIOLATIONS, status_code_conformance),
    "content_type_conformance": (SCHEMA_VIOLATIONS, content_type_conformance),
    "response_schema_conformance": (SCHEMA_VIOLATIONS, response_schema_conformance),
    "response_headers_conformance": (SCHEMA_VIOLATIONS, response_headers_conformance),
    "field_named": (FIELD_MISSING, field_named),
}


@dataclass
class OperationResult:
    label: str
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=lambda: {figure: 0 for figure, _ in CHECKS.values()})


@dataclass
class Finding:
    """One distinct failure: the first request that showed it, as a curl command."""

    operation: str
    check: str
    title: str
    message: str
    curl: str
    times: int = 1


@dataclass
class FuzzResult:
    seed: int
    wall_s: float = 0.0
    operations: dict[str, OperationResult] = field(default_factory=dict)
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        return sum(op.cases for op in self.operations.values())

    def count(self, figure: str) -> int:
        return sum(op.failed[figure] for op in self.operations.values())

    def figures(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "server_errors": self.count(SERVER_ERRORS),
            "schema_violations": self.count(SCHEMA_VIOLATIONS),
            "errors_without_field": self.count(FIELD_MISSING),
            "operations": len(self.operations),
            "seed": self.seed,
            "wall_s": round(self.wall_s, 1),
            "per_operation": {
                op.label: {"cases": op.cases, "server_errors": op.failed[SERVER_ERRORS],
                           "schema_violations": op.failed[SCHEMA_VIOLATIONS],
                           "errors_without_field": op.failed[FIELD_MISSING],
                           "statuses": {str(k): v for k, v in sorted(op.statuses.items())}}
                for op in self.operations.values()
            },
        }

    def table(self) -> str:
        width = max(len(label) for label in self.operations) if self.operations else 10
        head = f"{'operation':<{width}}  {'cases':>5}  {'5xx':>4}  {'schema':>6}  {'no field':>8}  statuses"
        lines = [head, "-" * len(head)]
        for op in self.operations.values():
            statuses = " ".join(f"{status}×{n}" for status, n in sorted(op.statuses.items()))
            lines.append(f"{op.label:<{width}}  {op.cases:>5}  {op.failed[SERVER_ERRORS]:>4}  "
                         f"{op.failed[SCHEMA_VIOLATIONS]:>6}  {op.failed[FIELD_MISSING]:>8}  {statuses}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<{width}}  {self.cases:>5}  {self.count(SERVER_ERRORS):>4}  "
                     f"{self.count(SCHEMA_VIOLATIONS):>6}  {self.count(FIELD_MISSING):>8}")
        return "\n".join(lines)

    def report(self) -> str:
        text = [self.table(), f"{self.cases} cases in {self.wall_s:.1f} s (seed {self.seed})"]
        for finding in self.findings.values():
            text.append(f"\n[{finding.check}] {finding.operation} ({finding.times}×): {finding.title}\n"
                        f"{finding.message}\n{finding.curl}")
        return "\n".join(text)

    @property
    def ok(self) -> bool:
        return not self.findings


# --- the stack, with jobs that never train --------------------------------------------------------
@contextmanager
def fuzzable_stack(trained: bool = False) -> Iterator[LocalStack]:
    """A fresh local stack (state in a temporary folder) whose stream delivers nothing; with
    `trained`, one tiny job trains to COMPLETED first (its id is `stack.fuzz_trained`), so the
    routes that need a model (compose, the model's URL, the training's MIDI) run past their 409."""
    with tempfile.TemporaryDirectory(prefix="opencomposer-fuzz-") as home, \
            LocalStack(LocalStackOptions(home=Path(home), port=0, stop_grace_s=5)) as stack:
        assert stack.resources is not None
        trained_id = _train_tiny(stack) if trained else None
        stack.client("lambda").update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=False)
        stack.fuzz_trained = trained_id  # type: ignore[attr-defined]
        yield stack


def _train_tiny(stack: LocalStack) -> str:
    answer = requests.post(f"{stack.api_url}/jobs", json={"name": "fuzz trained", "hyperparameters": TINY},
                           timeout=30)
    answer.raise_for_status()
    job_id: str = answer.json()["job_id"]
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = requests.get(f"{stack.api_url}/jobs/{job_id}", timeout=30).json()["status"]
        if status == "COMPLETED":
            return job_id
        if status in ("FAILED", "STOPPED"):
            raise RuntimeError(f"the fuzz's trained job ended {status}")
        time.sleep(0.5)
    raise RuntimeError(f"the fuzz's trained job did not complete in {TRAIN_TIMEOUT_S} s")


def seed_jobs(stack: LocalStack) -> list[str]:
    """A few real jobs: two SUBMITTED (one named, one with its own hyperparameters and melody), one
    STOPPING (stopped before it started), and one FAILED, as the state machine leaves a job whose
    training failed (written to the table directly: no training runs here)."""
    api = stack.api_url
    ids = []
    bodies: list[dict[str, Any]] = [
        {"name": "fuzz seed"},
        {"hyperparameters": {"epochs": 2}, "melody": {"sample": "ode-to-joy"}},
        {},
    ]
    for body in bodies:
        answer = requests.post(f"{api}/jobs", json=body, timeout=30)
        answer.raise_for_status()
        ids.append(answer.json()["job_id"])
    requests.post(f"{api}/jobs/{ids[2]}/stop", timeout=30).raise_for_status()
    failed = f"{random.Random(0).getrandbits(128):032x}"
    assert names.is_job_id(failed)
    now = "2026-12-03T12:00:00.000Z"
    stack.client("dynamodb").put_item(TableName=stack.names.table, Item={
        storage.PARTITION_KEY: {"S": storage.job_pk(failed)},
        storage.SORT_KEY: {"S": storage.JOB_SORT_KEY_VALUE},
        storage.ITEM_TYPE: {"S": storage.JOB_ITEM},
        "job_id": {"S": failed}, "owner": {"S": _local_owner()}, "status": {"S": "FAILED"},
        "created_at": {"S": now}, "updated_at": {"S": now},
        "failure_reason": {"S": "the fuzz's seed: a training that failed"},
        "hyperparameters": {"M": {"epochs": {"N": "2"}, "learning_rate": {"N": "0.001"},
                                  "update_ratio": {"N": "5"}, "batch_size": {"N": "8"}, "seed": {"N": "0"}}},
        "melody": {"M": {"sample": {"S": "twinkle-twinkle"}}},
    })
    ids.append(failed)
    trained = getattr(stack, "fuzz_trained", None)
    if trained:
        ids += [trained] * 4  # as often as the others together: the routes past a model's 409
    return ids


def _local_owner() -> str:
    from contracts import deployment, owners

    return owners.owner(deployment.LOCAL_OWNER)


# --- the run ------------------------------------------------------------------------------------
def cases_wanted() -> int:
    return int(os.environ.get(CASES_ENV, SHORT_CASES))


def run(cases: int, seed: int | None = None, stack: LocalStack | None = None,
        trained: bool = False) -> FuzzResult:
    """About `cases` generated requests over every operation and both generation modes (an
    operation with no parameters and no body has one distinct request: it gets one); with
    `trained`, on a fresh stack that has a COMPLETED job among the seeded ones."""
    if stack is None:
        with fuzzable_stack(trained) as fresh:
            return run(cases, seed, fresh)
    seed = DEFAULT_SEED if seed is None else seed
    started = time.perf_counter()
    result = FuzzResult(seed=seed)
    api = stack.api_url
    # The document as the stack serves it; loaded from a dict, as `from_url` would leave out the
    # document's own operation (GET /openapi.json), which is fuzzed like the others.
    document = requests.get(f"{api}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    _DOCUMENT_SCHEMAS.clear()
    _DOCUMENT_SCHEMAS.update(schema.raw_schema.get("components", {}).get("schemas", {}))
    job_ids = seed_jobs(stack)
    operations = [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]
    # The DELETEs last, a job's last of all: a seeded job they remove is gone for the rest.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE",
                                    op.method.upper() == "DELETE" and op.path == "/jobs/{job_id}"))
    # An operation with no parameters and no body has one distinct request; the others share the rest.
    varied = [op for op in operations
              if op.definition.raw.get("parameters") or op.definition.raw.get("requestBody")]
    fixed = len(operations) - len(varied)
    per_run = max(1, math.ceil((cases - fixed) / (max(1, len(varied)) * len(MODES))))
    session = requests.Session()
    for operation in operations:
        outcome = result.operations.setdefault(operation.label, OperationResult(operation.label))
        for mode in MODES:
            _fuzz(operation, mode, per_run, seed, api, session, job_ids, outcome, result)
    result.wall_s = time.perf_counter() - started
    return result


def _fuzz(operation: Any, mode: Any, examples: int, seed: int, api: str, session: requests.Session,
          job_ids: list[str], outcome: OperationResult, result: FuzzResult) -> None:
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception:  # an operation with nothing to break has no negative cases
        return
    has_job = "job_id" in {p["name"] for p in operation.definition.raw.get("parameters", [])}

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        case = data.draw(strategy)
        if has_job and data.draw(st.booleans()):
            job_id = data.draw(st.sampled_from(job_ids))
            case.path_parameters = {**(case.path_parameters or {}), "job_id": job_id}
        response = case.call(base_url=api, session=session, timeout=60)
        outcome.cases += 1
        outcome.statuses[response.status_code] = outcome.statuses.get(response.status_code, 0) + 1
        for name, (figure, check) in CHECKS.items():
            try:
                case.validate_response(response, checks=[check])
            except FailureGroup as group:
                outcome.failed[figure] += 1
                _record(result, operation.label, name, group.exceptions, case, response, api)

    try:
        hypothesis_seed(seed)(one)()
    except Exception as exc:  # generation itself failed (e.g. nothing satisfies the schema)
        if _is_unsatisfiable(exc):
            return
        raise


def _is_unsatisfiable(exc: Exception) -> bool:
    from hypothesis.errors import Unsatisfiable

    return isinstance(exc, Unsatisfiable) or "Unsatisfiable" in type(exc).__name__


def _record(result: FuzzResult, operation: str, check: str, failures: Any, case: Any, response: Any,
            api: str) -> None:
    for failure in failures:
        failure = failure if isinstance(failure, Failure) else None
        title = failure.title if failure else "failure"
        key = (operation, check, title)
        if key in result.findings:
            result.findings[key].times += 1
            continue
        try:
            curl = case.as_curl_command(headers=dict(response.request.headers), base_url=api)
        except Exception:
            curl = f"{case.method} {case.formatted_path}"
        message = failure.message if failure else ""
        result.findings[key] = Finding(operation, check, title, message[:2000], curl)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.fuzz_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=int(os.environ.get(CASES_ENV, FULL_CASES)),
                        help=f"how many generated requests, about (default {FULL_CASES}, or ${CASES_ENV})")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"the generation's seed (default: a random one, printed; or ${SEED_ENV})")
    parser.add_argument("--no-trained", dest="trained", action="store_false",
                        help="skip training the tiny COMPLETED job the run seeds (about half a minute)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    print(f"fuzzing the local stack's API: about {args.cases} cases, seed {seed}", flush=True)
    result = run(args.cases, seed, trained=args.trained)
    print(result.report())
    figures = result.figures()
    print(f"\ncases run {figures['cases']}, 5xx {figures['server_errors']}, schema violations "
          f"{figures['schema_violations']}, 4xx without their field {figures['errors_without_field']}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
