"""Composing with a trained model through the local API: latency, and the container image's
cold start estimated from what it pays here.

The whole local stack runs in this process. One short job trains (the default model's size, a
few epochs: latency depends on the model's size, not on how well it learned), then a 16-bar
melody (`ode-to-joy`) is composed over HTTP → front door → compose function's warm worker →
model → S3 → response, as a user's request travels:

- first: the first composition after the stack started (the worker is warm, the job's model is
  not yet fetched or loaded: the figure includes both). Target 5 s.
- p50/p99 over 100 sequential requests, each with its own seed (each request composes afresh;
  the model stays cached in the worker). Targets 300 ms and 1 s.
- cold start estimate of the container-image Lambda: a fresh interpreter importing the compose
  handler (PyTorch, the gan package, Powertools) and loading the job's model.tar.gz, timed here.
  On AWS, Lambda adds fetching the image (cached after the first cold starts) and the runtime's
  own start; CPU is ~1.7 vCPU at 3,008 MB, near this machine's two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_api import _percentiles
from bench.local import local_stack
from opencomposer.client import Client

REQUESTS = int(os.environ.get("OPENCOMPOSER_BENCH_COMPOSE_REQUESTS", "100"))
EPOCHS = 3
MELODY = "ode-to-joy"  # 16 bars of 4/4
TARGETS_MS = {"first": 5000, "p50": 300, "p99": 1000}
REPO = Path(__file__).resolve().parents[1]

_COLD_START = """
import io, json, sys, time
started = time.perf_counter()
import lambdas.compose.handler  # noqa: F401  (what the image's runtime imports at init)
from lambdas.compose.model_store import unpack
imported = time.perf_counter()
generator = unpack(open(sys.argv[1], "rb").read())
loaded = time.perf_counter()
print(json.dumps({"import_s": imported - started, "model_load_s": loaded - imported}))
"""


def _cold_start(model: Path) -> dict[str, float]:
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "bench", "PYTHONPATH": str(REPO)}
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _COLD_START, str(model)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=REPO,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["import_s"] + r["model_load_s"])
    return {key: round(value, 3) for key, value in best.items()}


def main() -> dict[str, Any]:
    with local_stack() as stack:
        client = Client(stack.api_url, timeout=60)
        job = client.submit({"name": "bench-compose", "hyperparameters": {"epochs": EPOCHS}})
        done = client.wait(job["job_id"], interval=0.5, timeout=600)
        if done["status"] != "COMPLETED":
            raise RuntimeError(f"the bench's job ended {done['status']}: {done.get('failure_reason')}")
        print(f"trained a {EPOCHS}-epoch default-size model: job {job['job_id']}", flush=True)

        started = time.perf_counter()
        first = client.compose(job["job_id"], sample=MELODY, seed=0)
        first_s = time.perf_counter() - started
        print(
            f"first composition after start: {first_s * 1000:.0f} ms ({first['bars']} bars; "
            f"target {TARGETS_MS['first']} ms)",
            flush=True,
        )
        samples = []
        for seed in range(1, REQUESTS + 1):
            started = time.perf_counter()
            client.compose(job["job_id"], sample=MELODY, seed=seed)
            samples.append(time.perf_counter() - started)
        warm = _percentiles(samples)
        print(
            f"POST /jobs/{{id}}/compositions over {REQUESTS} ({first['bars']} bars): {warm} "
            f"(targets p50 {TARGETS_MS['p50']} ms, p99 {TARGETS_MS['p99']} ms)",
            flush=True,
        )

        model = stack.home / "model.tar.gz"
        client.fetch(client.model(job["job_id"])["url"], model)
        cold = _cold_start(model)
        estimate = cold["import_s"] + cold["model_load_s"]
        print(
            f"compose image cold start, measured here: import {cold['import_s']:.2f} s + model load "
            f"{cold['model_load_s']:.3f} s = {estimate:.2f} s (Lambda adds the image fetch and its "
            "runtime's start)",
            flush=True,
        )
    return {
        "melody": MELODY,
        "bars": first["bars"],
        "first_ms": round(first_s * 1000, 1),
        "warm": warm,
        "targets_ms": TARGETS_MS,
        "meets_targets": first_s * 1000 <= TARGETS_MS["first"]
        and warm["p50_ms"] <= TARGETS_MS["p50"]
        and warm["p99_ms"] <= TARGETS_MS["p99"],
        "cold_start_estimate_s": round(estimate, 2),
        "cold_start_parts_s": cold,
        "method": "sequential HTTP requests to the local stack (front door -> compose Lambda worker -> model "
        "-> S3); cold start: a fresh interpreter importing the handler and loading model.tar.gz, best of 3",
    }


if __name__ == "__main__":
    main()
