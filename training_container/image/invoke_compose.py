"""Invoke the compose function's handler inside its built image, as Lambda would, without
Lambda's runtime interface emulator (not on any package registry this machine reaches).

    .venv/bin/python training_container/image/invoke_compose.py IMAGE EVENT.json \
        --env OPENCOMPOSER_JOBS_TABLE=... --env AWS_ENDPOINT_URL=http://127.0.0.1:PORT ...

The image's own Python imports the handler from the task root (`$LAMBDA_TASK_ROOT`, where the
Dockerfile installed it and its wheels), calls it with the event read from stdin and a context
with the fields Powertools reads, and prints the handler's answer as the last line, after a
marker (the handler's own log lines come before it). `invoke()` is the same for Python callers
(tests/image/test_image_in_the_local_stack.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DOCKER = os.environ.get("OPENCOMPOSER_DOCKER", "docker")
MARKER = "OPENCOMPOSER-HANDLER-ANSWER:"
HANDLER = "lambdas.compose.handler.lambda_handler"  # contracts.functions.COMPOSE.handler
_RUN = f"""
import importlib, json, os, sys, uuid
sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
module, name = {HANDLER!r}.rsplit(".", 1)
handler = getattr(importlib.import_module(module), name)

class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "compose")
    function_version = "$LATEST"
    memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008"))
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:" + function_name
    aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self):
        return 900000

answer = handler(json.load(sys.stdin), Context())
print({MARKER!r} + json.dumps(answer), flush=True)
"""


def invoke(image: str, event: Mapping[str, Any], environment: Mapping[str, str], timeout: float = 600) -> Any:
    """The handler's answer to `event`, run in `image` with `environment` (host network, so a
    local moto endpoint is reachable). RuntimeError with the container's output otherwise."""
    argv = [DOCKER, "run", "--rm", "-i", "--network", "host"]
    for name, value in environment.items():
        argv += ["-e", f"{name}={value}"]
    argv += ["--entrypoint", "python", image, "-c", _RUN]
    done = subprocess.run(argv, input=json.dumps(event), capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the handler did not answer (exit {done.returncode}):\n{done.stdout[-3000:]}"
                           f"\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(MARKER))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image")
    parser.add_argument("event", type=Path, help="a JSON file: the event (an API Gateway proxy event)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    environment = dict(item.split("=", 1) for item in args.env)
    print(json.dumps(invoke(args.image, json.loads(args.event.read_text()), environment), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
