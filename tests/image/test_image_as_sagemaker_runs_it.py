"""The training image started by hand exactly as SageMaker starts it (`docker run <image> train`,
/opt/ml laid out, SageMaker's variables only), reporting to the local stack's moto: `docker stop`
checkpoints and a rerun resumes; a bad job fails with the training's own reason in
/opt/ml/output/failure.

The stack's stream mapping stays off in this module: the jobs' items exist for the progress
writes, but no training of the stack's own starts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from image_job import Job, docker, docker_run_argv, exit_code, lay_out, logs, wait_for

from contracts import storage, training
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack

pytestmark = pytest.mark.slow

STOPPED = 128 + 15  # the training's own exit on SIGTERM; 137 would be docker's SIGKILL after the grace


@pytest.fixture(scope="module")
def quiet_stack(stack: LocalStack) -> LocalStack:
    assert stack.resources is not None
    stack.client("lambda").update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=False)
    return stack


@pytest.fixture()
def job_environment(quiet_stack: LocalStack) -> dict[str, str]:
    """A job item of the stack's (so the progress writes have a job to write to), and the job's
    Environment as the state machine's CreateTrainingJob gives it, with moto's endpoint and fake
    credentials in place of SageMaker's."""
    job = Client(quiet_stack.api_url).submit({"hyperparameters": {"epochs": 1}})
    names = quiet_stack.names
    return {
        training.ENV_TABLE: names.table,
        training.ENV_BUCKET: names.bucket,
        training.ENV_JOB_ID: job["job_id"],
        training.ENV_REGION: names.region,
        training.ENV_DEFAULT_REGION: names.region,
        "AWS_ENDPOINT_URL": quiet_stack.moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@pytest.fixture()
def melody(quiet_stack: LocalStack, job_environment: dict[str, str]) -> bytes:
    """The job's melody as the API stored it (the default sample)."""
    key = storage.melody_key(job_environment[training.ENV_JOB_ID])
    return quiet_stack.client("s3").get_object(Bucket=quiet_stack.names.bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


@pytest.fixture()
def containers(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Names of the containers a test starts, removed after it (with their logs in the report)."""
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "--force", name)


def _name(request: pytest.FixtureRequest, suffix: str) -> str:
    return f"opencomposer-imagetest-{request.node.name[:40].replace('_', '-')}-{suffix}".lower()


def test_docker_stop_checkpoints_and_a_rerun_resumes(
    image: str, job_environment: dict[str, str], melody: bytes, tmp_path: Path,
    containers: list[str], request: pytest.FixtureRequest,
) -> None:
    # Given a long job training in the image
    hyperparameters = {"epochs": "200", "batch_size": "16", "update_ratio": "1", "seed": "3"}
    first = lay_out(tmp_path / "ml", _name(request, "1"), hyperparameters, melody)
    containers.append(first.name)
    started = subprocess.run(docker_run_argv(image, first, job_environment, detach=True),
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    wait_for(first.checkpoint, first.name, timeout=600)  # its first epoch is done

    # When SageMaker stops it (docker stop: SIGTERM, then SIGKILL after 120 s)
    stop = docker("stop", "--time", "120", first.name, timeout=300)
    assert stop.returncode == 0, stop.stderr

    # Then the training itself ended, before the SIGKILL, saying where its checkpoint is
    assert exit_code(first.name) == STOPPED, logs(first.name)[-3000:]
    assert "stopped; the last checkpoint is in /opt/ml/checkpoints" in logs(first.name)
    saved = torch.load(first.checkpoint, map_location="cpu", weights_only=False)
    epoch = saved["epoch"]
    assert 1 <= epoch < 200
    assert not first.model.exists()

    # And a rerun on the same /opt/ml (as a spot job's restart, with its checkpoints) resumes there
    second = Job(_name(request, "2"), first.root)
    containers.append(second.name)
    second.set_hyperparameters({**hyperparameters, "epochs": str(epoch + 1)})
    rerun = subprocess.run(docker_run_argv(image, second, job_environment), capture_output=True, text=True,
                           timeout=900)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    assert f"resumed from /opt/ml/checkpoints/checkpoint.pt after epoch {epoch}" in output
    model = torch.load(first.model, map_location="cpu", weights_only=False)
    assert model["epoch"] == epoch + 1


@pytest.mark.parametrize(
    ("hyperparameters", "broken_melody", "expected"),
    [
        ({"epochs": "0"}, False, "epochs"),
        ({"learning_rate": "fast"}, False, "hyperparameter learning_rate: 'fast' is not a number"),
        ({"epochs": "1"}, True, "the job's melody cannot be used"),
    ],
    ids=["epochs-out-of-range", "learning-rate-not-a-number", "broken-melody"],
)
def test_a_bad_job_fails_with_the_trainings_own_reason_in_the_failure_file(
    image: str, job_environment: dict[str, str], melody: bytes, tmp_path: Path, containers: list[str],
    request: pytest.FixtureRequest, hyperparameters: dict[str, str], broken_melody: bool, expected: str,
) -> None:
    # Given a job with a bad hyperparameter, or a melody that is not MIDI
    job = lay_out(tmp_path / "ml", _name(request, "x"), hyperparameters,
                  b"MThd this is not a MIDI file" if broken_melody else melody)
    containers.append(job.name)

    # When SageMaker runs it
    done = subprocess.run(docker_run_argv(image, job, job_environment), capture_output=True, text=True,
                          timeout=600)

    # Then the container fails, and /opt/ml/output/failure (SageMaker's FailureReason) holds the
    # training's own reason, under 1 KiB, not a toolkit's message or a traceback
    assert done.returncode == 1, done.stdout + done.stderr
    reason = job.failure.read_text()
    assert expected in reason
    assert len(reason.encode()) < training.FAILURE_REASON_MAX
    assert "Traceback" not in reason and "ExecuteUserScriptError" not in reason
