"""The rules of identifiers, and of the `${Placeholder}` text in the state-machine definition."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

# A job id is `uuid4().hex`: 32 lower-case hex digits. Anything else in a path is an unknown job.
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
# A job's optional `name`: what a person types to recognise the job later.
JOB_NAME_PATTERN = r"^[A-Za-z0-9 _-]+$"
JOB_NAME_MAX = 64
# The Idempotency-Key header: printable ASCII without spaces, scoped to its owner.
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"
# API Gateway's request id on every answer (the function logs it as its correlation id).
REQUEST_ID_HEADER = "x-amzn-RequestId"

# A user's composition: 12 hex digits of its creation time in milliseconds since the epoch, then
# 8 random ones, so ids sort by age (`storage.COMPOSITION_SORT_KEY_PREFIX`) and never collide in
# practice. What the training wrote is named instead: `final`, `epoch-0005` (TRAINING_OUTPUT).
COMPOSITION_ID_PATTERN = r"^[0-9a-f]{20}$"
TRAINING_OUTPUT_PATTERN = r"^(final|epoch-\d{4,})$"
# A composition's optional `name`, as a job's.
COMPOSITION_NAME_PATTERN = JOB_NAME_PATTERN
COMPOSITION_NAME_MAX = JOB_NAME_MAX

# SageMaker training job names: [a-zA-Z0-9-], at most 63 characters. The prefix scopes the IAM
# permissions on training jobs; the job id (32 hex digits) follows it.
TRAINING_JOB_NAME_MAX = 63


def is_job_id(text: str) -> bool:
    return re.match(JOB_ID_PATTERN, text) is not None


def new_composition_id(now_ms: int | None = None) -> str:
    """A fresh composition id: its creation time (ms) in 12 hex digits, then 8 random ones."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{millis:012x}{secrets.token_hex(4)}"


def is_composition_id(text: str) -> bool:
    return re.match(COMPOSITION_ID_PATTERN, text) is not None


def is_training_output(text: str) -> bool:
    return re.match(TRAINING_OUTPUT_PATTERN, text) is not None


def training_job_name(prefix: str, job_id: str) -> str:
    return f"{prefix}-{job_id}"


# --- the state machine's placeholders ------------------------------------------------------------
# `${Name}` in the ASL file, filled as text before the definition is created: by CloudFormation's
# definition substitutions on AWS, by the local stack's values locally. A `${...}` inside a
# `Comment` is prose, not a placeholder.
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def _strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(field name, text) of every string in a parsed definition."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str):
        yield key, node


def placeholders(definition: str) -> set[str]:
    """The placeholders the states use (comments aside); each needs a value."""
    return {name for key, text in _strings(json.loads(definition)) if key != "Comment"
            for name in PLACEHOLDER.findall(text)}


def all_placeholders(definition: str) -> set[str]:
    """Every `${Name}` in the text, comments included."""
    return set(PLACEHOLDER.findall(definition))


def render(definition: str, values: Mapping[str, str]) -> str:
    """`${Name}` → value for the names given, as CloudFormation's `DefinitionSubstitutions` do
    (plain text replacement; a `${...}` without a value stays as it is)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), definition)
