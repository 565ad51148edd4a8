"""A burst against the local stack: 200 jobs at once, the API while they wait, then all stopped.

The whole local stack runs in this process, with its defaults (trainings at once: one per two
CPUs; Lambda workers: `OPENCOMPOSER_LAMBDA_CONCURRENCY` per function), as `make serve` runs,
warm (a few requests first, so the api's workers have imported their handler).

- burst: `JOBS` concurrent `POST /jobs` (1-epoch jobs) from `THREADS` client threads, each
  request timed: every answer must be 202, and the jobs listed afterwards (`GET /jobs`, every
  page) and the state machine's executions must be exactly those, none lost or doubled; and
  how long after the burst began every execution had started (the stream's delivery yields to
  requests in flight, so most start after the answers).
- while the backlog waits and trains: `GET /jobs/{id}` of random jobs from the burst,
  sequential, timed (target p99 <= 200 ms), and how many wait for training capacity.
- stop: `POST /jobs/{id}/stop` for every job from the same threads; the time until every job
  is STOPPED (or ended otherwise: a 1-epoch job may finish first) (target 60 s).
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.bench_api import _percentiles
from bench.local import local_stack
from opencomposer.client import ApiError, Client
from opencomposer.local.stack import LocalStack

JOBS = int(os.environ.get("OPENCOMPOSER_BENCH_BURST_JOBS", "200"))
THREADS = 20
GETS = 300
JOB = {"name": "burst", "hyperparameters": {"epochs": 1, "batch_size": 16, "update_ratio": 1}}
FINAL = {"COMPLETED", "FAILED", "STOPPED"}
TARGETS = {"post_p99_ms": 1000, "get_p99_ms": 200, "stop_all_s": 60}


def _post(client: Client) -> tuple[float, int, str | None]:
    started = time.perf_counter()
    try:
        job = client.submit(JOB)
        return time.perf_counter() - started, 202, job["job_id"]
    except ApiError as e:
        return time.perf_counter() - started, e.status, None
    except OSError:  # a reset or a timeout: no answer at all
        return time.perf_counter() - started, 0, None


def _all_jobs(client: Client) -> list[dict[str, Any]]:
    jobs, token = [], None
    while True:
        page = client.list(limit=100, next_token=token)
        jobs += page["jobs"]
        token = page.get("next_token")
        if not token:
            return jobs


def _executions(stack: LocalStack) -> list[str]:
    assert stack.resources is not None
    pages = stack.client("stepfunctions").get_paginator("list_executions")
    return [
        e["name"]
        for page in pages.paginate(stateMachineArn=stack.resources.state_machine_arn)
        for e in page["executions"]
    ]


def main() -> dict[str, Any]:
    with local_stack() as stack:
        # No retries: every answer counts as it came (the client would retry a 5xx)
        client = Client(stack.api_url, timeout=60, retry_delays_s=())
        assert stack.runner is not None and stack.runtime is not None
        print(
            f"local stack: {stack.runner.max_trainings} training(s) at once, "
            f"{stack.runtime.concurrency} Lambda workers per function",
            flush=True,
        )
        # warm: the api's workers have imported their handler (the stack starts them at once,
        # they import meanwhile), as a stack that has been up for a few seconds
        with ThreadPoolExecutor(stack.runtime.concurrency) as pool:
            list(pool.map(lambda _: client.list(limit=1), range(4 * stack.runtime.concurrency)))
        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(lambda _: _post(client), range(JOBS)))
        burst_s = time.perf_counter() - started
        codes: dict[int, int] = {}
        for _, code, _ in answers:
            codes[code] = codes.get(code, 0) + 1
        ids = [job_id for _, _, job_id in answers if job_id]
        post = _percentiles([s for s, _, _ in answers])
        print(
            f"burst: {JOBS} POST /jobs from {THREADS} threads in {burst_s:.1f} s: {codes}; {post}",
            flush=True,
        )

        listed = [j["job_id"] for j in _all_jobs(client)]
        deadline = time.monotonic() + 120
        while len(executions := _executions(stack)) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        # the pipelines start after the answers (the stream's delivery yields to requests)
        executions_s = time.perf_counter() - started
        lost = len(set(ids) - set(listed))
        doubled = len(listed) - len(set(listed))
        print(
            f"jobs listed {len(listed)} ({lost} lost, {doubled} doubled); executions {len(executions)} "
            f"({len(executions) - len(set(executions))} doubled), all started {executions_s:.1f} s "
            "after the burst began",
            flush=True,
        )

        rng = random.Random(0)
        gets = []
        for _ in range(GETS):
            job_id = rng.choice(ids)
            t = time.perf_counter()
            client.get(job_id)
            gets.append(time.perf_counter() - t)
        get = _percentiles(gets)
        jobs = _all_jobs(client)
        by_status: dict[str, int] = {}
        for j in jobs:
            by_status[j["status"]] = by_status.get(j["status"], 0) + 1
        waiting = sum(1 for j in jobs if j.get("status_message"))
        print(f"GET /jobs/{{id}} x {GETS} while the backlog waits: {get}; {by_status}, {waiting} waiting "
              "for capacity", flush=True)  # fmt: skip

        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda job_id: _stop(client, job_id), ids))
        while True:
            jobs = _all_jobs(client)
            left = [j for j in jobs if j["status"] not in FINAL]
            if not left or time.perf_counter() - started > 300:
                break
            time.sleep(0.5)
        stop_s = time.perf_counter() - started
        ended: dict[str, int] = {}
        for j in jobs:
            ended[j["status"]] = ended.get(j["status"], 0) + 1
        print(f"stop all: every job final after {stop_s:.1f} s: {ended}", flush=True)
    return {
        "jobs": JOBS,
        "threads": THREADS,
        "post_codes": codes,
        "post": post,
        "burst_s": round(burst_s, 2),
        "listed": len(listed),
        "lost": lost,
        "doubled": doubled,
        "executions": len(executions),
        "executions_started_s": round(executions_s, 1),
        "get_while_backlog": get,
        "statuses_during_backlog": by_status,
        "waiting_for_capacity": waiting,
        "stop_all_s": round(stop_s, 1),
        "statuses_after_stop": ended,
        "not_final_after_stop": len(left),
        "targets": TARGETS,
        "meets_targets": codes == {202: JOBS}
        and lost == doubled == 0
        and len(executions) == JOBS
        and post["p99_ms"] <= TARGETS["post_p99_ms"]
        and get["p99_ms"] <= TARGETS["get_p99_ms"]
        and not left
        and stop_s <= TARGETS["stop_all_s"],
    }


def _stop(client: Client, job_id: str) -> None:
    try:
        client.stop(job_id)
    except ApiError as e:
        if e.status != 409:  # already final: nothing to stop
            raise


if __name__ == "__main__":
    main()
