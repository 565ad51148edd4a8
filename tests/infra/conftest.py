"""The synthesised stack, built once per test session with cdk-nag attached (a finding nobody
acknowledged makes synth, and so every infra test, fail with cdk-nag's report)."""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template  # noqa: E402
from synthesized import Synth  # noqa: E402

from infra.app import build  # noqa: E402


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    started = time.perf_counter()
    app, stack = build(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    return Synth(stack=stack, template=template, assertions=Template.from_json(template),
                 seconds=time.perf_counter() - started)
