"""One Lambda execution environment: `python -m opencomposer.local.worker`.

`runtime.LambdaRuntime` starts it in the function's unzipped code (Lambda's `/var/task`) with the
function's environment. It imports the handler named by `_HANDLER` once (the init phase), then
serves invocations one at a time: a JSON request per line on stdin (the event, the request id,
the deadline), a JSON reply per line on stdout (`{"result": ...}` or `{"error": ...}`, as Lambda
reports an unhandled exception). Whatever the handler prints goes to stderr, the function's log.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from opencomposer.local import aws_calls


class LambdaContext:
    """The Lambda context object handlers and Powertools read."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = int(request["memory_size"])
        self.aws_request_id = request["request_id"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "local"
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def load_handler(name: str) -> Callable[[Any, Any], Any]:
    """`package.module.function` → the function."""
    module_name, _, function_name = name.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)  # type: ignore[no-any-return]


def main() -> None:
    # Replies go to the original stdout; anything the handler prints joins stderr (the log).
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    aws_calls.install_for_lambda()  # the IAM check's record of its AWS calls; off unless asked
    handler = load_handler(os.environ["_HANDLER"])
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = handler(request["event"], LambdaContext(request))
            text = json.dumps({"result": result}, default=str)
        except Exception as e:  # noqa: BLE001 - reported to the caller as Lambda does
            traceback.print_exc()
            error = {
                "errorMessage": str(e),
                "errorType": type(e).__name__,
                "stackTrace": traceback.format_tb(e.__traceback__),
            }
            text = json.dumps({"error": error})
        sys.stderr.flush()
        replies.write(text + "\n")


if __name__ == "__main__":
    main()
