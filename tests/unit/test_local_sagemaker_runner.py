"""The SageMaker runner: the container contract it builds (pure functions), and jobs on moto's
server running a small script under it; one file because both halves test the one contract."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from contracts import storage, training
from opencomposer.local.sagemaker_container import (
    JobPaths,
    container_argv,
    container_environment,
    dockerfile_entrypoint,
    host_names,
    host_paths,
    process_entry_point,
    split_cpus,
    write_input_config,
)
from opencomposer.local.sagemaker_runner import DEFAULT_ENTRY_POINT, TRAINING_DOCKERFILE, SageMakerRunner

SCRIPT = r"""
import json, os, pathlib, signal, sys, time

# As the image's entry point is started: SageMaker's one argument, the hyperparameters in its file.
config = pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"])
args = json.loads((config / "hyperparameters.json").read_text())
mode = args.get("mode")
out = pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"])
host = os.environ["SM_CURRENT_HOST"]
model = pathlib.Path(os.environ["SM_MODEL_DIR"])
# Who this host is, as each of a job's hosts sees it.
(model / "host.json").write_text(json.dumps({
    "env": [host, json.loads(os.environ["SM_HOSTS"]), os.environ["SM_NUM_CPUS"]],
    "resourceconfig": json.loads((config / "resourceconfig.json").read_text()),
    "rendezvous": [os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")],
    "melody": (pathlib.Path(os.environ["SM_CHANNEL_MELODY"]) / "melody.mid").read_bytes().decode(),
}))
if mode == "second-host-fails":
    mode = "fail-with-file" if host == "algo-2" else "hang"
if mode == "second-host-fails-first":
    peer_pid = pathlib.Path(os.environ["SM_OUTPUT_DIR"]).parents[1] / "algo-2" / "output" / "pid"
    if host == "algo-1":  # fails too once the second has died, as a host that lost its peer does
        while not peer_pid.exists():
            time.sleep(0.001)
        pid = int(peer_pid.read_text())
        while True:  # until the runner has reaped it: its end is recorded by then
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.001)
        time.sleep(0.2)  # a peer's loss is noticed at the next all-reduce, not at once
        (out.parent / "failure").write_text("RuntimeError: connection closed by peer")
        sys.exit(1)
    tmp = peer_pid.with_suffix(".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.replace(peer_pid)
    mode = "fail-with-file"
if mode == "fail-with-file":
    (out.parent / "failure").write_text("ValueError: the melody has no notes")
    sys.exit(1)
if mode == "crash":
    raise RuntimeError("boom from the training script")
if mode in ("hang", "stubborn"):
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
    print("training forever", flush=True)
    while True:
        time.sleep(0.1)
channel = pathlib.Path(os.environ["SM_CHANNEL_MELODY"])
info = {
    "argv": sys.argv[1:],
    "epochs": args.get("epochs"),
    "config_files": sorted(p.name for p in config.iterdir()),
    "channels": json.loads((config / "inputdataconfig.json").read_text()),
    "hps": json.loads(os.environ["SM_HPS"]),
    "melody": sorted(p.name for p in channel.iterdir()),
    "melody_bytes": (channel / "melody.mid").read_bytes().decode(),
    "job_env": os.environ.get("OPENCOMPOSER_JOB_ID"),
    "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
    "region": [os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")],
}
(model / "info.json").write_text(json.dumps(info))
print("epoch 1/1 done")
"""


# SageMaker's own variables in every training container, beside one per channel and hyperparameter.
SAGEMAKER_VARIABLES = {
    "SM_MODEL_DIR",
    "SM_OUTPUT_DIR",
    "SM_OUTPUT_DATA_DIR",
    "SM_INPUT_DIR",
    "SM_INPUT_CONFIG_DIR",
    "SM_CHANNELS",
    "SM_HPS",
    "SM_CURRENT_HOST",
    "SM_HOSTS",
    "SM_NUM_GPUS",
    "SM_NUM_CPUS",
}


def _environment(paths: JobPaths, **overrides: Any) -> dict[str, str]:
    arguments: dict[str, Any] = {
        "job_name": "job-1",
        "job_arn": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/job-1",
        "paths": paths,
        "channels": ["melody", "extra"],
        "hyperparameters": {"epochs": "3", "batch_size": "16"},
        "job_environment": {"OPENCOMPOSER_JOB_ID": "j1"},
        "endpoint_url": "http://127.0.0.1:5555",
        "python_path": ["/pkg/a", "/pkg/b"],
        "host_environ": {"PATH": "/bin", "HOME": "/home/u", "OPENCOMPOSER_DATA_DIR": "/data"},
        "cpu_count": 4,
    }
    return container_environment(**{**arguments, **overrides})


def test_the_container_gets_sagemakers_variables_one_per_channel_and_one_per_hyperparameter(
    tmp_path: Path,
) -> None:
    paths = JobPaths(tmp_path / "job")

    env = _environment(paths)

    assert {k for k in env if k.startswith("SM_")} == SAGEMAKER_VARIABLES | {
        "SM_CHANNEL_MELODY",
        "SM_CHANNEL_EXTRA",
        "SM_HP_EPOCHS",
        "SM_HP_BATCH_SIZE",
    }
    assert env["SM_CHANNEL_MELODY"] == str(paths.channel("melody"))
    assert env["SM_CHANNEL_EXTRA"] == str(paths.channel("extra"))
    assert (env["SM_HP_EPOCHS"], env["SM_HP_BATCH_SIZE"]) == ("3", "16")
    assert json.loads(env["SM_CHANNELS"]) == ["melody", "extra"]
    assert json.loads(env["SM_HPS"]) == {"epochs": "3", "batch_size": "16"}
    assert env["SM_MODEL_DIR"] == str(paths.model)
    assert env["SM_OUTPUT_DATA_DIR"] == str(paths.output_data)
    assert env["SM_INPUT_CONFIG_DIR"] == str(paths.input_config)
    assert env["SM_NUM_CPUS"] == "4"
    # SageMaker sets no region: only the job's Environment may (contracts.training).
    assert "AWS_REGION" not in env and "AWS_DEFAULT_REGION" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    assert env["PYTHONPATH"] == os.pathsep.join(["/pkg/a", "/pkg/b"])
    assert (env["TRAINING_JOB_NAME"], env["OPENCOMPOSER_JOB_ID"]) == ("job-1", "j1")


def test_the_container_inherits_only_the_listed_host_variables(tmp_path: Path) -> None:
    host = {
        "PATH": "/bin",
        "HOME": "/home/u",
        "OPENCOMPOSER_DATA_DIR": "/data",
        "AWS_PROFILE": "production",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
        "SOMETHING_ELSE": "x",
    }

    env = _environment(JobPaths(tmp_path / "job"), host_environ=host)

    assert {k for k in env if k in host} == {"PATH", "HOME", "OPENCOMPOSER_DATA_DIR", "AWS_SECRET_ACCESS_KEY"}
    assert env["AWS_SECRET_ACCESS_KEY"] == "testing", "the fake credentials, never the host's"
    assert {k for k in env if not k.startswith("SM_")} == {
        "PATH",
        "HOME",
        "OPENCOMPOSER_DATA_DIR",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "TRAINING_JOB_NAME",
        "TRAINING_JOB_ARN",
        "OPENCOMPOSER_JOB_ID",
    }


def test_the_region_comes_from_the_jobs_environment_only(tmp_path: Path) -> None:
    # Given a host with a region set, and a job ARN that names one
    host = {"PATH": "/bin", "AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "ap-south-1"}
    paths = JobPaths(tmp_path / "job")

    # When the job's Environment gives no region, the container has none (as on SageMaker)
    bare = _environment(paths, host_environ=host)
    assert not {"AWS_REGION", "AWS_DEFAULT_REGION"} & set(bare)

    # and when it gives one (as the state machine's CreateTrainingJob does), that one
    region = {training.ENV_REGION: "eu-west-3", training.ENV_DEFAULT_REGION: "eu-west-3"}
    given = _environment(paths, host_environ=host, job_environment=region)
    assert (given["AWS_REGION"], given["AWS_DEFAULT_REGION"]) == ("eu-west-3", "eu-west-3")


def test_the_jobs_environment_is_applied_last(tmp_path: Path) -> None:
    job_environment = {"SM_NUM_GPUS": "8", "HOME": "/elsewhere", "AWS_ENDPOINT_URL": "http://other", "N": 1}

    env = _environment(JobPaths(tmp_path / "job"), job_environment=job_environment)

    assert (env["SM_NUM_GPUS"], env["HOME"], env["AWS_ENDPOINT_URL"], env["N"]) == (
        "8",
        "/elsewhere",
        "http://other",
        "1",
    )


def test_the_entry_point_gets_sagemakers_argument_and_no_flags() -> None:
    assert container_argv(["python", "-m", "gan.train"]) == ["python", "-m", "gan.train", "train"]


def test_the_process_runtime_runs_the_command_the_dockerfile_declares() -> None:
    # The real Dockerfile's exec-form ENTRYPOINT, with this machine's Python for `python`
    declared = dockerfile_entrypoint(TRAINING_DOCKERFILE)
    assert declared[0] == "python"
    assert list(DEFAULT_ENTRY_POINT) == [sys.executable, *declared[1:]]


def test_the_dockerfile_entrypoint_is_parsed_as_docker_reads_it(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'FROM base\n# ENTRYPOINT ["commented", "out"]\nENTRYPOINT ["first"]\n'
        'entrypoint [ "python", \\\n  "-m", "gan.entrypoint" ]\nCMD ["ignored"]\n'
    )
    # the last one wins, continuation lines joined, the keyword in any case
    assert dockerfile_entrypoint(dockerfile) == ["python", "-m", "gan.entrypoint"]
    assert process_entry_point(["python", "-m", "x"], "/usr/bin/python3") == ["/usr/bin/python3", "-m", "x"]
    assert process_entry_point(["/bin/train"], "/py") == ["/bin/train"]

    dockerfile.write_text("FROM base\nENTRYPOINT python -m gan.entrypoint\n")
    with pytest.raises(ValueError, match="exec form"):  # a shell would swallow SIGTERM
        dockerfile_entrypoint(dockerfile)
    dockerfile.write_text("FROM base\nCMD [\"python\"]\n")
    with pytest.raises(ValueError, match="no ENTRYPOINT"):
        dockerfile_entrypoint(dockerfile)


@pytest.fixture()
def stack(tmp_path: Path, moto_server: str) -> Iterator[dict[str, Any]]:
    yield from _stack(tmp_path, moto_server)


def _stack(tmp_path: Path, url: str, **runner_options: Any) -> Iterator[dict[str, Any]]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    runner = SageMakerRunner(
        tmp_path / "state",
        tmp_path / "logs",
        url,
        entry_point=[sys.executable, str(script)],
        pythonpath=[],
        stop_grace_s=0.5,
        **runner_options,
    )
    runner.install()
    s3 = boto3.client("s3", endpoint_url=url)
    s3.create_bucket(Bucket="art")
    s3.put_object(Bucket="art", Key="jobs/j1/input/melody.mid", Body=b"MThd-fake")
    try:
        yield {
            "url": url,
            "runner": runner,
            "s3": s3,
            "tmp": tmp_path,
            "sm": boto3.client("sagemaker", endpoint_url=url),
        }
    finally:
        runner.uninstall()


def _create(stack: dict[str, Any], name: str, mode: str = "ok", max_runtime: int = 3600,
            environment: dict[str, str] | None = None, instances: int = 1) -> None:
    stack["sm"].create_training_job(
        TrainingJobName=name,
        HyperParameters={"epochs": "3", "mode": mode},
        AlgorithmSpecification={"TrainingImage": "local/training:latest", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/training",
        InputDataConfig=[
            {
                "ChannelName": "melody",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://art/jobs/j1/input/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://art/jobs/j1/model/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
        Environment={"OPENCOMPOSER_JOB_ID": "j1", **(environment or {})},
    )


def _wait(stack: dict[str, Any], name: str, timeout: float = 30) -> dict[str, Any]:
    stack["runner"].wait(name, timeout)
    return stack["sm"].describe_training_job(TrainingJobName=name)  # type: ignore[no-any-return]


def _wait_for_log(stack: dict[str, Any], name: str, text: str) -> None:
    log = stack["tmp"] / "logs" / f"{name}.log"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {log}")


def test_a_successful_job_runs_under_the_container_contract_and_uploads_its_model(
    stack: dict[str, Any],
) -> None:
    _create(stack, "job-ok")
    assert stack["sm"].describe_training_job(TrainingJobName="job-ok")["TrainingJobStatus"] in (
        "InProgress",
        "Completed",
    )

    job = _wait(stack, "job-ok")

    assert job["TrainingJobStatus"] == "Completed"
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://art/jobs/j1/model/job-ok/output/model.tar.gz"
    body = stack["s3"].get_object(Bucket="art", Key="jobs/j1/model/job-ok/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        info = json.load(tar.extractfile("info.json"))  # type: ignore[arg-type]
    assert info == {
        "argv": ["train"],  # SageMaker's argument, and no hyperparameter flags
        "epochs": "3",
        "config_files": ["hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"],
        "channels": {
            "melody": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                       "RecordWrapperType": "None"}
        },
        "hps": {"epochs": "3", "mode": "ok"},
        "melody": ["melody.mid"],
        "melody_bytes": "MThd-fake",
        "job_env": "j1",
        "endpoint": stack["url"],
        "region": [None, None],  # the job's Environment gives none, and SageMaker sets none
    }
    assert "epoch 1/1 done" in (stack["tmp"] / "logs" / "job-ok.log").read_text()


def test_the_training_process_gets_the_region_its_jobs_environment_gives(stack: dict[str, Any]) -> None:
    region = {training.ENV_REGION: "eu-west-3", training.ENV_DEFAULT_REGION: "eu-west-3"}
    _create(stack, "job-region", environment=region)

    job = _wait(stack, "job-region")

    assert job["TrainingJobStatus"] == "Completed"
    key = "jobs/j1/model/job-region/output/model.tar.gz"
    body = stack["s3"].get_object(Bucket="art", Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        info = json.load(tar.extractfile("info.json"))  # type: ignore[arg-type]
    assert info["region"] == ["eu-west-3", "eu-west-3"]


def test_a_failing_job_is_failed_with_the_reason_from_the_failure_file(stack: dict[str, Any]) -> None:
    _create(stack, "job-fail", mode="fail-with-file")

    job = _wait(stack, "job-fail")

    assert job["TrainingJobStatus"] == "Failed"
    assert "ValueError: the melody has no notes" in job["FailureReason"]
    assert "ModelArtifacts" not in job


def test_a_crash_without_failure_file_reports_the_end_of_its_output(stack: dict[str, Any]) -> None:
    _create(stack, "job-crash", mode="crash")

    job = _wait(stack, "job-crash")

    assert job["TrainingJobStatus"] == "Failed"
    assert "RuntimeError: boom from the training script" in job["FailureReason"]


def test_stop_training_job_terminates_the_process(stack: dict[str, Any]) -> None:
    _create(stack, "job-hang", mode="hang")
    _wait_for_log(stack, "job-hang", "training forever")

    stack["sm"].stop_training_job(TrainingJobName="job-hang")
    job = _wait(stack, "job-hang")

    assert job["TrainingJobStatus"] == "Stopped"
    with pytest.raises(ClientError, match="Stopped"):
        stack["sm"].stop_training_job(TrainingJobName="job-hang")


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(stack: dict[str, Any]) -> None:
    _create(stack, "job-stubborn", mode="stubborn")
    _wait_for_log(stack, "job-stubborn", "training forever")

    stack["sm"].stop_training_job(TrainingJobName="job-stubborn")
    job = _wait(stack, "job-stubborn")

    assert job["TrainingJobStatus"] == "Stopped"
    assert "ignoring SIGTERM" in (stack["tmp"] / "logs" / "job-stubborn.log").read_text()


def test_max_runtime_stops_the_job(stack: dict[str, Any]) -> None:
    _create(stack, "job-long", mode="hang", max_runtime=1)

    job = _wait(stack, "job-long")

    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"


@pytest.mark.parametrize("mode", ["hang", "stubborn"])
def test_a_stop_reaches_the_training_without_process_groups_or_a_parent_death_signal(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # macOS: no prctl (die_with_parent gives no preexec_fn); Windows: no os.killpg either
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delattr(os, "killpg")
    _create(stack, f"job-{mode}-portable", mode=mode)
    _wait_for_log(stack, f"job-{mode}-portable", "training forever")

    stack["sm"].stop_training_job(TrainingJobName=f"job-{mode}-portable")
    job = _wait(stack, f"job-{mode}-portable")

    assert job["TrainingJobStatus"] == "Stopped"
    log = (stack["tmp"] / "logs" / f"job-{mode}-portable.log").read_text()
    if mode == "stubborn":  # SIGTERM reached it (terminate), then the kill did after the grace
        assert "ignoring SIGTERM" in log and f"exited with code -{int(signal.SIGKILL)}" in log
    else:
        assert f"exited with code -{int(signal.SIGTERM)}" in log


# --- capacity: at most max_trainings at once, the rest waiting in order ------------------------
@pytest.fixture()
def two_slots(tmp_path: Path, moto_server: str) -> Iterator[dict[str, Any]]:
    """A runner of 2 trainings at once on 4 CPUs, and a jobs table whose items it notes."""
    url = moto_server
    script = tmp_path / "train.py"
    script.write_text("import os\nprint('cpus', os.environ['SM_NUM_CPUS'], flush=True)\n" + SCRIPT)
    runner = SageMakerRunner(
        tmp_path / "state", tmp_path / "logs", url, entry_point=[sys.executable, str(script)],
        pythonpath=[], stop_grace_s=0.5, max_trainings=2, cpus=4,
    )  # fmt: skip
    runner.install()
    s3 = boto3.client("s3", endpoint_url=url)
    s3.create_bucket(Bucket="art")
    s3.put_object(Bucket="art", Key="jobs/j1/input/melody.mid", Body=b"MThd-fake")
    dynamodb = boto3.resource("dynamodb", endpoint_url=url)
    table = dynamodb.create_table(
        TableName="capacity-jobs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield {"url": url, "runner": runner, "s3": s3, "tmp": tmp_path, "table": table,
               "sm": boto3.client("sagemaker", endpoint_url=url)}  # fmt: skip
    finally:
        runner.uninstall()
        table.delete()


def _create_noted(stack: dict[str, Any], name: str, mode: str = "hang") -> None:
    """A training job whose job item (STARTING) is in the stack's table, as the pipeline's are."""
    stack["table"].put_item(Item={**storage.job_key(name), "status": "STARTING"})
    environment = {training.ENV_TABLE: "capacity-jobs", training.ENV_JOB_ID: name}
    _create(stack, name, mode=mode, environment=environment)


def _secondary(stack: dict[str, Any], name: str) -> tuple[str, str]:
    last = stack["sm"].describe_training_job(TrainingJobName=name)["SecondaryStatusTransitions"][-1]
    return last["Status"], last["StatusMessage"]


def _note(stack: dict[str, Any], name: str) -> str | None:
    return stack["table"].get_item(Key=storage.job_key(name))["Item"].get(storage.STATUS_MESSAGE)


def _until(condition: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_trainings_beyond_capacity_wait_visibly_and_start_in_order(two_slots: dict[str, Any]) -> None:
    for name in ("first", "second", "third", "fourth"):
        _create_noted(two_slots, name)
    _wait_for_log(two_slots, "first", "training forever")
    _wait_for_log(two_slots, "second", "training forever")
    logs = two_slots["tmp"] / "logs"

    # the third and fourth wait, InProgress, saying why, in the job item too; no process for them
    for name in ("third", "fourth"):
        job = two_slots["sm"].describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "InProgress"
        status, message = _secondary(two_slots, name)
        assert status == "Starting" and "waiting for training capacity" in message
        assert "2 training(s) at a time" in (_note(two_slots, name) or "")
        assert not (logs / f"{name}.log").exists()
    # each running training gets half of the 4 CPUs
    assert "cpus 2" in (logs / "first.log").read_text()

    # one ends: the oldest waiting one starts (not the newest), its note gone
    two_slots["sm"].stop_training_job(TrainingJobName="first")
    _wait_for_log(two_slots, "third", "training forever")
    _until(lambda: _note(two_slots, "third") is None, "the third's note to go")
    assert not (logs / "fourth.log").exists()
    assert _note(two_slots, "fourth") is not None

    # a waiting job stopped ends Stopped at once, never having run
    two_slots["sm"].stop_training_job(TrainingJobName="fourth")
    assert _wait(two_slots, "fourth", timeout=5)["TrainingJobStatus"] == "Stopped"
    assert not (logs / "fourth.log").exists()
    for name in ("second", "third"):
        two_slots["sm"].stop_training_job(TrainingJobName=name)
        assert _wait(two_slots, name)["TrainingJobStatus"] == "Stopped"


def test_stop_all_ends_the_waiting_ones_too(two_slots: dict[str, Any]) -> None:
    for name in ("a", "b", "c", "d", "e"):
        _create_noted(two_slots, name)
    _wait_for_log(two_slots, "b", "training forever")

    started = time.monotonic()
    two_slots["runner"].stop_all(timeout_s=10)

    assert time.monotonic() - started < 10
    for name in ("a", "b", "c", "d", "e"):
        assert two_slots["sm"].describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"
    assert not any((two_slots["tmp"] / "logs" / f"{n}.log").exists() for n in ("c", "d", "e"))


def test_the_default_capacity_is_one_training_per_two_cpus() -> None:
    from opencomposer.local.sagemaker_runner import default_max_trainings

    assert [default_max_trainings(n) for n in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]


def test_max_trainings_comes_from_the_environment_or_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opencomposer.local import stack

    monkeypatch.setenv(stack.ENV_MAX_TRAININGS, "3")
    assert stack.max_trainings() == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv(stack.ENV_MAX_TRAININGS, bad)
        with pytest.raises(ValueError, match="OPENCOMPOSER_MAX_TRAININGS must be a whole number"):
            stack.max_trainings()


# --- several instances: one host process each, under the same contract -------------------------
def test_each_host_is_told_who_it_is_and_who_the_others_are(tmp_path: Path) -> None:
    hosts = host_names(3)
    assert hosts == ["algo-1", "algo-2", "algo-3"]
    every = host_paths(tmp_path / "job", hosts)
    # each its own /opt/ml; a job of one host keeps the job's folder
    assert [p.root for p in every] == [tmp_path / "job" / h for h in hosts]
    assert [p.root for p in host_paths(tmp_path / "job", ["algo-1"])] == [tmp_path / "job"]

    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    env = _environment(every[1], current_host="algo-2", hosts=hosts, rendezvous=rendezvous)
    assert (env["SM_CURRENT_HOST"], json.loads(env["SM_HOSTS"])) == ("algo-2", hosts)
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("127.0.0.1", "29500")
    assert env["SM_MODEL_DIR"] == str(tmp_path / "job" / "algo-2" / "model")
    alone = _environment(every[0])
    assert "MASTER_ADDR" not in alone and json.loads(alone["SM_HOSTS"]) == ["algo-1"]

    write_input_config(every[2], {"epochs": "2"}, ["training"], "ml.m5.large", "algo-3", hosts)
    config = json.loads((every[2].input_config / "resourceconfig.json").read_text())
    assert (config["current_host"], config["hosts"]) == ("algo-3", hosts)
    assert config["instance_groups"][0]["hosts"] == hosts


def test_a_jobs_cpus_are_shared_fairly_among_its_hosts() -> None:
    assert split_cpus(4, 2) == [2, 2]
    assert split_cpus(3, 2) == [2, 1]
    assert split_cpus(2, 1) == [2]
    assert split_cpus(1, 2) == [1, 1]  # more hosts than CPUs share cores, each one thread


@pytest.fixture()
def three_cpus(tmp_path: Path, moto_server: str) -> Iterator[dict[str, Any]]:
    yield from _stack(tmp_path, moto_server, cpus=3)


def _host_files(stack: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {
        p.parent.parent.name: json.loads(p.read_text())
        for p in sorted((stack["tmp"] / "state" / "training" / name).glob("algo-*/model/host.json"))
    }


def test_a_job_of_two_instances_runs_two_hosts_and_uploads_the_leaders_model(
    three_cpus: dict[str, Any],
) -> None:
    _create(three_cpus, "job-two", instances=2)

    job = _wait(three_cpus, "job-two")

    assert job["TrainingJobStatus"] == "Completed"
    seen = _host_files(three_cpus, "job-two")
    assert sorted(seen) == ["algo-1", "algo-2"]
    port = seen["algo-1"]["rendezvous"][1]
    for host, cpus in (("algo-1", "2"), ("algo-2", "1")):
        assert seen[host]["env"] == [host, ["algo-1", "algo-2"], cpus]
        assert (seen[host]["resourceconfig"]["current_host"], seen[host]["resourceconfig"]["hosts"]) == (
            host, ["algo-1", "algo-2"])  # fmt: skip
        assert seen[host]["rendezvous"] == ["127.0.0.1", port]  # the same meeting point for both
        assert seen[host]["melody"] == "MThd-fake"  # every host gets the whole channel
    body = three_cpus["s3"].get_object(Bucket="art", Key="jobs/j1/model/job-two/output/model.tar.gz")["Body"]
    with tarfile.open(fileobj=io.BytesIO(body.read())) as tar:
        assert json.load(tar.extractfile("host.json"))["env"][0] == "algo-1"  # type: ignore[arg-type]
    logs = three_cpus["tmp"] / "logs"
    assert "Invoking on algo-1 (1 of 2)" in (logs / "job-two.log").read_text()
    assert "Invoking on algo-2 (2 of 2)" in (logs / "job-two.algo-2.log").read_text()


def test_a_failing_host_fails_the_job_with_its_reason_and_stops_the_others(stack: dict[str, Any]) -> None:
    _create(stack, "job-host-fails", mode="second-host-fails", instances=2)

    job = _wait(stack, "job-host-fails")

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: host algo-2: ValueError: the melody has no notes"
    assert "ModelArtifacts" not in job
    # the leader, which would have trained on for ever, was stopped (SIGTERM)
    leader_log = (stack["tmp"] / "logs" / "job-host-fails.log").read_text()
    assert f"exited with code -{int(signal.SIGTERM)}" in leader_log
    assert all(p.poll() is not None for p in stack["runner"].processes())


def test_the_reason_is_the_first_failing_hosts_not_the_failures_that_follow(stack: dict[str, Any]) -> None:
    _create(stack, "job-cascade", mode="second-host-fails-first", instances=2)

    job = _wait(stack, "job-cascade")

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: host algo-2: ValueError: the melody has no notes"


def test_a_stop_reaches_every_host(stack: dict[str, Any]) -> None:
    _create(stack, "job-hang-two", mode="hang", instances=2)
    _wait_for_log(stack, "job-hang-two", "training forever")
    _wait_for_log(stack, "job-hang-two.algo-2", "training forever")

    stack["sm"].stop_training_job(TrainingJobName="job-hang-two")
    job = _wait(stack, "job-hang-two")

    assert job["TrainingJobStatus"] == "Stopped"
    for log in ("job-hang-two.log", "job-hang-two.algo-2.log"):
        assert f"exited with code -{int(signal.SIGTERM)}" in (stack["tmp"] / "logs" / log).read_text()


@pytest.fixture()
def in_docker(tmp_path: Path, moto_server: str) -> Iterator[dict[str, Any]]:
    yield from _stack(tmp_path, moto_server, runtime="docker")


def test_the_docker_runtime_refuses_several_instances_saying_why(in_docker: dict[str, Any]) -> None:
    _create(in_docker, "job-docker-two", instances=2)

    job = _wait(in_docker, "job-docker-two")

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: InstanceCount 2: the local Docker runtime")
    assert not (in_docker["tmp"] / "logs" / "job-docker-two.log").exists()  # nothing started


def test_instance_count_comes_from_the_environment_or_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opencomposer.local import stack
    from opencomposer.local.resources import LocalNames, definition_substitutions

    monkeypatch.delenv(stack.ENV_INSTANCE_COUNT, raising=False)
    assert stack.instance_count() == 1
    monkeypatch.setenv(stack.ENV_INSTANCE_COUNT, "2")
    assert stack.instance_count() == 2
    for bad in ("0", "21", "two", "1.5"):
        monkeypatch.setenv(stack.ENV_INSTANCE_COUNT, bad)
        with pytest.raises(ValueError, match="OPENCOMPOSER_INSTANCE_COUNT must be a whole number"):
            stack.instance_count()
    # the state machine's ${InstanceCount}, as CloudFormation fills it from the parameter
    assert definition_substitutions(LocalNames(), 2)["InstanceCount"] == "2"
