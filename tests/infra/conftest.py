"""The synthesised stack, built once per test session with cdk-nag attached (a finding nobody
acknowledged makes synth, and so every infra test, fail with cdk-nag's report)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template  # noqa: E402
from synthesized import Synth  # noqa: E402

from infra.app import build  # noqa: E402


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # CDK's built-in CloudFormation validation is off here: test_infra_checks runs cfn-lint on
    # the template itself and asserts zero errors, and the built-in pass triples synth time.
    outdir = str(tmp_path_factory.mktemp("cdk.out"))
    app, stack = build(outdir=outdir, builtin_cloud_formation_validation=False)
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    return Synth(stack=stack, template=template, assertions=Template.from_json(template),
                 assembly_dir=Path(assembly.directory))
