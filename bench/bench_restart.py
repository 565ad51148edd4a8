"""A `kill -9` restart of `make serve`: what there was before, what there is after.

A real `python -m opencomposer.local.serve` (what `make serve` execs) in a temporary home: one
1-epoch job trained with a composition made, one long job training; after a snapshot interval
the whole process group gets SIGKILL, and the stack is started again on the same home. The
figures: jobs and their files (the training's MIDI and the user's compositions, fetched and
compared byte for byte) before and after, the interrupted job's final status and reason, how
long the orphaned training took to end and the restart to answer. The same scenario as
`tests/integration/test_restart.py`, whose helpers it uses.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from opencomposer.client import Client
from opencomposer.local import snapshot
from tests.integration.test_restart import LONG, TINY, _free_port, _serve, _trainings, _until


def _files(client: Client, job_ids: list[str]) -> dict[str, bytes]:
    import urllib.request

    files = {}
    for job_id in job_ids:
        for c in client.all_compositions(job_id):
            with urllib.request.urlopen(c["url"], timeout=30) as reply:
                files[f"{job_id}/{c['name']}"] = bytes(reply.read())
    return files


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-") as tmp:
        home, port = Path(tmp), _free_port()
        first = _serve(home, port)
        client = Client(f"http://127.0.0.1:{port}", timeout=60)
        try:
            done = client.wait(client.submit({"name": "kept", "hyperparameters": TINY})["job_id"], 0.5, 300)
            client.compose(done["job_id"], sample="ode-to-joy", seed=1)
            running = client.submit({"name": "interrupted", "hyperparameters": LONG})["job_id"]
            _until(lambda: client.get(running)["status"] == "TRAINING", "the long job to train")
            time.sleep(snapshot.INTERVAL_S + 2)
            before_jobs = {j["job_id"]: j["status"] for j in client.list()["jobs"]}
            before_files = _files(client, [done["job_id"]])
            killed = time.monotonic()
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
            _until(lambda: not _trainings(home), "the orphaned training to end", timeout=60)
            orphan_s = time.monotonic() - killed
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        started = time.monotonic()
        second = _serve(home, port)
        restart_s = time.monotonic() - started
        try:
            after = {j["job_id"]: j for j in client.list()["jobs"]}
            after_files = _files(client, [done["job_id"]])
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(40)
    same = sum(1 for name, data in before_files.items() if after_files.get(name) == data)
    figures = {
        "jobs_before": before_jobs,
        "jobs_after": {job_id: job["status"] for job_id, job in after.items()},
        "files_before": len(before_files),
        "files_after_identical": same,
        "interrupted": {
            "status": after[running]["status"],
            "failure_reason": after[running]["failure_reason"],
        },
        "orphaned_training_ended_s": round(orphan_s, 1),
        "restart_to_first_answer_s": round(restart_s, 1),
    }
    print(
        f"kill -9 mid-training, then restart: jobs before {before_jobs} -> after "
        f"{figures['jobs_after']}; files {len(before_files)} before, {same} identical after; "
        f"the interrupted job {figures['interrupted']}; orphaned training gone after {orphan_s:.1f} s; "
        f"restart answered after {restart_s:.1f} s",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    main()
