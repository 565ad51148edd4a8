"""Local API latency: `POST /jobs` and `GET /jobs/{id}` p50/p99, and POST → `STARTING`.

The whole local stack runs in this process; requests go over HTTP through the front door, the
api function's warm worker, and moto, as a user's would.

- POST → STARTING: a few jobs, one at a time, each polled every 10 ms until the state machine
  marks it STARTING (so the figure includes up to one poll of slack), then stopped through the
  API as soon as its training job exists, so no training runs to its end.
- POST and GET latency: a few hundred requests each, sequential, with the stream's event-source
  mapping disabled, so the jobs POSTed are stored (the whole API path) but never start: hundreds
  of trainings would swamp the machine. Stream delivery is asynchronous and not on the POST
  path anyway. The stack, and every job in it, is discarded at the end.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from contracts import names
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

REQUESTS = int(os.environ.get("OPENCOMPOSER_BENCH_REQUESTS", "300"))
STARTING_JOBS = max(2, int(os.environ.get("OPENCOMPOSER_BENCH_STARTING_JOBS", "5")))
WARMUP = 10
JOB = {"name": "bench", "hyperparameters": {"epochs": 1, "batch_size": 16}}
FINAL = {"COMPLETED", "FAILED", "STOPPED"}


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p99_ms": round(cuts[98], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(ms[-1], 2),
        "n": len(ms),
    }


def _timed(call: Any, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _time_to_starting(stack: LocalStack, client: Client) -> list[float]:
    sagemaker = stack.client("sagemaker")
    samples = []
    for _ in range(STARTING_JOBS):
        started = time.perf_counter()
        job_id = client.submit(JOB)["job_id"]
        while client.get(job_id)["status"] == "SUBMITTED":
            time.sleep(0.01)
        samples.append(time.perf_counter() - started)
        name = names.training_job_name(stack.names.training_job_prefix, job_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                sagemaker.describe_training_job(TrainingJobName=name)
                break
            except sagemaker.exceptions.ClientError:
                time.sleep(0.02)
        client.stop(job_id)
        client.wait(job_id, interval=0.2, timeout=60)
    return samples


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-") as home:
        started = time.perf_counter()
        stack = LocalStack(LocalStackOptions(home=Path(home), port=0, stop_grace_s=5))
        stack.start()
        startup_s = time.perf_counter() - started
        try:
            client = Client(stack.api_url)
            print(f"local stack up in {startup_s:.2f} s at {stack.api_url}", flush=True)

            starting = _time_to_starting(stack, client)
            to_starting = _percentiles(starting)
            del to_starting["p99_ms"]  # a handful of jobs: p99 would only repeat the maximum
            print(f"POST -> STARTING over {len(starting)} jobs: {to_starting}", flush=True)

            assert stack.resources is not None
            stack.client("lambda").update_event_source_mapping(
                UUID=stack.resources.mapping_uuid, Enabled=False
            )
            _timed(lambda: client.submit(JOB), WARMUP)
            post = _percentiles(_timed(lambda: client.submit(JOB), REQUESTS))
            print(f"POST /jobs over {REQUESTS}: {post}", flush=True)
            job_id = client.submit(JOB)["job_id"]
            _timed(lambda: client.get(job_id), WARMUP)
            get = _percentiles(_timed(lambda: client.get(job_id), REQUESTS))
            print(f"GET /jobs/{{id}} over {REQUESTS}: {get}", flush=True)
        finally:
            stack.stop()
    return {
        "stack_startup_s": round(startup_s, 2),
        "post_jobs": post,
        "get_job": get,
        "post_to_starting": to_starting,
        "method": "sequential HTTP requests to the local stack (front door -> api Lambda worker -> moto); "
        "POST latency measured with the stream mapping disabled, so no training starts",
    }


if __name__ == "__main__":
    main()
