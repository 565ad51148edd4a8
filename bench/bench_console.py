"""The console in headless Chromium against the local stack: its first load, and what its
polling costs the API.

The whole local stack runs in this process; one 1-epoch job trains first, so the pages have a
finished job to show (its charts, metrics and samples).

- first load: from navigation to the page showing its data (the app's `opencomposer:ready`
  mark: its first API round answered and rendered), with the browser's cache cleared and
  disabled, so the HTML, the scripts (uPlot, Tone.js, @tonejs/midi) and the API calls are all
  paid. The jobs page and the finished job's page, `LOADS` times each. Target under 1 s.
- polling: with a job training, the API requests the page itself makes (the browser's resource
  timing: fetches to this origin) over `POLL_WINDOW_S`, on the jobs page and on the training
  job's page (which also fetches the metrics and samples at each new epoch). Target at most one
  request per second per open page.

Without Chromium (Debian's `chromium`, `chromium-driver`) the bench says so and skips.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from opencomposer.client import Client
from opencomposer.console import headless
from opencomposer.local.stack import LocalStack, LocalStackOptions

LOADS = int(os.environ.get("OPENCOMPOSER_BENCH_CONSOLE_LOADS", "7"))
POLL_WINDOW_S = float(os.environ.get("OPENCOMPOSER_BENCH_CONSOLE_WINDOW_S", "30"))
FIRST_LOAD_TARGET_MS = 1000
POLL_TARGET_PER_S = 1.0
LONG_JOB = {
    "name": "bench-console-long",
    "hyperparameters": {"epochs": 500, "batch_size": 16, "update_ratio": 1},
}

_READY = "return performance.getEntriesByName('opencomposer:ready').map(e => e.startTime)"
_FETCHES = """
return performance.getEntriesByType('resource')
  .filter(e => e.initiatorType === 'fetch' && e.name.startsWith(location.origin)
    && e.startTime >= arguments[0])
  .map(e => new URL(e.name).pathname)
"""


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _first_load_ms(driver: Any, url: str) -> float:
    """One cold load of `url`: about:blank first, so each load is a navigation of its own."""
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get(url)
    marks = _wait(lambda: driver.execute_script(_READY), 30, f"{url} to show its data")
    return float(marks[0])


def _summary(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(ms), 1), "worst_ms": round(max(ms), 1), "n": len(ms)}


def _polling(driver: Any, url: str, ready_before: str) -> dict[str, Any]:
    """The API requests `url` makes over POLL_WINDOW_S once it shows its data."""
    driver.get("about:blank")
    driver.get(url)
    _wait(lambda: driver.execute_script(_READY), 30, f"{url} to show its data")
    _wait(lambda: driver.execute_script(ready_before), 30, f"{url} to show the training job")
    driver.execute_script("performance.setResourceTimingBufferSize(100000)")
    since = driver.execute_script("return performance.now()")
    time.sleep(POLL_WINDOW_S)
    paths = driver.execute_script(_FETCHES, since)
    per_path: dict[str, int] = {}
    for path in paths:
        per_path[path] = per_path.get(path, 0) + 1
    return {"requests": len(paths), "per_s": round(len(paths) / POLL_WINDOW_S, 3), "paths": per_path}


def main() -> dict[str, Any]:
    needs = headless.missing()
    if needs:
        print("skipped: the console's bench needs " + ", ".join(needs), flush=True)
        return {"skipped": needs}
    with tempfile.TemporaryDirectory(prefix="opencomposer-bench-") as home:
        stack = LocalStack(LocalStackOptions(home=Path(home), port=0, stop_grace_s=5))
        stack.start()
        driver = headless.chrome()
        try:
            client = Client(stack.api_url, timeout=60)
            done = client.submit(
                {"name": "bench-console", "hyperparameters": {"epochs": 1, "batch_size": 16}}
            )
            done = client.wait(done["job_id"], interval=0.5, timeout=600)
            if done["status"] != "COMPLETED":
                raise RuntimeError(f"the bench's job ended {done['status']}: {done.get('failure_reason')}")
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
            pages = {"jobs": f"{stack.api_url}/#/jobs", "job": f"{stack.api_url}/#/jobs/{done['job_id']}"}
            _first_load_ms(driver, pages["jobs"])  # the stack's own first requests (workers' imports) aside
            first_load = {}
            for page, url in pages.items():
                loads = [_first_load_ms(driver, url) for _ in range(LOADS)]
                first_load[page] = _summary(loads)
                print(
                    f"first load, {page} page (cache off): {first_load[page]} "
                    f"(target under {FIRST_LOAD_TARGET_MS} ms)",
                    flush=True,
                )

            running = client.submit(LONG_JOB)
            _wait(lambda: client.get(running["job_id"])["status"] == "TRAINING", 300, "the long job to train")
            polling = {
                "jobs": _polling(
                    driver,
                    pages["jobs"],
                    f"return !!document.querySelector('tr[data-job-id=\"{running['job_id']}\"]')",
                ),
                "job": _polling(
                    driver,
                    f"{stack.api_url}/#/jobs/{running['job_id']}",
                    "return !!document.querySelector('h1 .badge[data-status=\"TRAINING\"]')",
                ),
            }
            for page, figures in polling.items():
                print(
                    f"polling, {page} page with a job training: {figures['requests']} API requests in "
                    f"{POLL_WINDOW_S:.0f} s = {figures['per_s']}/s {figures['paths']} "
                    f"(target at most {POLL_TARGET_PER_S}/s)",
                    flush=True,
                )
            client.stop(running["job_id"])
        finally:
            driver.quit()
            stack.stop()
    return {
        "first_load": first_load,
        "polling": polling,
        "targets": {"first_load_ms": FIRST_LOAD_TARGET_MS, "polling_per_s": POLL_TARGET_PER_S},
        "meets_targets": all(f["worst_ms"] < FIRST_LOAD_TARGET_MS for f in first_load.values())
        and all(p["per_s"] <= POLL_TARGET_PER_S for p in polling.values()),
        "method": "headless Chromium, cache cleared and disabled, time to the app's opencomposer:ready mark; "
        "polling: the page's fetches to the API over the window (resource timing)",
    }


if __name__ == "__main__":
    main()
