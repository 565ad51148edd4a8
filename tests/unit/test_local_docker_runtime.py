"""The docker runtime's command (no Docker needed): the training image started as SageMaker
starts it, with SageMaker's variables and nothing of this machine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencomposer.local.docker_runtime import DockerRuntime, runtime_from_env, sagemaker_environment


def test_the_container_gets_sagemakers_variables_the_job_environment_and_nothing_else() -> None:
    env = sagemaker_environment(
        job_name="opencomposer-j1",
        job_arn="arn:aws:sagemaker:eu-west-1:123456789012:training-job/opencomposer-j1",
        job_environment={"OPENCOMPOSER_JOB_ID": "j1", "AWS_REGION": "eu-west-1", "N": 3},
        endpoint_url="http://127.0.0.1:5555",
    )

    assert env == {
        "TRAINING_JOB_NAME": "opencomposer-j1",
        "TRAINING_JOB_ARN": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/opencomposer-j1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5555",
        "OPENCOMPOSER_JOB_ID": "j1",
        "AWS_REGION": "eu-west-1",  # only because the job's Environment gives it
        "N": "3",
    }
    assert not any(name.startswith("SM_") for name in env), "the image's entry point derives those"


def test_the_command_mounts_the_jobs_folders_under_opt_ml_and_passes_train_last(tmp_path: Path) -> None:
    runtime = DockerRuntime(image="opencomposer-training:test", docker="docker", scope="/state")

    argv = runtime.command("opencomposer-j1", tmp_path, {"TRAINING_JOB_NAME": "opencomposer-j1"}, cpus=None)

    assert argv[:3] == ["docker", "run", "--rm"]
    assert argv[-2:] == ["opencomposer-training:test", "train"]
    volumes = [argv[i + 1] for i, word in enumerate(argv) if word == "--volume"]
    assert volumes == [f"{tmp_path / f}:/opt/ml/{f}" for f in ("input", "model", "output", "checkpoints")]
    environment = [argv[i + 1] for i, word in enumerate(argv) if word == "--env"]
    assert environment == ["TRAINING_JOB_NAME=opencomposer-j1"]
    assert "--cpus" not in argv
    assert argv[argv.index("--name") + 1] == runtime.container_name("opencomposer-j1")
    # two stacks' jobs of the same name are two containers
    assert runtime.container_name("x") != DockerRuntime(scope="/other").container_name("x")
    assert runtime.command("j", tmp_path, {}, cpus=2)[-4:-2] == ["--cpus", "2"]


def test_the_runtime_is_process_unless_docker_is_asked_for() -> None:
    assert runtime_from_env({}) == "process"
    assert runtime_from_env({"OPENCOMPOSER_TRAINING_RUNTIME": "docker"}) == "docker"
    with pytest.raises(ValueError, match="OPENCOMPOSER_TRAINING_RUNTIME must be one of process, docker"):
        runtime_from_env({"OPENCOMPOSER_TRAINING_RUNTIME": "podman"})


def test_a_missing_docker_command_is_a_clear_reason() -> None:
    runtime = DockerRuntime(docker="no-such-docker-command")
    with pytest.raises(RuntimeError, match="no 'no-such-docker-command' command is on PATH"):
        runtime.check()
