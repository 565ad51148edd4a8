"""Recording the AWS calls of the local stack's components, for the IAM check
(tests/infra/test_calls_allowed.py, docs/iam.md).

Off unless $OPENCOMPOSER_RECORD_AWS_CALLS names a folder. Where each component's calls come from:

- a Lambda worker (`worker.py`) records under its function's `contracts.functions` key
  (`install_for_lambda`);
- the training container records as `training` (`gan.aws_calls`, installed by `gan.reporter`);
- the state machine's tasks run in the stack's own process, inside moto's interpreter, whose
  boto3 clients come from boto3's default session (`boto3.client`); the stack's own clients
  (resource creation, the front door, snapshots, the SageMaker runner) come from sessions of
  their own, so recording the default session records the tasks and nothing else
  (`install_for_state_machine`).

The record format and its writer are `gan.aws_calls`'s; `read` gives the calls back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts import functions
from gan.aws_calls import ENV_RECORD, TRAINING, Recorder, install_from_env

STATE_MACHINE = "statemachine"  # the component name of the state machine's tasks
__all__ = ["ENV_RECORD", "STATE_MACHINE", "TRAINING", "Recorder", "install_for_lambda",
           "install_for_state_machine", "read"]


def function_component(handler: str) -> str:
    """The `contracts.functions` key of the function running this handler (the handler itself
    if no spec names it, so a record never loses who made it)."""
    return next((spec.key for spec in functions.FUNCTIONS if spec.handler == handler), handler)


def install_for_lambda(environ: Mapping[str, str] = os.environ) -> Recorder | None:
    """In a Lambda worker, before the handler is imported (its clients are made at import or on
    first use, both after this)."""
    return install_from_env(function_component(environ.get("_HANDLER", "")), environ)


def install_for_state_machine(environ: Mapping[str, str] = os.environ) -> Recorder | None:
    """In the stack's process, before any execution starts; `Recorder.close()` at its stop."""
    return install_from_env(STATE_MACHINE, environ)


def read(folder: Path) -> list[dict[str, Any]]:
    """Every call recorded under `folder`, file by file."""
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]
