"""SageMaker training without SageMaker: moto's training-job records driven by real processes.

moto records a training job and declares it `Completed` at once; nothing runs. `SageMakerRunner`
hooks moto's CreateTrainingJob (in the server process, where the job objects live) and runs the
training entry point as a subprocess under the SageMaker container contract
(`sagemaker_container`: a folder per job emulating `/opt/ml` with SageMaker's input config
files, the `SM_*` variables, the channels filled from their S3 URIs, the command the training
image's Dockerfile declares with SageMaker's `train` argument), plus the job's `Environment`;
or, with `OPENCOMPOSER_TRAINING_RUNTIME=docker`, runs the training image itself on that folder
as SageMaker does (`docker_runtime`). It
moves the job `InProgress` → `Completed` / `Failed` / `Stopped`, uploads `model.tar.gz` to
`<S3OutputPath>/<job>/output/`, and adds `StopTrainingJob`, which moto lacks (SIGTERM, then
SIGKILL after a grace period, as SageMaker does). Each job's output lands in
`<logs>/<training job name>.log`. One module because it is one life cycle: the hooks, the run
and its supervision share each job's state.

Several instances. A job's `ResourceConfig.InstanceCount` hosts run as that many processes,
`algo-1` … `algo-N`, each under the contract with its own folder, its name and the list of all
(`sagemaker_container`), the same channels (FullyReplicated) and hyperparameters, and its share
of the job's CPUs; they meet at 127.0.0.1 on a free port (`MASTER_ADDR`/`MASTER_PORT`), where
SageMaker's hosts resolve each other's names. The job completes when every host exits 0; when
one fails the others are stopped (they would wait for it in their next all-reduce) and the job
fails with the first failing host's reason; a stop reaches every host. The model, the output
data and the checkpoints are the leader's (`algo-1`): the training writes nothing elsewhere
(gan.distributed). Each host's output lands in its own log: `<job>.log` is the leader's,
`<job>.algo-2.log` the second host's. The process runtime only: the Docker runtime refuses a job
of several instances (its containers would need a network of their own).

Capacity. One machine is a small account: at most `max_trainings` trainings run at once (each
given its share of the CPUs as `SM_NUM_CPUS`, which the training sizes its threads to), and the
rest wait in the order they were created, `InProgress`/`Starting` as SageMaker shows a job
waiting for instances. While one waits its job item says so (`status_message`, shown by the API
while the job is STARTING); a stop ends a waiting job at once, without a process. Capacity
counts jobs, not hosts: a job's hosts share its slot's CPUs (`split_cpus`), since on one machine
more hosts bring no more cores, and counting them would only make a job wait longer for the
same cores (and one of more hosts than slots could never start).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow

from contracts import deployment, storage, training
from opencomposer.local.docker_runtime import DockerRuntime, runtime_from_env, sagemaker_environment
from opencomposer.local.processes import SIGKILL, die_with_parent, lower_priority, new_session, signal_group
from opencomposer.local.s3_files import download_prefix, upload_prefix, upload_tar
from opencomposer.local.sagemaker_container import (
    JobPaths,
    container_argv,
    container_environment,
    dockerfile_entrypoint,
    failure_reason,
    host_names,
    host_paths,
    process_entry_point,
    split_cpus,
    tail,
    write_input_config,
)

log = logging.getLogger(__name__)

_STDERR_TAIL_LINES = 15
_REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_PACKAGE_DIR = _REPO_ROOT / "training_container"
TRAINING_DOCKERFILE = TRAINING_PACKAGE_DIR / "Dockerfile"
# The image's entry point, read from its Dockerfile (`python -m gan.train`, run by this
# Python), with the training package on PYTHONPATH.
DEFAULT_ENTRY_POINT: tuple[str, ...] = tuple(
    process_entry_point(dockerfile_entrypoint(TRAINING_DOCKERFILE), sys.executable)
)
# What a waiting job's item says (`status_message`) until its training starts.
WAITING_FOR_CAPACITY = (
    "waiting for training capacity: {limit} training(s) at a time on this machine "
    "(OPENCOMPOSER_MAX_TRAININGS); it starts when those before it end"
)
# Where a local job's hosts meet (they are processes of this machine).
RENDEZVOUS_ADDRESS = "127.0.0.1"


def default_max_trainings(cpus: int) -> int:
    """One training per two CPUs, at least one: each gets two threads, where more trainings at
    once would only share the same cores more slowly (and answer the API more slowly too)."""
    return max(1, cpus // 2)


@dataclass
class _Run:
    name: str
    job: Any
    # every host's process, as each starts (the leader's first)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = "Stopped"
    thread: threading.Thread | None = None

    def running(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in list(self.processes) if process.poll() is None]


@dataclass
class _Launch:
    """One host's process to start: its command, environment, folder and log."""

    host: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path


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
        max_trainings: int = 1,
        cpus: int = 1,
        dynamodb_client_factory: Callable[[], Any] | None = None,
        runtime: str | None = None,
    ) -> None:
        self.jobs_dir = state_dir / "training"
        self.logs_dir = logs_dir
        self.endpoint_url = endpoint_url
        self.entry_point = list(entry_point)
        self.pythonpath = [str(p) for p in pythonpath]
        self.stop_grace_s = stop_grace_s
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._s3_factory = s3_client_factory or (lambda: self._default_client("s3"))
        self._dynamodb_factory = dynamodb_client_factory or (lambda: self._default_client("dynamodb"))
        self.max_trainings = max(1, max_trainings)
        self.cpus_each = max(1, cpus // self.max_trainings)
        self._capacity = threading.Condition()  # guards _waiting and _active
        self._waiting: deque[str] = deque()  # runs waiting for a slot, oldest first
        self._active = 0
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._originals: dict[str, Any] = {}
        # `process` (this machine's Python) or `docker` (the training image); OPENCOMPOSER_TRAINING_RUNTIME
        self.runtime = runtime or runtime_from_env()
        self.docker = DockerRuntime(scope=str(self.jobs_dir.resolve())) if self.runtime == "docker" else None

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
        with self._capacity:  # a job waiting for a slot ends now
            self._capacity.notify_all()
        for process in run.running():  # every host of the job
            self._signal(run, process, signal.SIGTERM)

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
                    for process in run.running():
                        self._signal(run, process, SIGKILL)
            if now >= deadline:
                return
            alive = [run.thread for run in runs if run.thread is not None and run.thread.is_alive()]
            if alive:
                alive[0].join(timeout=min(0.1, deadline - now))
            else:
                time.sleep(min(0.02, deadline - now))

    def warm(self) -> None:
        """Make the clients every job uses now (a client loads its service model: 0.5 s in a
        burst, under the lock the first jobs' threads then wait on)."""
        self._s3_factory()
        self._dynamodb_factory()

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The training processes, read without the lock (copying a dict's values is one step
        under the GIL), so a signal handler may call it whatever another thread holds."""
        return [process for run in list(self._runs.values()) for process in list(run.processes)]

    def log_path(self, training_job_name: str, host: str = "algo-1") -> Path:
        """Where a training job's output lands: the leader's (and a one-host job's) in
        `<job>.log`, another host's in `<job>.<host>.log`."""
        suffix = "" if host == "algo-1" else f".{host}"
        return self.logs_dir / f"{training_job_name}{suffix}.log"

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
        count = _instance_count(run.job)
        if count > 1 and self.docker is not None:
            raise _ClientError(
                f"ClientError: InstanceCount {count}: the local Docker runtime "
                "(OPENCOMPOSER_TRAINING_RUNTIME=docker) runs one container per job; train with "
                "several instances in the process runtime (the default) or with InstanceCount 1"
            )
        if not self._acquire(run):
            return "Stopped", run.stop_reason, None
        try:
            return self._train_in_slot(run)
        finally:
            with self._capacity:
                self._active -= 1
                self._capacity.notify_all()

    def _acquire(self, run: _Run) -> bool:
        """Wait, in creation order, for one of the `max_trainings` slots; False if the job was
        stopped while it waited. The note goes to the job item outside the lock (a network call)."""
        with self._capacity:
            self._waiting.append(run.name)
            waits = not self._may_start(run.name)
        if waits:
            message = WAITING_FOR_CAPACITY.format(limit=self.max_trainings)
            self._secondary(run.job, "Starting", message)
            self._note(run, message)
        with self._capacity:
            try:
                while not self._may_start(run.name):
                    if run.stop_requested.is_set():
                        return False
                    self._capacity.wait(timeout=5.0)  # a slot freed or a stop notifies; 5 s: a backstop
                self._active += 1
            finally:
                self._waiting.remove(run.name)
                self._capacity.notify_all()
        if waits:
            self._note(run, None)
        return True

    def _may_start(self, name: str) -> bool:
        """The oldest waiting, with a slot free (call with `_capacity` held)."""
        return self._waiting[0] == name and self._active < self.max_trainings

    def _note(self, run: _Run, message: str | None) -> None:
        """The job item's `status_message` set (or removed), best effort: a job deleted or moved
        on meanwhile keeps what it has, and a table that cannot be reached only loses the note."""
        environment = getattr(run.job, "environment", None) or {}
        table, job_id = environment.get(training.ENV_TABLE), environment.get(training.ENV_JOB_ID)
        if not table or not job_id:
            return
        key = {name: {"S": value} for name, value in storage.job_key(job_id).items()}
        try:
            if message is None:
                self._dynamodb_factory().update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression=f"REMOVE {storage.STATUS_MESSAGE}",
                    ConditionExpression=f"attribute_exists({storage.PARTITION_KEY})",
                )
            else:
                self._dynamodb_factory().update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression=f"SET {storage.STATUS_MESSAGE} = :m",
                    ConditionExpression="#s = :starting",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":m": {"S": message}, ":starting": {"S": "STARTING"}},
                )
        except Exception as e:  # noqa: BLE001 - the note is a courtesy, the training goes on
            log.info("training job %s: status note not written: %s", run.name, e)

    def _train_in_slot(self, run: _Run) -> tuple[str, str, str | None]:
        job = run.job
        hosts = host_names(_instance_count(job))
        every = host_paths(self.jobs_dir / run.name, hosts)
        paths = every[0]  # the leader's: the one whose model and checkpoints are the job's
        for host_folder in every:
            host_folder.create()
        s3 = self._s3_factory()

        self._secondary(job, "Downloading", "Downloading input data")
        channels = self._download_channels(s3, job, paths)
        checkpoint_uri = (job.checkpoint_config or {}).get("S3Uri")
        if checkpoint_uri:
            download_prefix(s3, checkpoint_uri, paths.checkpoints)
        # FullyReplicated channels: every host gets all of each; and every host the job's
        # checkpoints, as SageMaker gives them (gan.train checks the hosts resume alike).
        for other in every[1:]:
            for channel in channels:
                shutil.copytree(paths.channel(channel), other.channel(channel), dirs_exist_ok=True)
            shutil.copytree(paths.checkpoints, other.checkpoints, dirs_exist_ok=True)
        hyperparameters = {k: str(v) for k, v in (job.hyper_parameters or {}).items()}
        instance_type = (job.resource_config or {}).get("InstanceType", "ml.m5.large")
        for host, host_folder in zip(hosts, every, strict=True):
            write_input_config(host_folder, hyperparameters, channels, instance_type, host, hosts)

        if run.stop_requested.is_set():
            return "Stopped", run.stop_reason, None
        self._secondary(job, "Training", "Training image download completed. Training in progress.")
        rc, stderr_tail, failed = self._execute(run, hosts, every, channels, hyperparameters)

        if run.stop_requested.is_set():
            return "Stopped", run.stop_reason, None
        if rc != 0:
            named = hosts[failed] if len(hosts) > 1 else None
            return "Failed", "Failed", failure_reason(every[failed].failure_file, rc, stderr_tail, named)

        self._secondary(job, "Uploading", "Uploading generated training model")
        output_uri = job.output_data_config["S3OutputPath"].rstrip("/") + f"/{run.name}/output/"
        model_uri = output_uri + "model.tar.gz"
        upload_tar(s3, paths.model, model_uri)
        if any(paths.output_data.iterdir()):
            upload_tar(s3, paths.output_data, output_uri + "output.tar.gz")
        if checkpoint_uri:
            upload_prefix(s3, paths.checkpoints, checkpoint_uri)
        job.model_artifacts = {"S3ModelArtifacts": model_uri}
        return "Completed", "Completed", None

    def _execute(
        self,
        run: _Run,
        hosts: list[str],
        every: list[JobPaths],
        channels: list[str],
        hyperparameters: dict[str, str],
    ) -> tuple[int, list[str], int]:
        """Run every host; the exit code and last output of the host that decides how the job
        ended (the first to fail, else the leader), and its index."""
        job = run.job
        if self.docker is not None:
            rc, output = self._execute_in_image(run, every[0], self.docker)
            return rc, output, 0
        rendezvous = None
        if len(hosts) > 1:
            rendezvous = {"MASTER_ADDR": RENDEZVOUS_ADDRESS, "MASTER_PORT": str(_free_port())}
        launches = []
        for host, paths, cpus in zip(hosts, every, split_cpus(self.cpus_each, len(hosts)), strict=True):
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
                cpu_count=cpus,
                current_host=host,
                hosts=hosts,
                rendezvous=rendezvous,
            )
            argv = container_argv(self.entry_point)
            launches.append(_Launch(host, argv, env, paths.root, self.log_path(run.name, host)))
        return self._spawn(run, launches)

    def _execute_in_image(self, run: _Run, paths: JobPaths, docker: DockerRuntime) -> tuple[int, list[str]]:
        job = run.job
        docker.check()
        docker.remove(run.name)
        environment = sagemaker_environment(
            job_name=run.name,
            job_arn=job.arn,
            job_environment=getattr(job, "environment", None) or {},
            endpoint_url=self.endpoint_url,
        )
        # a CPU limit only where trainings share the machine (max_trainings > 1)
        cpus = self.cpus_each if self.max_trainings > 1 else None
        argv = docker.command(run.name, paths.root, environment, cpus)
        # the docker client gets this machine's environment (PATH, DOCKER_HOST), not the container
        rc, output, _ = self._spawn(run, [_Launch("algo-1", argv, dict(os.environ), paths.root,
                                                  self.log_path(run.name))])  # fmt: skip
        return rc, output

    def _spawn(self, run: _Run, launches: list[_Launch]) -> tuple[int, list[str], int]:
        """Start every host, supervise them together, and return how the deciding host ended
        (see `_execute`)."""
        job = run.job
        max_runtime = float((job.stopping_condition or {}).get("MaxRuntimeInSeconds") or 0)
        processes: list[subprocess.Popen[bytes]] = []
        with contextlib.ExitStack() as files:
            logs = []
            try:
                for index, launch in enumerate(launches):
                    launch.log_path.parent.mkdir(parents=True, exist_ok=True)
                    log_file = files.enter_context(open(launch.log_path, "ab"))  # noqa: SIM115
                    where = f" on {launch.host} ({index + 1} of {len(launches)})" if len(launches) > 1 else ""
                    log_file.write(f"Invoking{where}: {' '.join(launch.argv)}\n".encode())
                    log_file.flush()
                    process = subprocess.Popen(
                        launch.argv,
                        cwd=launch.cwd,
                        env=launch.env,
                        stdout=log_file,
                        stderr=log_file,
                        **new_session(),  # its own process group: stops reach its children too
                        preexec_fn=die_with_parent(),  # None but on Linux
                    )
                    lower_priority(process)
                    processes.append(process)
                    run.processes.append(process)
                    logs.append(log_file)
                    if run.stop_requested.is_set():  # a stop that raced the start
                        self._signal(run, process, signal.SIGTERM)
            except BaseException:  # a host that cannot start: the others must not wait for it
                for process in processes:
                    self._signal(run, process, SIGKILL)
                    process.wait()
                raise
            failed = self._supervise(run, processes, time.monotonic(), max_runtime)
            for process, log_file in zip(processes, logs, strict=True):
                log_file.write(f"Process exited with code {process.returncode}\n".encode())
        deciding = failed if failed is not None else 0
        output = tail(launches[deciding].log_path, _STDERR_TAIL_LINES)
        return processes[deciding].returncode, output, deciding

    def _supervise(
        self, run: _Run, processes: list[subprocess.Popen[bytes]], started: float, max_runtime: float
    ) -> int | None:
        """Wait for every host to end; return the index of the first one that failed (by when
        it ended: the others' failures are then its consequences), or None.

        A failed host ends the job: the others get SIGTERM, as on a stop, since they would
        wait for it in their next all-reduce (until the process group's timeout), and SIGKILL
        after the grace period. Each host is waited for by a thread of its own, which records
        when it ended: polling in turn could not tell which of two hosts ended first."""
        ended: dict[int, float] = {}
        changed = threading.Condition()

        def watch(index: int, process: subprocess.Popen[bytes]) -> None:
            process.wait()
            with changed:
                ended[index] = time.monotonic()
                changed.notify_all()

        for index, process in enumerate(processes):
            threading.Thread(target=watch, args=(index, process), daemon=True,
                             name=f"training-{run.name}-host-{index + 1}").start()  # fmt: skip
        stop_sent_at: float | None = None
        while True:
            with changed:
                if len(ended) == len(processes):
                    break
                changed.wait(timeout=0.2)
                failures = [i for i in ended if processes[i].returncode != 0]
            now = time.monotonic()
            if max_runtime and now - started > max_runtime and not run.stop_requested.is_set():
                self.stop(run.name, reason="MaxRuntimeExceeded")
            if failures and stop_sent_at is None:
                stop_sent_at = now
                for process in processes:
                    if process.returncode is None:
                        self._signal(run, process, signal.SIGTERM)
            if run.stop_requested.is_set():
                stop_sent_at = stop_sent_at or now
            if stop_sent_at is not None and now - stop_sent_at > self.stop_grace_s:
                for process in processes:
                    if process.returncode is None:
                        self._signal(run, process, SIGKILL)
        in_order = sorted((when, i) for i, when in ended.items() if processes[i].returncode != 0)
        return in_order[0][1] if in_order else None

    def _signal(self, run: _Run, process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
        """A training's signal: to its process group, or in the image to the container's PID 1
        (the `docker run` client would pass on a SIGTERM but dies of a SIGKILL alone)."""
        if self.docker is not None:
            self.docker.signal(run.name, signum.name)
        else:
            signal_group(process, signum)

    def _download_channels(self, s3: Any, job: Any, paths: JobPaths) -> list[str]:
        channels = []
        for channel in job.input_data_config or []:
            name = channel["ChannelName"]
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            target = paths.channel(name)
            target.mkdir(parents=True, exist_ok=True)
            uri = source.get("S3Uri")
            if uri and download_prefix(s3, uri, target) == 0:
                raise _ClientError(f"ClientError: no data found in channel '{name}' at {uri}")
            channels.append(name)
        return channels

    def _default_client(self, service: str) -> Any:
        """One client per service for every job's thread (botocore clients are thread-safe;
        making one loads its service model again, which a burst of jobs felt)."""
        import boto3

        with self._clients_lock:  # boto3's default session is not safe to share between threads
            client = self._clients.get(service)
            if client is None:
                client = self._clients[service] = boto3.session.Session().client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=os.environ.get("AWS_DEFAULT_REGION", deployment.LOCAL_REGION),
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
            return client

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


def _instance_count(job: Any) -> int:
    return max(1, int((job.resource_config or {}).get("InstanceCount") or 1))


def _free_port() -> int:
    """A port free now on the rendezvous address, for the leader's process group to listen on."""
    with socket.socket() as s:
        s.bind((RENDEZVOUS_ADDRESS, 0))
        return int(s.getsockname()[1])


class _ClientError(Exception):
    """A problem with the job's request (SageMaker's `ClientError:` failure reasons)."""
