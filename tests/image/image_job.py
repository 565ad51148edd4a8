"""A training job as SageMaker hands it to the image: /opt/ml laid out in a folder, the image
started with `docker run <image> train`, SageMaker's few variables and nothing else.

Written out here rather than taken from the local runner, so the image tests check the image
against SageMaker's contract, not against the runner's copy of it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_REQUESTED = "OPENCOMPOSER_IMAGE_TESTS"  # `make image-test` sets it to "required"
DOCKER = os.environ.get("OPENCOMPOSER_DOCKER", "docker")


@dataclass
class Job:
    name: str
    root: Path  # the job's /opt/ml

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "checkpoint.pt"

    @property
    def model(self) -> Path:
        return self.root / "model" / "model.pt"

    def set_hyperparameters(self, hyperparameters: Mapping[str, str]) -> None:
        config = self.root / "input" / "config"
        (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))


def lay_out(root: Path, name: str, hyperparameters: Mapping[str, str], melody: bytes | None) -> Job:
    """SageMaker's layout for a one-instance File-mode job: input/config's three files, one
    folder per data channel, model/, output/, and checkpoints/ (its local checkpoint path)."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    channels = {"melody": melody} if melody is not None else {}
    file_mode = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                 "RecordWrapperType": "None"}
    (config / "inputdataconfig.json").write_text(json.dumps({c: file_mode for c in channels}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "current_group_name": "homogeneousCluster",
         "current_instance_type": "ml.m5.large", "network_interface_name": "eth0"}))
    for channel, content in channels.items():
        (root / "input" / "data" / channel).mkdir(parents=True)
        (root / "input" / "data" / channel / "melody.mid").write_bytes(content or b"")
    for folder in ("model", "output", "checkpoints"):
        (root / folder).mkdir()
    job = Job(name, root)
    job.set_hyperparameters(hyperparameters)
    return job


def docker_run_argv(image: str, job: Job, environment: Mapping[str, str], detach: bool = False) -> list[str]:
    """`docker run <image> train` as SageMaker starts a training container: its variables only
    (the job's name and ARN, the job's Environment), here with fake credentials and moto's
    endpoint for the AWS calls; the host's network, where moto listens."""
    env = {
        "TRAINING_JOB_NAME": job.name,
        "TRAINING_JOB_ARN": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job.name}",
        **environment,
    }
    argv = [DOCKER, "run", "--name", job.name, "--network", "host"]
    for folder in ("input", "model", "output", "checkpoints"):  # as SageMaker mounts them
        argv += ["--volume", f"{job.root / folder}:/opt/ml/{folder}"]
    if detach:
        argv.append("--detach")
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, image, "train"]


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)


def exit_code(name: str) -> int:
    return int(docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())


def logs(name: str) -> str:
    done = docker("logs", name)
    return done.stdout + done.stderr


def wait_for(path: Path, name: str, timeout: float) -> None:
    """Until `path` exists; fails early, with the container's log, if the container ended."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        state = docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        assert state == "true", f"the container ended before {path} appeared:\n{logs(name)[-3000:]}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s:\n{logs(name)[-3000:]}"
        time.sleep(1)
