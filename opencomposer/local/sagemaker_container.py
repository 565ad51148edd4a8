"""What a SageMaker training container sees, built for a local process: its `/opt/ml` folders,
its environment and command line, and how its failure reads (SageMaker's FailureReason).

Pure functions of the job, so a test can check the contract without running anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# What the training process inherits from this machine (the dataset cache lives under HOME or
# OPENCOMPOSER_DATA_DIR); everything else is the container contract and the job's Environment.
_INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SYSTEMROOT",
    "OMP_NUM_THREADS",
    "OPENCOMPOSER_DATA_DIR",
)


def container_environment(
    *,
    job_name: str,
    job_arn: str,
    paths: JobPaths,
    channels: Sequence[str],
    hyperparameters: Mapping[str, str],
    job_environment: Mapping[str, Any],
    endpoint_url: str,
    python_path: Sequence[str],
    host_environ: Mapping[str, str],
    cpu_count: int,
) -> dict[str, str]:
    """The training process's environment, as a SageMaker training container sees it.

    Only `_INHERITED_ENV` of the host; fake credentials and moto's endpoint for the AWS SDK; the
    training toolkit's `SM_*` variables, with one `SM_CHANNEL_<NAME>` per input channel and one
    `SM_HP_<NAME>` per hyperparameter; and the job's `Environment` last, over all of them.

    No region: SageMaker sets no AWS_REGION or AWS_DEFAULT_REGION in a training container, so
    here too the region reaches the process only through the job's `Environment`
    (contracts.training.REGION_ENVIRONMENT), and a job created without it fails here as on AWS.
    """
    env = {name: host_environ[name] for name in _INHERITED_ENV if name in host_environ}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": endpoint_url,
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            "TRAINING_JOB_NAME": job_name,
            "TRAINING_JOB_ARN": job_arn,
            "SM_MODEL_DIR": str(paths.model),
            "SM_OUTPUT_DIR": str(paths.output),
            "SM_OUTPUT_DATA_DIR": str(paths.output_data),
            "SM_INPUT_DIR": str(paths.input),
            "SM_INPUT_CONFIG_DIR": str(paths.input_config),
            "SM_CHANNELS": json.dumps(list(channels)),
            "SM_HPS": json.dumps(dict(hyperparameters)),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(cpu_count),
        }
    )
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(paths.channel(channel))
    for name, value in hyperparameters.items():
        env[f"SM_HP_{name.upper()}"] = value
    env.update({name: str(value) for name, value in job_environment.items()})
    return env


def container_argv(entry_point: Sequence[str], hyperparameters: Mapping[str, str]) -> list[str]:
    """The entry point with each hyperparameter as a `--name value` flag, as the toolkit runs it."""
    argv = list(entry_point)
    for name, value in hyperparameters.items():
        argv += [f"--{name}", value]
    return argv


class JobPaths:
    """The job's `/opt/ml`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.input = root / "input"
        self.input_config = self.input / "config"
        self.model = root / "model"
        self.output = root / "output"
        self.output_data = self.output / "data"
        self.checkpoints = root / "checkpoints"
        # SageMaker's /opt/ml/output/failure: the container writes its reason there.
        self.failure_file = self.output / "failure"

    def channel(self, name: str) -> Path:
        return self.input / "data" / name

    def create(self) -> None:
        for path in (self.input_config, self.model, self.output_data, self.checkpoints):
            path.mkdir(parents=True, exist_ok=True)


def failure_reason(failure_file: Path, rc: int, stderr_tail: list[str]) -> str:
    if failure_file.exists() and failure_file.read_text().strip():
        return "AlgorithmError: " + failure_file.read_text().strip()
    detail = "\n".join(stderr_tail).strip() or "no output"
    return f"AlgorithmError: the training process exited with code {rc}:\n{detail}"


def tail(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 16384))
        text = f.read().decode(errors="replace")
    # the runner's own closing line is not the training's output
    return [line for line in text.splitlines() if not line.startswith("Process exited with code")][-lines:]
