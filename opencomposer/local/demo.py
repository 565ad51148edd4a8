"""`make run`: the whole pipeline once, on this machine.

Starts the local stack, submits the default job with a sample melody, shows its progress,
downloads the final composition and the per-epoch samples into `out/<job_id>/`, has the trained
model accompany a melody it never trained on (`COMPOSE`), says where everything is, and shuts
the stack down: also on Ctrl-C or failure, with a non-zero exit then.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

from contracts import names, statuses
from lambdas.common.melodies import DEFAULT_SAMPLE
from opencomposer.cli import DEFAULT_OUT, EXIT_API, EXIT_JOB_FAILED, ProgressPrinter
from opencomposer.client import ApiError, Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

DEMO_JOB: dict[str, Any] = {"name": "make-run-demo", "melody": {"sample": DEFAULT_SAMPLE}}
# What the demo composes with the trained model: another melody, for a string quartet.
COMPOSE: dict[str, Any] = {"sample": "ode-to-joy", "seed": 1, "instruments": "strings"}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="instead of the API's default (a quicker, rougher model)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent folder of the downloads")
    args = parser.parse_args(argv)
    job = dict(DEMO_JOB)
    if args.epochs is not None:
        job["hyperparameters"] = {"epochs": args.epochs}
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    print("starting the local stack (moto, Lambda runtime, SageMaker runner)...", flush=True)
    # Any free port: the demo must not collide with a `make serve` already running.
    stack = LocalStack(LocalStackOptions(port=0))
    job_id = None
    client: Client | None = None
    try:
        stack.start()
        client = Client(stack.api_url)
        job = client.submit(job)
        job_id = job["job_id"]
        hyperparameters = " ".join(f"{k}={v}" for k, v in job["hyperparameters"].items())
        print(f"submitted job {job_id} ({hyperparameters}, melody {DEFAULT_SAMPLE})", flush=True)
        training_job = names.training_job_name(stack.names.training_job_prefix, job_id)
        if stack.runner is not None:
            print(f"training log: {stack.runner.log_path(training_job)}", flush=True)
        printer = ProgressPrinter(sys.stdout)
        try:
            job = client.wait(job_id, interval=1.0, on_update=printer)
        finally:
            printer.done()
        if job["status"] != statuses.COMPLETED:
            print(f"job {job_id} ended {job['status']}: {job.get('failure_reason')}", file=sys.stderr)
            print(f"logs: {stack.logs_dir}", file=sys.stderr)
            return EXIT_JOB_FAILED
        target = args.out / job_id
        paths = client.download(job_id, target)
        print(f"\ndownloaded {len(paths)} MIDI files into {target.resolve()}/:")
        for path in paths:
            print(f"  {path.name}")
        composition = client.compose(job_id, **COMPOSE)
        composed = target / f"composed-{COMPOSE['sample']}.mid"
        client.fetch(composition["url"], composed)
        settings = f"{composition['bars']} bars, seed {COMPOSE['seed']}, {COMPOSE['instruments']}"
        print(f"\nthe model accompanied {COMPOSE['sample']} ({settings}): {composed.resolve()}")
        print(f"logs: {stack.logs_dir}")
        print(f"done in {time.monotonic() - started:.0f} s")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the job and the stack", file=sys.stderr)
        if client is not None and job_id is not None:
            with contextlib.suppress(ApiError):
                client.stop(job_id)
        return 130
    except ApiError as e:
        print(f"error: {e}\nlogs: {stack.logs_dir}", file=sys.stderr)
        return EXIT_API
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
