"""A small IAM policy evaluator: identity-policy statements against one request.

Why our own: moto's `moto.iam.access_control.IAMPolicy` (the one evaluator at hand) turns an
Allow whose condition fails into an explicit Deny, compares actions case-sensitively, reads
`*` as a regular expression on unescaped text (`.` in an ARN matches anything) and has no
multi-valued keys (ForAllValues/ForAnyValue); policy_sentry, parliament and iam-floyd write or
lint policies, none evaluates one. This one does what the template needs, as IAM documents it
("Policy evaluation logic", "IAM JSON policy elements: Condition operators"):

- an explicit Deny wins; else any Allow allows; else the request is implicitly denied;
- Action/NotAction: case-insensitive, `*` and `?` wildcards; Resource/NotResource: ARNs
  compared case-sensitively, segment by segment (a wildcard in the region cannot eat a colon);
- Condition: every operator and every key in it must hold (AND), any listed value may match
  (OR); String{Equals,NotEquals,Like,NotLike}, Bool, with `IfExists`, and the set operators
  `ForAllValues:` (true for a missing or empty key) and `ForAnyValue:` (false for one). An
  operator it does not know is an error, never a silent pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Statement = Mapping[str, Any]
ContextValue = str | Sequence[str]


@dataclass(frozen=True)
class Request:
    action: str  # "dynamodb:GetItem"
    resource: str  # an ARN, or "*" for actions with no resource type
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # condition keys of the request


@dataclass(frozen=True)
class Decision:
    allowed: bool
    statement: Statement | None  # the statement that allowed or explicitly denied it
    why: str


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL
    return re.compile(f"^{regex}$", flags)


def action_matches(pattern: str, action: str) -> bool:
    return _wildcard(pattern, True).match(action) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN match: partition, service, region and account one by one, then the resource."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != len(given):
        return False
    return all(_wildcard(w, False).match(g) is not None for w, g in zip(wanted, given, strict=True))


def _string_test(operator: str) -> tuple[Any, bool]:
    """(value test, negated) of a string or Bool operator."""
    tests = {
        "StringEquals": (lambda want, got: want == got, False),
        "StringNotEquals": (lambda want, got: want == got, True),
        "StringEqualsIgnoreCase": (lambda want, got: want.lower() == got.lower(), False),
        "StringLike": (lambda want, got: _wildcard(want, False).match(got) is not None, False),
        "StringNotLike": (lambda want, got: _wildcard(want, False).match(got) is not None, True),
        "Bool": (lambda want, got: str(want).lower() == str(got).lower(), False),
    }
    if operator not in tests:
        raise ValueError(f"condition operator {operator!r} is not one this evaluator knows: add it "
                         "(tests/infra/iam_policy.py) rather than let it pass")
    return tests[operator]


def condition_holds(operator: str, key: str, wanted: Sequence[Any],
                    context: Mapping[str, ContextValue]) -> bool:
    """One key under one operator (`ForAllValues:StringLike`, `StringEqualsIfExists`, ...)."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    test, negated = _string_test(base)
    # condition keys are case-insensitive
    present = {k.lower(): v for k, v in context.items()}
    got = present.get(key.lower())
    values = [] if got is None else [got] if isinstance(got, str) else list(got)

    def one(value: str) -> bool:
        return any(test(str(w), value) for w in wanted)

    if qualifier == "ForAllValues":
        # true when the request has no values for the key at all (AWS's documented pitfall)
        matched = all(one(v) for v in values)
        return not matched if negated else matched
    if qualifier == "ForAnyValue":
        matched = any(one(v) for v in values)
        return bool(values) and (not matched if negated else matched)
    if qualifier:
        raise ValueError(f"condition set operator {qualifier!r} is unknown")
    if got is None:
        return if_exists or negated
    matched = any(one(v) for v in values)
    return not matched if negated else matched


def conditions_hold(statement: Statement, context: Mapping[str, ContextValue]) -> tuple[bool, str]:
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not condition_holds(operator, key, as_list(wanted), context):
                given = context.get(key, "(absent)")
                return False, f"condition {operator} {key} {as_list(wanted)} fails for {given!r}"
    return True, ""


def _element_matches(statement: Statement, name: str, value: str, match: Any) -> bool:
    if name in statement:
        return any(match(p, value) for p in as_list(statement[name]))
    return not any(match(p, value) for p in as_list(statement[f"Not{name}"]))


def statement_applies(statement: Statement, request: Request) -> tuple[bool, str]:
    """Whether the statement covers the request; if not, the first element that does not."""
    if not _element_matches(statement, "Action", request.action, action_matches):
        return False, "action not in the statement"
    if not _element_matches(statement, "Resource", request.resource, arn_matches):
        return False, f"resource not in {as_list(statement.get('Resource', statement.get('NotResource')))}"
    return conditions_hold(statement, request.context)


def evaluate(statements: Sequence[Statement], request: Request) -> Decision:
    allowed: Statement | None = None
    for statement in statements:
        applies, _ = statement_applies(statement, request)
        if not applies:
            continue
        if statement["Effect"] == "Deny":
            return Decision(False, statement, "explicitly denied")
        allowed = allowed or statement
    if allowed is not None:
        return Decision(True, allowed, "allowed")
    return Decision(False, None, "no statement allows it (implicit deny)")


def closest(statements: Sequence[Statement], request: Request) -> tuple[Statement | None, str]:
    """The Allow statement nearest to allowing a denied request, and what it lacks: one with the
    action (resource or condition wrong) first, then one of the same service."""
    service = request.action.split(":")[0].lower()
    best: tuple[int, Statement | None, str] = (-1, None, "no statement of this service")
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        applies, why = statement_applies(statement, request)
        actions = as_list(statement.get("Action", []))
        if any(action_matches(a, request.action) for a in actions):
            score = 2
        elif any(str(a).lower().startswith(f"{service}:") for a in actions):
            score, why = 1, "action not in the statement"
        else:
            continue
        if not applies and score > best[0]:
            best = (score, statement, why)
    return best[1], best[2]
