"""CDK synth time, as `make synth` runs it (a fresh process: imports, construction, cdk-nag,
CloudFormation validation, writing cdk.out), against the same synth with CDK's built-in
CloudFormation validation switched off, which the notes measured as most of the time."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 2


def _synth_seconds(**env: str) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "infra" / "app.py")], check=True, cwd=ROOT,
                       env={**os.environ, "CDK_OUTDIR": outdir, **env}, capture_output=True)
        return time.perf_counter() - started


def main() -> dict[str, float]:
    full = min(_synth_seconds() for _ in range(RUNS))
    without_validation = min(_synth_seconds(CDK_VALIDATION="false") for _ in range(RUNS))
    figures = {
        "synth_seconds": round(full, 2),
        "synth_without_cfn_validation_seconds": round(without_validation, 2),
        "validation_cost_ratio": round(full / without_validation, 2),
    }
    print(f"make synth (best of {RUNS}): {full:.1f} s; without CloudFormation validation "
          f"{without_validation:.1f} s ({figures['validation_cost_ratio']}x); budget 60 s")
    return figures


if __name__ == "__main__":
    main()
