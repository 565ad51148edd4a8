"""What a SageMaker training container sees, built for a local process: its `/opt/ml` folders,
its environment and command line, and how its failure reads (SageMaker's FailureReason).

A job of several instances is several hosts, `algo-1` … `algo-N` (SageMaker's names), each with
its own `/opt/ml` and the same channels and hyperparameters, told who it is and who the others
are (`resourceconfig.json`, `SM_CURRENT_HOST`, `SM_HOSTS`).

Pure functions of the job, so a test can check the contract without running anything.
"""

from __future__ import annotations

import json
import os
import signal
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
    "OPENCOMPOSER_RECORD_AWS_CALLS",  # the IAM check's record of AWS calls (gan.aws_calls)
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
    current_host: str = "algo-1",
    hosts: Sequence[str] = ("algo-1",),
    rendezvous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The training process's environment, as a SageMaker training container sees it.

    Only `_INHERITED_ENV` of the host; fake credentials and moto's endpoint for the AWS SDK; the
    training toolkit's `SM_*` variables, with one `SM_CHANNEL_<NAME>` per input channel and one
    `SM_HP_<NAME>` per hyperparameter; and the job's `Environment` last, over all of them.

    No region: SageMaker sets no AWS_REGION or AWS_DEFAULT_REGION in a training container, so
    here too the region reaches the process only through the job's `Environment`
    (contracts.training.REGION_ENVIRONMENT), and a job created without it fails here as on AWS.

    `rendezvous` (MASTER_ADDR, MASTER_PORT): where the hosts of a job of several instances meet.
    On SageMaker the hosts are machines whose names (`algo-1`) resolve in the cluster, and
    gan.distributed meets at the first one's name; here they are processes of one machine, whose
    names resolve nowhere, so they meet at 127.0.0.1 on a free port, as torchrun's do.
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
            "SM_CURRENT_HOST": current_host,
            "SM_HOSTS": json.dumps(list(hosts)),
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(cpu_count),
        }
    )
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(paths.channel(channel))
    for name, value in hyperparameters.items():
        env[f"SM_HP_{name.upper()}"] = value
    env.update(rendezvous or {})
    env.update({name: str(value) for name, value in job_environment.items()})
    return env


def host_names(instance_count: int) -> list[str]:
    """SageMaker's names for a job's instances: `algo-1` … `algo-N`; the first is the leader."""
    return [f"algo-{i + 1}" for i in range(max(1, instance_count))]


def split_cpus(cpus: int, hosts: int) -> list[int]:
    """A job's CPUs shared among its hosts, the remainder to the first ones, each at least one
    (more hosts than CPUs then share cores: slower, still correct)."""
    each, extra = divmod(max(1, cpus), max(1, hosts))
    return [max(1, each + (1 if i < extra else 0)) for i in range(max(1, hosts))]


def host_paths(job_root: Path, hosts: Sequence[str]) -> list[JobPaths]:
    """Each host's `/opt/ml`: a job of one host has the job's folder (as before several could
    run); with several, each host its own folder under it, as each instance has its own disk."""
    if len(hosts) == 1:
        return [JobPaths(job_root)]
    return [JobPaths(job_root / host) for host in hosts]


# SageMaker's one argument to a training image: `docker run <image> train`.
SAGEMAKER_ARGUMENT = "train"


def container_argv(entry_point: Sequence[str]) -> list[str]:
    """The image's entry point with SageMaker's argument: hyperparameters reach the training
    only through /opt/ml/input/config/hyperparameters.json (and the toolkit's SM_HPS), as on
    SageMaker, never as flags."""
    return [*entry_point, SAGEMAKER_ARGUMENT]


def dockerfile_entrypoint(dockerfile: Path) -> list[str]:
    """The exec-form ENTRYPOINT a Dockerfile declares (the last one, as Docker takes it), so the
    process runtime runs the command the image runs, not a copy of it. A shell-form or missing
    ENTRYPOINT is an error: the image must be started in exec form (SIGTERM reaches Python)."""
    entrypoint: list[str] | None = None
    for instruction in _instructions(dockerfile.read_text()):
        keyword, _, arguments = instruction.partition(" ")
        if keyword.upper() != "ENTRYPOINT":
            continue
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not parsed or not all(isinstance(a, str) for a in parsed):
            raise ValueError(
                f"{dockerfile}: ENTRYPOINT must be exec form, a JSON list of strings: {arguments}"
            )
        entrypoint = parsed
    if entrypoint is None:
        raise ValueError(f"{dockerfile} declares no ENTRYPOINT")
    return entrypoint


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments and blank lines dropped."""
    instructions: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        instructions.append((current + line).strip())
        current = ""
    if current:
        instructions.append(current.strip())
    return instructions


def process_entry_point(entrypoint: Sequence[str], python: str) -> list[str]:
    """The image's entry point for a process on this machine: its `python` is this one."""
    head, *rest = entrypoint
    return [python if head in ("python", "python3") else head, *rest]


def write_input_config(
    paths: JobPaths,
    hyperparameters: Mapping[str, str],
    channels: Sequence[str],
    instance_type: str,
    current_host: str = "algo-1",
    hosts: Sequence[str] = ("algo-1",),
) -> None:
    """SageMaker's three files under /opt/ml/input/config (its documented layout for a job in
    File mode, each channel FullyReplicated: every host gets all of it), which the image's entry
    point reads."""
    files = {
        "hyperparameters.json": dict(hyperparameters),
        "inputdataconfig.json": {
            name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                   "RecordWrapperType": "None"}
            for name in channels
        },
        "resourceconfig.json": {
            "current_host": current_host,
            "hosts": list(hosts),
            "current_group_name": "homogeneousCluster",
            "current_instance_type": instance_type,
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": instance_type,
                    "hosts": list(hosts),
                }
            ],
            "network_interface_name": "eth0",
        },
    }
    paths.input_config.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (paths.input_config / name).write_text(json.dumps(content))


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


def failure_reason(failure_file: Path, rc: int, stderr_tail: list[str], host: str | None = None) -> str:
    """SageMaker's FailureReason for a training that exited `rc`: its failure file, else how it
    ended and its last output. `host`: which of a job's several hosts failed, named first."""
    prefix = f"AlgorithmError: host {host}: " if host else "AlgorithmError: "
    if failure_file.exists() and failure_file.read_text().strip():
        return prefix + failure_file.read_text().strip()
    detail = "\n".join(stderr_tail).strip() or "no output"
    killed = _killed_by(rc)
    if killed:
        # Nothing of the training's own could say why: it was ended from outside.
        return (
            f"{prefix}the training process was killed by {killed} (exit code {rc}), by "
            f"something outside it (out of memory, or a kill); submit the job again. "
            f"Its last output:\n{detail}"
        )
    return f"{prefix}the training process exited with code {rc}:\n{detail}"


def _killed_by(rc: int) -> str | None:
    """The signal's name when `rc` says a signal ended the process: negative from Popen, or
    128 + the signal from a shell or a container (137 for SIGKILL)."""
    number = -rc if rc < 0 else rc - 128 if 128 < rc < 160 else 0
    if not number:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def tail(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 16384))
        text = f.read().decode(errors="replace")
    # the runner's own closing line is not the training's output
    return [line for line in text.splitlines() if not line.startswith("Process exited with code")][-lines:]
