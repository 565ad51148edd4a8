"""Start and stop the whole local stack in this process.

moto's server on 127.0.0.1 (an ephemeral port) with Step Functions execution on, the resources
of `resources.py`, and the pieces moto lacks: the Lambda runtime with asynchronous stream
delivery, the SageMaker runner, the state machine's `createTrainingJob.sync` integration, and
the HTTP front door. One module because start and stop are one sequence read in both
directions: each piece is stopped, within one deadline, in the reverse of the order it started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import deployment, functions, statuses, storage
from contracts.timestamps import utc_timestamp
from gan.cpus import usable_cpus
from opencomposer.local import aws_calls
from opencomposer.local.execution_events import ExecutionEvents
from opencomposer.local.front_door import FrontDoor
from opencomposer.local.processes import SIGKILL, signal_group
from opencomposer.local.resources import CreatedResources, LocalNames, create_all
from opencomposer.local.runtime import LambdaRuntime, concurrency_from_env
from opencomposer.local.s3_events import S3EventDelivery, end_interrupted_builds
from opencomposer.local.sagemaker_runner import DEFAULT_ENTRY_POINT, SageMakerRunner, default_max_trainings
from opencomposer.local.snapshot import Saver, Snapshot, end_interrupted
from opencomposer.local.stream_delivery import StreamDelivery

log = logging.getLogger(__name__)

ENV_HOME = "OPENCOMPOSER_HOME"
STATE_DIR_NAME = ".opencomposer"
# The process environment the stack sets while it runs: moto's Step Functions interpreter
# makes its own boto3 clients, which call http://localhost:$MOTO_PORT with these credentials.
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": deployment.LOCAL_REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
_REMOVED_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL")


def state_dir() -> Path:
    return Path(os.environ.get(ENV_HOME) or Path.cwd() / STATE_DIR_NAME)


def api_port() -> int:
    return int(os.environ.get(deployment.ENV_LOCAL_PORT) or deployment.DEFAULT_LOCAL_PORT)


ENV_MAX_TRAININGS = "OPENCOMPOSER_MAX_TRAININGS"


def max_trainings() -> int:
    """Trainings at once: $OPENCOMPOSER_MAX_TRAININGS, else one per two usable CPUs."""
    raw = os.environ.get(ENV_MAX_TRAININGS, "").strip()
    if not raw:
        return default_max_trainings(usable_cpus())
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV_MAX_TRAININGS} must be a whole number of trainings, 1 or more (not {raw!r})")
    return int(raw)


ENV_INSTANCE_COUNT = "OPENCOMPOSER_INSTANCE_COUNT"
# The CDK stack's InstanceCount parameter allows 1 to 20 (infra/components/training.py).
MAX_INSTANCE_COUNT = 20


def instance_count() -> int:
    """Hosts per training job (the stack's InstanceCount): $OPENCOMPOSER_INSTANCE_COUNT, else 1."""
    raw = os.environ.get(ENV_INSTANCE_COUNT, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INSTANCE_COUNT:
        raise ValueError(
            f"{ENV_INSTANCE_COUNT} must be a whole number of instances "
            f"from 1 to {MAX_INSTANCE_COUNT} (not {raw!r})"
        )
    return int(raw)


@dataclass
class LocalStackOptions:
    home: Path | None = None
    port: int | None = None  # front door; 0 = any free port
    training_entry_point: Sequence[str] = DEFAULT_ENTRY_POINT
    stop_grace_s: float = 10.0
    names: LocalNames = LocalNames()
    max_trainings: int | None = None  # trainings at once; None: `max_trainings()`
    # hosts per training job, the stack's InstanceCount; None: `instance_count()`
    instance_count: int | None = None
    # keep the jobs table and the bucket in <home>/snapshot across restarts (`snapshot.py`)
    persist: bool = False


class LocalStack:
    def __init__(self, options: LocalStackOptions | None = None) -> None:
        self.options = options or LocalStackOptions()
        self.home = Path(self.options.home or state_dir()).resolve()
        self.logs_dir = self.home / "logs"
        self.names = self.options.names
        self.moto_url = ""
        self.resources: CreatedResources | None = None
        self.runtime: LambdaRuntime | None = None
        self.delivery: StreamDelivery | None = None
        self.s3_events: S3EventDelivery | None = None  # dataset uploads → the datasets function
        self.runner: SageMakerRunner | None = None
        self.front_door: FrontDoor | None = None
        self.execution_events: ExecutionEvents | None = None  # EventBridge's, for the finaliser
        self._moto: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._sync_integration: Any = None
        self._calls: aws_calls.Recorder | None = None
        self._moto_log: logging.Handler | None = None
        self.snapshot: Snapshot | None = None
        if self.options.persist:
            self.snapshot = Snapshot(self.home / "snapshot", self.names.table, self.names.bucket)
        self._saver: Saver | None = None
        self.restored: dict[str, int] = {}  # what the start found in the snapshot
        self.instance_count = 1  # hosts per training job, once started

    @property
    def api_url(self) -> str:
        assert self.front_door is not None, "start() first"
        return self.front_door.url

    def client(self, service: str) -> Any:
        """A boto3 client of the local AWS (fake credentials, moto's endpoint)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.names.region
        ).client(service, endpoint_url=self.moto_url)

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        # a bad setting fails here, before anything has started
        self.instance_count = self.options.instance_count or instance_count()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        # moto's server logs every request it serves, and its Step Functions interpreter dumps
        # whole state trees on errors: both go to a file, not the user's terminal.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto_log = logging.FileHandler(self.logs_dir / "moto.log")
        self._moto_log.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        moto_logger = logging.getLogger("moto")
        moto_logger.addHandler(self._moto_log)
        moto_logger.propagate = False
        try:
            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.moto_url = f"http://{host}:{port}"
            self._set_env({**_FAKE_ENV, "MOTO_PORT": str(port)})
            self._configure_moto({"stepfunctions": {"execute_state_machine": True}})

            self.runtime = LambdaRuntime(
                self.home, self.logs_dir, self.moto_url, concurrency=concurrency_from_env()
            )
            self.runtime.install()
            # requests first: a stream batch waits (at most 1 s) while the front door serves
            self.delivery = StreamDelivery(busy=self._serving)
            self.delivery.install()
            self.s3_events = S3EventDelivery()
            self.s3_events.install()
            self.runner = SageMakerRunner(
                self.home,
                self.logs_dir,
                self.moto_url,
                entry_point=self.options.training_entry_point,
                stop_grace_s=self.options.stop_grace_s,
                max_trainings=self.options.max_trainings or max_trainings(),
                cpus=usable_cpus(),
            )
            self.runner.install()
            self._install_sync_integration()
            # The IAM check's record of the state machine's calls (off unless asked: aws_calls.py).
            self._calls = aws_calls.install_for_state_machine()

            import boto3

            session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
            self.resources = create_all(
                session,
                self.moto_url,
                self.names,
                before_mapping=self._restore if self.snapshot else None,
                instance_count=self.instance_count,
            )
            if self.snapshot is not None:
                dynamodb, s3 = self.client("dynamodb"), self.client("s3")
                self._saver = Saver(self.snapshot, lambda: (dynamodb, s3))
                self._saver.start()
            self._prewarm()
            from opencomposer.local import stepfunctions_speed

            stepfunctions_speed.warm(self.names.region)
            self.execution_events = ExecutionEvents(self.client, self.resources.state_machine_arn,
                                                    self.names.function_name(functions.FINALISER.key))
            self.execution_events.start()

            from botocore.config import Config

            lambda_client = session.client(
                "lambda",
                endpoint_url=self.moto_url,
                region_name=self.names.region,
                config=Config(read_timeout=120, retries={"max_attempts": 1}, max_pool_connections=32),
            )
            port_wanted = self.options.port if self.options.port is not None else api_port()
            served = {spec.key: self.names.function_name(spec.key) for spec in functions.FUNCTIONS}
            self.front_door = FrontDoor(lambda_client, served, port=port_wanted)
            self.front_door.start()
        except BaseException:
            self.stop()
            raise
        return self

    # What a stop under way still has to end: `kill_processes` finds them there too.
    _stopping: tuple[Any, ...] = ()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop everything, in reverse order, within one deadline (`timeout_s`; by default the
        trainings' grace period plus 15 s), however many trainings run or wait.

        Running trainings get SIGTERM (their jobs end Stopped), and SIGKILL at the end of their
        grace period or when the deadline nears; their executions get what is left to record how
        they ended. Whatever the stack started and still runs at the end is killed.
        """
        budget = self.options.stop_grace_s + 15 if timeout_s is None else max(0.0, timeout_s)
        deadline = time.monotonic() + budget
        # The workers too: the runtime forgets them as it closes them.
        self._stopping = (*self._stopping, self.runner, self.runtime, *self._processes())
        try:
            if self.front_door is not None:
                self.front_door.stop()
                self.front_door = None
            if self.runner is not None:
                self._request_stops()
                # the trainings first, leaving time for the rest of the stop
                self.runner.stop_all(timeout_s=_time_left(deadline, _STOP_RESERVE_S))
                self.runner.uninstall()
                self.runner = None
                self._drain_executions(timeout_s=_time_left(deadline, _STOP_RESERVE_S))
            if self._saver is not None:
                # the last snapshot: after the trainings' jobs recorded how they ended
                self._saver.stop()
                self._saver = None
                if self.snapshot is not None and _time_left(deadline) > 2:
                    with contextlib.suppress(Exception):  # the periodic one stays, at worst
                        self.snapshot.save(self.client("dynamodb"), self.client("s3"))
            if self.execution_events is not None:  # before the runtime its finaliser runs in
                self.execution_events.stop()
                self.execution_events = None
            if self.delivery is not None:
                self.delivery.uninstall()
                self.delivery = None
            if self.s3_events is not None:
                self.s3_events.uninstall(timeout_s=min(5.0, _time_left(deadline)))
                self.s3_events = None
            if self.runtime is not None:
                self.runtime.uninstall()
                self.runtime = None
            self._uninstall_sync_integration()
            if self._calls is not None:
                self._calls.close()
                self._calls = None
            if self._moto is not None:
                # moto's backends are process-wide: leave nothing behind for the next stack.
                if _time_left(deadline) > 1:
                    with contextlib.suppress(OSError):
                        self._post_moto("/moto-api/reset", {})
                self._moto.stop()
                self._moto = None
            self._restore_env()
            if self._moto_log is not None:
                moto_logger = logging.getLogger("moto")
                moto_logger.removeHandler(self._moto_log)
                moto_logger.propagate = True
                self._moto_log.close()
                self._moto_log = None
        finally:
            self.kill_processes()
            self._stopping = ()

    def kill_processes(self) -> None:
        """SIGKILL every training (its process group) and Lambda worker of this stack now.

        Takes no lock, so a signal handler or a watchdog may call it while another thread (or
        the thread it interrupted) holds one: it only reads what is running and signals it.
        """
        for process in self._processes():
            signal_group(process, SIGKILL)

    def _processes(self) -> list[subprocess.Popen[bytes]]:
        """The trainings and Lambda workers still running, read without a lock (a copy of a
        dict's values is one step under the GIL)."""
        found: list[subprocess.Popen[bytes]] = []
        for source in (self.runner, self.runtime, *self._stopping):
            with contextlib.suppress(RuntimeError):  # a dict that changed under a copy: skip it
                if isinstance(source, subprocess.Popen):
                    found.append(source)
                elif isinstance(source, SageMakerRunner | LambdaRuntime):
                    found += source.processes()
        return [process for process in found if process.returncode is None]

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- pieces -----------------------------------------------------------------------------------
    def _install_sync_integration(self) -> None:
        """`sagemaker:createTrainingJob.sync` for moto's interpreter, the interpreter's and the
        server's speed-ups, and DynamoDB safe under concurrent requests (their own modules)."""
        from opencomposer.local import (
            dynamodb_transactions,
            moto_server_speed,
            stepfunctions_sagemaker,
            stepfunctions_speed,
        )

        self._sync_integration = stepfunctions_sagemaker
        stepfunctions_sagemaker.install()
        stepfunctions_speed.install()  # after: it also shares the integration's clients
        dynamodb_transactions.install()
        moto_server_speed.install()

    def _uninstall_sync_integration(self) -> None:
        if self._sync_integration is not None:
            from opencomposer.local import dynamodb_transactions, moto_server_speed, stepfunctions_speed

            moto_server_speed.uninstall()
            dynamodb_transactions.uninstall()
            stepfunctions_speed.uninstall()
            self._sync_integration.uninstall()
            self._sync_integration = None

    def _drain_executions(self, timeout_s: float = 10.0) -> None:
        """Let executions record how their (now stopped) trainings ended before moto goes away."""
        if self.resources is None:
            return
        stepfunctions = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(Exception):  # best effort: the stack is going away regardless
            while time.monotonic() < deadline:
                running = stepfunctions.list_executions(
                    stateMachineArn=self.resources.state_machine_arn, statusFilter="RUNNING"
                )["executions"]
                if not running:
                    return
                time.sleep(0.2)

    def _request_stops(self) -> None:
        """Every job still running or waiting is asked to stop, as POST /jobs/{id}/stop asks
        (STOPPING, from the statuses the contract allows): the stack's stop is the user's, and
        their workflows then end them STOPPED, not FAILED by a training that vanished."""
        if self.resources is None:
            return
        dynamodb = self.client("dynamodb")
        stoppable = statuses.ordered(statuses.STOPPABLE)
        values = {f":s{i}": {"S": status} for i, status in enumerate(stoppable)}
        with contextlib.suppress(Exception):  # best effort: the stop goes on regardless
            pages = dynamodb.get_paginator("scan").paginate(
                TableName=self.names.table,
                FilterExpression=f"{storage.ITEM_TYPE} = :job AND #s IN ({', '.join(values)})",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={**values, ":job": {"S": storage.JOB_ITEM}},
            )
            for item in (item for page in pages for item in page["Items"]):
                with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
                    dynamodb.update_item(
                        TableName=self.names.table,
                        Key={k: item[k] for k in (storage.PARTITION_KEY, storage.SORT_KEY)},
                        UpdateExpression="SET #s = :stopping, updated_at = :now",
                        ConditionExpression="#s = :was",
                        ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={
                            ":stopping": {"S": statuses.STOPPING.value},
                            ":now": {"S": utc_timestamp()},
                            ":was": item["status"],
                        },
                    )

    def _restore(self, client: Any) -> None:
        """The snapshot back in the new table and bucket; the jobs that were not final ended."""
        assert self.snapshot is not None
        dynamodb = client("dynamodb")
        items, objects, jobs = self.snapshot.restore(dynamodb, client("s3"))
        ended = [end_interrupted(dynamodb, self.names.table, job) for job in jobs]
        end_interrupted_builds(dynamodb, self.names.table)  # datasets whose build died with the stack
        self.restored = {"items": items, "objects": objects, "jobs": len(jobs),
                         "interrupted": sum(1 for status in ended if status)}  # fmt: skip
        if items:
            log.info("restored %s", self.restored)

    def _serving(self) -> bool:
        return self.front_door is not None and self.front_door.busy()

    def _prewarm(self) -> None:
        from moto.awslambda.models import lambda_backends

        assert self.runtime is not None and self.runner is not None
        # moto's server makes a service's app on that service's first request, holding the lock
        # every request takes (0.3 s for SageMaker's): made now, not in the first burst of jobs.
        self.client("sagemaker").list_training_jobs(MaxResults=1)
        self.runner.warm()
        backend = lambda_backends[self.names.account][self.names.region]
        for spec in functions.FUNCTIONS:
            if spec.key in (functions.FINALISER.key, functions.DATASETS.key, functions.REDRIVE.key):
                continue  # rarely called (an execution ended outside its Catch, an upload): a cold start then
            # the API's whole concurrency: a burst of requests then meets no cold start
            workers = self.runtime.concurrency if spec.key in (functions.API.key, functions.STREAM.key) else 1
            self.runtime.prewarm(backend.get_function(self.names.function_name(spec.key)), workers)

    def _configure_moto(self, config: dict[str, Any]) -> None:
        self._post_moto("/moto-api/config", config)

    def _post_moto(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.moto_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()

    def _set_env(self, values: dict[str, str]) -> None:
        for name in (*values, *_REMOVED_ENV):
            self._saved_env.setdefault(name, os.environ.get(name))
        for name in _REMOVED_ENV:
            os.environ.pop(name, None)
        os.environ.update(values)

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}


# What the stop keeps, of its deadline, for what follows the trainings and their executions.
_STOP_RESERVE_S = 5.0


def _time_left(deadline: float, reserve: float = 0.0) -> float:
    return max(0.0, deadline - reserve - time.monotonic())


@contextmanager
def running(options: LocalStackOptions | None = None) -> Iterator[LocalStack]:
    stack = LocalStack(options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
