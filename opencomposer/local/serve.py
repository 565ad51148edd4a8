"""`make serve`: the local stack in the foreground, until Ctrl-C.

python -m opencomposer.local.serve      # API on http://127.0.0.1:$OPENCOMPOSER_PORT (8000)
"""

from __future__ import annotations

import signal
import sys
import threading

from opencomposer.client import ApiError, Client
from opencomposer.local.stack import LocalStack, LocalStackOptions, api_port


def main() -> int:
    stack = LocalStack(LocalStackOptions(port=api_port()))
    try:
        stack.start()
    except OSError as e:
        print(
            f"cannot start the local stack on port {api_port()}: {e} (set OPENCOMPOSER_PORT)", file=sys.stderr
        )
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        Client(stack.api_url).list(limit=1)  # it answers: only then say where it is
        print(f"opencomposer local API: {stack.api_url}", flush=True)
        print(f"  state and logs: {stack.home}  (logs in {stack.logs_dir})", flush=True)
        print(
            f"  try: opencomposer --api {stack.api_url} submit --epochs 5 --wait   (Ctrl-C stops)", flush=True
        )
        while not stopped.wait(0.5):
            pass
    except ApiError as e:
        print(f"the local API does not answer: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping the local stack", file=sys.stderr, flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
