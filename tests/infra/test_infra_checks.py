"""The security and template checks: cdk-nag's AwsSolutions pack and cfn-lint."""

from __future__ import annotations

import json

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint
from synthesized import Synth

from infra.app import CONTEXT
from infra.stack import OpenComposerStack


def _findings_without_acknowledgments() -> set[tuple[str, str]]:
    """(rule, construct path) of every AwsSolutions finding on a fresh, unacknowledged stack."""
    app = cdk.App(context=CONTEXT)
    stack = OpenComposerStack(app)
    report = AwsSolutionsChecks(app).validate_scope(stack)
    return {(v.rule_name, r.construct_path) for v in report.violations for r in v.violating_resources
            if r.construct_path}


def _acknowledgments(synth: Synth) -> dict[tuple[str, str], str]:
    """(rule, construct path) → reason, for every acknowledgment in the stack."""
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule, reason in entry.data.items():
                    found[(rule.removeprefix("Annotation::"), construct.node.path)] = reason
    return found


def test_synth_passed_cdk_nag_and_every_acknowledgment_has_a_real_reason(synth: Synth) -> None:
    # The session's synth ran with AwsSolutionsChecks attached: it would have raised on any
    # unacknowledged finding. What is acknowledged must say why.
    acknowledgments = _acknowledgments(synth)
    assert acknowledgments
    for (rule, path), reason in acknowledgments.items():
        assert rule.startswith("AwsSolutions-"), (rule, path)
        assert len(reason.split()) >= 8, f"{rule} on {path}: reason too thin: {reason!r}"


def test_each_acknowledgment_answers_a_real_finding_and_each_finding_is_acknowledged(synth: Synth) -> None:
    findings = _findings_without_acknowledgments()
    acknowledged = set(_acknowledgments(synth))

    def covered(rule: str, path: str) -> bool:
        return any(r == rule and (path == p or path.startswith(p + "/")) for r, p in acknowledged)

    assert not {f for f in findings if not covered(*f)}, "findings nobody acknowledged"
    stale = {(rule, path) for rule, path in acknowledged
             if not any(r == rule and (p == path or p.startswith(path + "/")) for r, p in findings)}
    assert not stale, "acknowledgments of findings that no longer exist"


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    matches = lint(json.dumps(synth.template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches
              if m.rule.id.startswith("E")]
    assert errors == []
