"""The local stack's trainings inside the training image, as SageMaker local mode runs them
(`OPENCOMPOSER_TRAINING_RUNTIME=docker`; the default, `process`, needs no Docker).

SageMaker runs `docker run <image> train` with the job's folder as /opt/ml and sets only its own
few variables: the job's name and ARN and the job's `Environment`. Here the credentials are the
local stack's fake ones and the AWS endpoint is moto's (SageMaker gives a role's credentials and
the real endpoints instead); nothing else of this machine reaches the container, no `SM_*`
variable either: the image's entry point reads /opt/ml/input/config as on SageMaker.

One container per job: the runner refuses a job of several instances in this runtime (with a
ClientError saying so) rather than start its hosts as containers on a network of their own;
the process runtime runs them.

Pure functions and one small class, so a test can check the command without Docker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opencomposer.local.sagemaker_container import SAGEMAKER_ARGUMENT

ENV_RUNTIME = "OPENCOMPOSER_TRAINING_RUNTIME"
ENV_IMAGE = "OPENCOMPOSER_TRAINING_IMAGE"
ENV_DOCKER = "OPENCOMPOSER_DOCKER"  # the docker command, if not `docker` on PATH
RUNTIMES = ("process", "docker")
# The tag training_container/image/build.sh gives the image it builds.
DEFAULT_IMAGE = "opencomposer-training:local"
ML_ROOT = "/opt/ml"
# What SageMaker (and its local mode) mounts under /opt/ml, each folder on its own: the image
# may keep files of its own under /opt/ml.
ML_FOLDERS = ("input", "model", "output", "checkpoints")


def runtime_from_env(environ: Mapping[str, str] = os.environ) -> str:
    runtime = environ.get(ENV_RUNTIME, "").strip() or "process"
    if runtime not in RUNTIMES:
        raise ValueError(f"{ENV_RUNTIME} must be one of {', '.join(RUNTIMES)} (not {runtime!r})")
    return runtime


def sagemaker_environment(
    *, job_name: str, job_arn: str, job_environment: Mapping[str, Any], endpoint_url: str
) -> dict[str, str]:
    """What the container's environment holds beyond the image's own: SageMaker's variables,
    the local stand-ins for its credentials and endpoints, then the job's `Environment`."""
    env = {
        "TRAINING_JOB_NAME": job_name,
        "TRAINING_JOB_ARN": job_arn,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": endpoint_url,
    }
    env.update({name: str(value) for name, value in job_environment.items()})
    return env


class DockerRuntime:
    """`docker run` of the training image for one job folder, and its signals by container name."""

    def __init__(self, image: str | None = None, docker: str | None = None, scope: str = "") -> None:
        self.image = image or os.environ.get(ENV_IMAGE) or DEFAULT_IMAGE
        self.docker = docker or os.environ.get(ENV_DOCKER) or "docker"
        # Container names are global to the daemon: two stacks' jobs must not meet.
        self._prefix = "opencomposer-" + hashlib.sha256(scope.encode()).hexdigest()[:8] + "-"

    def container_name(self, job_name: str) -> str:
        return self._prefix + job_name

    def check(self) -> None:
        """Raise, saying what to do, when Docker or the image is missing (the job then fails
        with that reason rather than a docker client's usage text)."""
        if shutil.which(self.docker) is None:
            raise RuntimeError(f"{ENV_RUNTIME}=docker but no '{self.docker}' command is on PATH")
        found = subprocess.run([self.docker, "image", "inspect", self.image], capture_output=True, text=True)
        if found.returncode != 0:
            detail = (found.stderr.strip().splitlines() or ["no answer"])[-1]
            raise RuntimeError(
                f"{ENV_RUNTIME}=docker: image {self.image} not found ({detail}); "
                "build it with training_container/image/build.sh (docs/image.md)"
            )

    def command(
        self, job_name: str, job_root: Path, environment: Mapping[str, str], cpus: int | None
    ) -> list[str]:
        """The `docker run` of the job: its folder's parts under /opt/ml, the host's network (moto listens
        on 127.0.0.1), SageMaker's one argument. `cpus` limits the container's CPU time when
        the machine runs several trainings at once."""
        argv = [self.docker, "run", "--rm", "--name", self.container_name(job_name), "--network", "host"]
        for folder in ML_FOLDERS:
            argv += ["--volume", f"{(job_root / folder).resolve()}:{ML_ROOT}/{folder}"]
        if hasattr(os, "getuid") and os.getuid() != 0:  # the job folder stays its owner's
            argv += ["--user", f"{os.getuid()}:{os.getgid()}"]
        if cpus:
            argv += ["--cpus", str(cpus)]
        for name, value in environment.items():
            argv += ["--env", f"{name}={value}"]
        return [*argv, self.image, SAGEMAKER_ARGUMENT]

    def remove(self, job_name: str) -> None:
        """Remove a container left by an earlier run of the same job name (a killed stack)."""
        subprocess.run([self.docker, "rm", "--force", self.container_name(job_name)], capture_output=True)

    def signal(self, job_name: str, signal_name: str) -> None:
        """`docker kill --signal`: the container's PID 1 (the training) gets it, whatever the
        `docker run` client does; a container already gone is no error."""
        subprocess.run(
            [self.docker, "kill", "--signal", signal_name, self.container_name(job_name)], capture_output=True
        )
