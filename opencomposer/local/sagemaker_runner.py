"""SageMaker training without SageMaker: moto's training-job records driven by real processes.

moto records a training job and declares it `Completed` at once; nothing runs. `SageMakerRunner`
hooks moto's CreateTrainingJob (in the server process, where the job objects live) and runs the
training entry point as a subprocess under the SageMaker container contract: a folder per job
emulating `/opt/ml` (`SM_MODEL_DIR`, `SM_CHANNEL_<NAME>` filled from the channel's S3 URI,
`SM_OUTPUT_DATA_DIR`, `hyperparameters.json`, `SM_HPS` and the training toolkit's
`--name value` flags: `container_environment`, `container_argv`), plus the job's `Environment`.
It moves the job `InProgress` →
`Completed` / `Failed` / `Stopped`, uploads `model.tar.gz` to `<S3OutputPath>/<job>/output/`,
and adds `StopTrainingJob`, which moto lacks (SIGTERM, then SIGKILL after a grace period, as
SageMaker does). Each job's output lands in `<logs>/<training job name>.log`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moto.core.utils import utcnow

from contracts import deployment, training

log = logging.getLogger(__name__)

_STDERR_TAIL_LINES = 15
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
_REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_PACKAGE_DIR = _REPO_ROOT / "training_container"
# The image's entry point: `python -m gan.train` with the training package on PYTHONPATH.
DEFAULT_ENTRY_POINT: tuple[str, ...] = (sys.executable, "-m", "gan.train")


@dataclass
class _Run:
    name: str
    job: Any
    process: subprocess.Popen[bytes] | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = "Stopped"
    thread: threading.Thread | None = None


class SageMakerRunner:
    def __init__(
        self,
        state_dir: Path,
        logs_dir: Path,
        endpoint_url: str,
        entry_point: Sequence[str] = DEFAULT_ENTRY_POINT,
        pythonpath: Sequence[Path] = (TRAINING_PACKAGE_DIR,),
        stop_grace_s: float = 10.0,
        s3_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.jobs_dir = state_dir / "training"
        self.logs_dir = logs_dir
        self.endpoint_url = endpoint_url
        self.entry_point = list(entry_point)
        self.pythonpath = [str(p) for p in pythonpath]
        self.stop_grace_s = stop_grace_s
        self._s3_factory = s3_client_factory or self._default_s3
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._originals: dict[str, Any] = {}

    # --- moto hooks ---------------------------------------------------------------------------
    def install(self) -> None:
        from moto.core.responses import EmptyResult
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.responses import SageMakerResponse

        runner = self
        original_create = SageMakerResponse.create_training_job
        self._originals = {"create_training_job": original_create}

        def create_training_job(response: Any) -> Any:
            result = original_create(response)
            name = response._get_param("TrainingJobName")
            job = response.sagemaker_backend.training_jobs[name]
            # moto drops Environment; the container needs it (table, bucket, job id).
            job.environment = response._get_param("Environment") or {}
            runner.start(job)
            return result

        def stop_training_job(response: Any) -> Any:
            name = response._get_param("TrainingJobName")
            job = response.sagemaker_backend.training_jobs.get(name)
            if job is None:
                raise ValidationError(message=f"Could not find training job '{name}'.")
            if job.training_job_status != "InProgress":
                raise ValidationError(
                    message=f"The request was rejected because the training job is in status "
                    f"{job.training_job_status}."
                )
            runner.stop(name)
            return EmptyResult()

        SageMakerResponse.create_training_job = create_training_job  # type: ignore[method-assign,assignment]
        SageMakerResponse.stop_training_job = stop_training_job  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        from moto.sagemaker.responses import SageMakerResponse

        self.stop_all()
        if self._originals:
            SageMakerResponse.create_training_job = self._originals["create_training_job"]  # type: ignore[method-assign]
            del SageMakerResponse.stop_training_job  # type: ignore[attr-defined]
            self._originals = {}

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, job: Any) -> None:
        now = utcnow()
        job.training_job_status = "InProgress"
        job.training_start_time = now
        job.training_end_time = None
        job.model_artifacts = None
        job.final_metric_data_list = None
        job.failure_reason = None
        job.secondary_status_transitions = []
        self._secondary(job, "Starting", "Launching the training process")
        run = _Run(name=job.training_job_name, job=job)
        run.thread = threading.Thread(target=self._run, args=(run,), daemon=True, name=f"training-{run.name}")
        with self._lock:
            self._runs[run.name] = run
        run.thread.start()

    def stop(self, name: str, reason: str = "Stopped") -> None:
        """StopTrainingJob: the process gets SIGTERM, then SIGKILL after the grace period."""
        with self._lock:
            run = self._runs.get(name)
        if run is None or run.stop_requested.is_set():
            return
        run.stop_reason = reason
        run.job.training_job_status = "Stopping"
        self._secondary(run.job, "Stopping", "Stopping the training job")
        run.stop_requested.set()
        process = run.process
        if process is not None and process.poll() is None:
            signal_group(process, signal.SIGTERM)

    def stop_all(self, timeout_s: float | None = None) -> None:
        """Stop every training, those that start meanwhile too, within one deadline (`timeout_s`,
        by default the grace period plus 5 s), however many there are: SIGTERM to all at once,
        SIGKILL to the process groups still running when the grace period ends or the deadline
        nears; returns once none runs, or at the deadline."""
        total = self.stop_grace_s + 5 if timeout_s is None else max(0.0, timeout_s)
        now = time.monotonic()
        deadline = now + total
        kill_at = min(now + self.stop_grace_s, deadline - min(2.0, total / 4))
        while True:
            with self._lock:
                runs = list(self._runs.values())
            if not runs:
                return
            for run in runs:
                self.stop(run.name)
            now = time.monotonic()
            if now >= kill_at:
                for run in runs:
                    if run.process is not None and run.process.poll() is None:
                        signal_group(run.process, signal.SIGKILL)
            if now >= deadline:
                return
            alive = [run.thread for run in runs if run.thread is not None and run.thread.is_alive()]
            if alive:
                alive[0].join(timeout=min(0.1, deadline - now))
            else:
                time.sleep(min(0.02, deadline - now))

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The training processes, read without the lock (copying a dict's values is one step
        under the GIL), so a signal handler may call it whatever another thread holds."""
        return [run.process for run in list(self._runs.values()) if run.process is not None]

    def log_path(self, training_job_name: str) -> Path:
        """Where a training job's output lands."""
        return self.logs_dir / f"{training_job_name}.log"

    def wait(self, name: str, timeout: float | None = None) -> None:
        with self._lock:
            run = self._runs.get(name)
        if run is not None and run.thread is not None:
            run.thread.join(timeout)

    # --- one job ----------------------------------------------------------------------------------
    def _run(self, run: _Run) -> None:
        job = run.job
        status, secondary = "Failed", "Failed"
        reason: str | None = "InternalServerError: the local runner failed"
        try:
            status, secondary, reason = self._train(run)
        except _ClientError as e:
            reason = str(e)
        except Exception as e:  # noqa: BLE001 - a job must never stay InProgress
            log.exception("training job %s: local runner error", run.name)
            reason = f"InternalServerError: local SageMaker runner: {type(e).__name__}: {e}"
        finally:
            job.training_job_status = status
            job.failure_reason = reason[: training.FAILURE_REASON_MAX] if reason else None
            job.training_end_time = utcnow()
            job.last_modified_time = job.training_end_time
            self._secondary(job, secondary, reason or "Training job completed")
            with self._lock:
                self._runs.pop(run.name, None)

    def _train(self, run: _Run) -> tuple[str, str, str | None]:
        job = run.job
        paths = JobPaths(self.jobs_dir / run.name)
        paths.create()
        s3 = self._s3_factory()

        self._secondary(job, "Downloading", "Downloading input data")
        channels = self._download_channels(s3, job, paths)
        checkpoint_uri = (job.checkpoint_config or {}).get("S3Uri")
        if checkpoint_uri:
            _download_prefix(s3, checkpoint_uri, paths.checkpoints)
        hyperparameters = {k: str(v) for k, v in (job.hyper_parameters or {}).items()}
        (paths.input_config / "hyperparameters.json").write_text(json.dumps(hyperparameters))

        if run.stop_requested.is_set():
            return "Stopped", run.stop_reason, None
        self._secondary(job, "Training", "Training image download completed. Training in progress.")
        rc, stderr_tail = self._execute(run, paths, channels, hyperparameters)

        if run.stop_requested.is_set():
            return "Stopped", run.stop_reason, None
        if rc != 0:
            return "Failed", "Failed", _failure_reason(paths.failure_file, rc, stderr_tail)

        self._secondary(job, "Uploading", "Uploading generated training model")
        output_uri = job.output_data_config["S3OutputPath"].rstrip("/") + f"/{run.name}/output/"
        model_uri = output_uri + "model.tar.gz"
        _upload_tar(s3, paths.model, model_uri)
        if any(paths.output_data.iterdir()):
            _upload_tar(s3, paths.output_data, output_uri + "output.tar.gz")
        if checkpoint_uri:
            _upload_prefix(s3, paths.checkpoints, checkpoint_uri)
        job.model_artifacts = {"S3ModelArtifacts": model_uri}
        return "Completed", "Completed", None

    def _execute(
        self, run: _Run, paths: JobPaths, channels: list[str], hyperparameters: dict[str, str]
    ) -> tuple[int, list[str]]:
        job = run.job
        env = container_environment(
            job_name=run.name,
            job_arn=job.arn,
            paths=paths,
            channels=channels,
            hyperparameters=hyperparameters,
            job_environment=getattr(job, "environment", None) or {},
            endpoint_url=self.endpoint_url,
            python_path=self.pythonpath,
            host_environ=os.environ,
            cpu_count=os.cpu_count() or 1,
        )
        argv = container_argv(self.entry_point, hyperparameters)

        max_runtime = float((job.stopping_condition or {}).get("MaxRuntimeInSeconds") or 0)
        log_path = self.log_path(run.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            log_file.write(f"Invoking: {' '.join(argv)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                argv,
                cwd=paths.root,
                env=env,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # its own process group: stops reach its children too
                preexec_fn=_die_with_parent(),
            )
            run.process = process
            if run.stop_requested.is_set():  # a stop that raced the start
                signal_group(process, signal.SIGTERM)
            started = time.monotonic()
            self._supervise(run, process, started, max_runtime)
            log_file.write(f"Process exited with code {process.returncode}\n".encode())
        return process.returncode, _tail(log_path, _STDERR_TAIL_LINES)

    def _supervise(
        self, run: _Run, process: subprocess.Popen[bytes], started: float, max_runtime: float
    ) -> None:
        stop_sent_at: float | None = None
        while process.poll() is None:
            now = time.monotonic()
            if max_runtime and now - started > max_runtime and not run.stop_requested.is_set():
                self.stop(run.name, reason="MaxRuntimeExceeded")
            if run.stop_requested.is_set():
                stop_sent_at = stop_sent_at or now
                if now - stop_sent_at > self.stop_grace_s:
                    signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.2)

    def _download_channels(self, s3: Any, job: Any, paths: JobPaths) -> list[str]:
        channels = []
        for channel in job.input_data_config or []:
            name = channel["ChannelName"]
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            target = paths.channel(name)
            target.mkdir(parents=True, exist_ok=True)
            uri = source.get("S3Uri")
            if uri and _download_prefix(s3, uri, target) == 0:
                raise _ClientError(f"ClientError: no data found in channel '{name}' at {uri}")
            channels.append(name)
        return channels

    def _default_s3(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", deployment.LOCAL_REGION),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @staticmethod
    def _secondary(job: Any, status: str, message: str) -> None:
        now = utcnow()
        transitions = job.secondary_status_transitions or []
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job.secondary_status_transitions = transitions
        job.secondary_status = status
        job.last_modified_time = now


class _ClientError(Exception):
    """A problem with the job's request (SageMaker's `ClientError:` failure reasons)."""


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
    """
    region = job_arn.split(":")[3]
    env = {name: host_environ[name] for name in _INHERITED_ENV if name in host_environ}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
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


def _failure_reason(failure_file: Path, rc: int, stderr_tail: list[str]) -> str:
    if failure_file.exists() and failure_file.read_text().strip():
        return "AlgorithmError: " + failure_file.read_text().strip()
    detail = "\n".join(stderr_tail).strip() or "no output"
    return f"AlgorithmError: the training process exited with code {rc}:\n{detail}"


def _tail(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 16384))
        text = f.read().decode(errors="replace")
    # the runner's own closing line is not the training's output
    return [line for line in text.splitlines() if not line.startswith("Process exited with code")][-lines:]


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: the `preexec_fn` that makes the kernel SIGTERM the training when the thread that
    starts it dies, so no training outlives its stack, even one killed by SIGKILL: that thread
    supervises the training until it exits. Elsewhere None: stopping the stack stops them.

    Called in the parent, before the fork: `preexec_fn` runs in the child of a threaded process,
    where loading a library (`dlopen` takes the loader's lock, which another thread may have
    held at the fork) or importing could hang. So the child only makes one foreign call and one
    system call; if the stack died between the fork and the prctl, no signal will come, so
    the child ends itself.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        if os.getppid() != parent:
            os._exit(128 + signal.SIGTERM)

    return preexec


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """The whole process group (trainings and Lambda workers each lead a session of their own:
    the entry point may have started workers of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, sig)
        elif process.poll() is None:  # no process groups (Windows): the process itself
            process.send_signal(sig)


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _download_prefix(s3: Any, uri: str, target: Path) -> int:
    """S3Prefix semantics: every object under the prefix, keeping the path below it."""
    bucket, prefix = _split_s3(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(destination))
            count += 1
    return count


def _upload_prefix(s3: Any, source: Path, uri: str) -> None:
    bucket, prefix = _split_s3(uri)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        key = prefix.rstrip("/") + "/" + path.relative_to(source).as_posix()
        s3.upload_file(str(path), bucket, key.lstrip("/"))


def _upload_tar(s3: Any, source: Path, uri: str) -> None:
    archive = source.parent / (Path(urlparse(uri).path).name)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    bucket, key = _split_s3(uri)
    s3.upload_file(str(archive), bucket, key)
