"""The state machine moves a job only as `contracts.statuses` allows.

Each DynamoDB task of statemachine/training.asl.json that sets the job's status does so under a
condition on the status; the statuses that condition admits must all be sources of the target
(`statuses.sources(target)`). Every status the file names is a `JobStatus`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts import statuses, storage

DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "training.asl.json"
STATUS_ATTRIBUTE = "status"  # the job item's attribute the api, the container and the tasks write
_DYNAMODB = re.compile(r"^arn:aws:states:::(aws-sdk:)?dynamodb:(\w+)$")
_READS = {"getItem", "query"}
# Upper-case words in the file that are no status: DynamoDB expression keywords, `States.ALL`,
# the job item's sort key, JitterStrategy's value, an HTTP method and a name in the comments.
NOT_STATUSES = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN",
                "ALL", storage.JOB_SORT_KEY_VALUE, "FULL", "POST", "CDK"}


@dataclass(frozen=True)
class StatusMove:
    state: str
    sources: frozenset[str]  # the statuses the condition admits
    target: str


def _states(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, state) of every state, those nested in Parallel branches and Map processors too."""
    if isinstance(node, dict):
        yield from node.get("States", {}).items()
        for value in node.values():
            if isinstance(value, dict | list):
                yield from _states(value)
    elif isinstance(node, list):
        for value in node:
            yield from _states(value)


def _top_level_split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
    return [*parts, text[start:]]


def _value(parameters: dict[str, Any], placeholder: str, where: str) -> str:
    value = parameters.get("ExpressionAttributeValues", {}).get(placeholder)
    if not isinstance(value, dict) or set(value) != {"S"}:
        raise AssertionError(f"{where}: {placeholder} is no literal string (a status from a path "
                             f"cannot be checked): {value!r}")
    return str(value["S"])


def _status_target(parameters: dict[str, Any], names: set[str], where: str) -> str | None:
    """The status the UpdateExpression sets, or None."""
    expression = parameters.get("UpdateExpression", "")
    clause = re.search(r"\bSET\b(.*?)(?=\b(?:REMOVE|ADD|DELETE)\b|$)", expression, re.S)
    if clause is None:
        return None
    targets = []
    for assignment in _top_level_split(clause.group(1), ","):
        left, _, right = assignment.partition("=")
        if left.strip() in names:
            if not re.fullmatch(r":\w+", right.strip()):
                raise AssertionError(f"{where}: sets the status to {right.strip()!r}, not to a value")
            targets.append(_value(parameters, right.strip(), where))
    if len(targets) > 1:
        raise AssertionError(f"{where}: sets the status twice")
    return targets[0] if targets else None


def _status_sources(parameters: dict[str, Any], names: set[str], where: str) -> frozenset[str]:
    """The statuses the ConditionExpression admits (`#status = :a`, `#status IN (:a, :b)`,
    joined by AND with other clauses); a form this reader does not know fails the test."""
    condition = parameters.get("ConditionExpression", "")
    mentions = [n for n in names if re.search(rf"{re.escape(n)}\b", condition)]
    if not mentions:
        raise AssertionError(f"{where}: sets the status without a condition on it")
    if re.search(r"\b(OR|NOT)\b", condition, re.I):
        raise AssertionError(f"{where}: cannot read the condition {condition!r} (OR/NOT)")
    admitted: set[str] | None = None
    for clause in _top_level_split(condition, " AND "):
        clause = clause.strip()
        while clause.startswith("(") and clause.endswith(")"):
            clause = clause[1:-1].strip()
        if not any(re.search(rf"{re.escape(n)}\b", clause) for n in names):
            continue
        name = "|".join(re.escape(n) for n in names)
        if m := re.fullmatch(rf"(?:{name})\s*=\s*(:\w+)", clause):
            values = {_value(parameters, m.group(1), where)}
        elif m := re.fullmatch(rf"(?:{name})\s+IN\s*\(([^)]*)\)", clause, re.I):
            values = {_value(parameters, v.strip(), where) for v in m.group(1).split(",")}
        else:
            raise AssertionError(f"{where}: cannot read the status clause {clause!r}")
        admitted = values if admitted is None else admitted & values
    assert admitted, f"{where}: the condition admits no status"
    return frozenset(admitted)


def status_moves(definition: dict[str, Any]) -> list[StatusMove]:
    """Every status write of the definition's DynamoDB tasks, with what its condition admits."""
    moves = []
    for state_name, state in _states(definition):
        resource = state.get("Resource", "")
        m = _DYNAMODB.match(resource) if state.get("Type") == "Task" else None
        if m is None:
            continue
        where = state_name
        action = m.group(2)
        if action in _READS:
            continue
        # A put or a transaction could write a status unconditionally: teach this test first.
        assert action == "updateItem", f"{where}: {action} writes items this test cannot read"
        parameters = state.get("Parameters") or state.get("Arguments") or {}
        names = {placeholder for placeholder, attribute
                 in parameters.get("ExpressionAttributeNames", {}).items() if attribute == STATUS_ATTRIBUTE}
        target = _status_target(parameters, names, where)
        if target is not None:
            moves.append(StatusMove(state_name, _status_sources(parameters, names, where), target))
    return moves


def disallowed(moves: list[StatusMove]) -> list[str]:
    """Each move that `contracts.statuses` does not allow, in words."""
    problems = []
    for move in moves:
        if move.target not in set(statuses.JobStatus):
            problems.append(f"{move.state}: {move.target!r} is no JobStatus")
            continue
        if extra := move.sources - statuses.sources(move.target):
            problems.append(f"{move.state}: may move a job from {sorted(extra)} to {move.target}, "
                            f"which contracts.statuses allows only from "
                            f"{statuses.ordered(statuses.sources(move.target))}")
    return problems


def _definition() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DEFINITION.read_text())
    return result


def test_every_status_write_of_the_state_machine_is_a_move_the_contract_allows() -> None:
    moves = status_moves(_definition())
    # The state machine starts, completes, stops and fails jobs (contracts.statuses.TRANSITIONS).
    assert {move.target for move in moves} == {"STARTING", "COMPLETED", "STOPPED", "FAILED"}
    assert disallowed(moves) == []


def test_a_condition_admitting_a_status_the_contract_does_not_allow_is_caught() -> None:
    # Given MarkCompleted's condition widened to SUBMITTED (a job completed without starting) ...
    definition = copy.deepcopy(_definition())
    parameters = definition["States"]["MarkCompleted"]["Parameters"]
    parameters["ConditionExpression"] = "#status IN (:submitted, :starting, :training)"
    parameters["ExpressionAttributeValues"][":submitted"] = {"S": "SUBMITTED"}
    # ... the check names the state and the move.
    (problem,) = disallowed(status_moves(definition))
    assert problem.startswith("MarkCompleted: may move a job from ['SUBMITTED'] to COMPLETED")


def test_a_status_write_without_a_condition_on_the_status_is_caught() -> None:
    definition = copy.deepcopy(_definition())
    del definition["States"]["RecordStopped"]["Parameters"]["ConditionExpression"]
    with pytest.raises(AssertionError, match="RecordStopped: sets the status without a condition"):
        status_moves(definition)


def test_every_status_the_file_names_is_a_job_status() -> None:
    # The literals the tasks write and compare, and the statuses the comments name.
    words = set(re.findall(r"\b[A-Z]{2,}\b", DEFINITION.read_text())) - NOT_STATUSES
    assert words, "no status found: does the file still name statuses in upper case?"
    assert words <= set(statuses.JobStatus), (
        f"{sorted(words - set(statuses.JobStatus))}: not a JobStatus (if it is no status at all, "
        "add it to NOT_STATUSES)")
