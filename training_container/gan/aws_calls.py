"""A record of every AWS call this process makes, for the check that each one is allowed.

Off unless $OPENCOMPOSER_RECORD_AWS_CALLS names a folder (the local stack's IAM check sets it,
tests/infra/test_calls_allowed.py); then each call (a presigned URL too: its use is the signer's
call) appends one JSON line to `<folder>/<component>.<pid>.jsonl`: the component, the service,
the operation and its parameters, bodies left out. The one writer of that format: the training
container uses it from here (it must not import `opencomposer`), the Lambda workers and the
stack's state machine through `opencomposer.local.aws_calls`.

The hook is botocore's `before-parameter-build` event on a boto3 session: it fires for every
call of every client made from that session afterwards, after boto3's DynamoDB resource layer
has turned its conditions and Python values into the low-level form (more specific handlers
run first), so the record holds what the service receives.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_RECORD = "OPENCOMPOSER_RECORD_AWS_CALLS"
_EVENT = "before-parameter-build"
TRAINING = "training"  # the component name of the training container


def _opaque(value: Any) -> str:
    """What a record says of a value JSON cannot hold (a body, a file): its type only."""
    return f"<{type(value).__name__}>"


class Recorder:
    """Appends one line per call; safe to share between threads (one lock, one open file)."""

    def __init__(self, component: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.component = component
        self.path = folder / f"{component}.{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self._file = open(self.path, "a", buffering=1)  # noqa: SIM115 - lives with the process
        self._session: Any = None
        self.active = True

    def __call__(self, params: Any, model: Any, context: Any = None, **_: Any) -> None:
        if not self.active:
            return
        record = {
            "component": self.component,
            "service": model.service_model.service_name,
            # IAM's action prefix is the signing name (dynamodbstreams signs as dynamodb,
            # stepfunctions as states)
            "signing_name": model.service_model.signing_name,
            "operation": model.name,
            "presigned": bool((context or {}).get("is_presign_request")),
            "params": {k: v for k, v in dict(params).items() if k != "Body"},  # bodies: not evidence
        }
        line = json.dumps(record, default=_opaque)
        with self._lock:
            if self.active:
                self._file.write(line + "\n")

    def register(self, session: Any) -> None:
        """Every client made from this boto3 session from now on reports to this recorder."""
        session.events.register(_EVENT, self, unique_id=f"opencomposer-record-{id(self)}")
        self._session = session

    def close(self) -> None:
        with self._lock:
            self.active = False
            self._file.close()
        if self._session is not None:
            self._session.events.unregister(_EVENT, unique_id=f"opencomposer-record-{id(self)}")
            self._session = None


def install_from_env(component: str, environ: Mapping[str, str] = os.environ) -> Recorder | None:
    """Record the calls of boto3's default session (the one `boto3.client` and `boto3.resource`
    use) when $OPENCOMPOSER_RECORD_AWS_CALLS is set; None otherwise."""
    folder = environ.get(ENV_RECORD)
    if not folder:
        return None
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()  # what boto3.client() would do on its first call
    assert boto3.DEFAULT_SESSION is not None
    recorder = Recorder(component, Path(folder))
    recorder.register(boto3.DEFAULT_SESSION)
    return recorder
