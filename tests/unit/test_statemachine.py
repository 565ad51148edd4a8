"""statemachine/training.asl.json executed by moto's Step Functions interpreter, with the
project's `createTrainingJob.sync` integration installed, against the real handlers' data.

moto's SageMaker creates jobs already Completed; here new jobs start InProgress and each test
moves the in-memory job to its end (Completed, Failed, Stopped), as SageMaker would. One file,
because every test drives the same machine through one of its paths to an end state.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

from contracts import deployment, names, storage, training
from lambdas.common.starting import execution_input
from opencomposer.local import stepfunctions_sagemaker
from tests.unit.conftest import (
    BUCKET,
    TABLE,
    TRAINING_JOB_PREFIX,
    call_api,
    deliver,
    put_job_item,
    stream_records,
)

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "training.asl.json"
SUBSTITUTIONS = {
    "JobsTable": TABLE,
    "ArtifactsBucket": BUCKET,
    "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/opencomposer-training:test",
    "SageMakerRoleArn": "arn:aws:iam::123456789012:role/training",
    "TrainingJobPrefix": TRAINING_JOB_PREFIX,
    "InstanceType": "ml.m5.large",
    "InstanceCount": "1",
    "VolumeSizeInGB": "10",
    "MaxRuntimeSeconds": "3600",
    "UseSpotInstances": "false",
    "SpotWaitSeconds": "7200",
    training.REGION_PLACEHOLDER: deployment.LOCAL_REGION,
}
FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout} s")


class Machine:
    def __init__(self, name: str = "training", **deployment: str) -> None:
        """`deployment`: stack parameter values that differ from SUBSTITUTIONS'."""
        self.sfn = boto3.client("stepfunctions")
        self.arn = self.sfn.create_state_machine(
            name=name,
            definition=names.render(ASL.read_text(), {**SUBSTITUTIONS, **deployment}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]

    def start(self, job_id: str) -> str:
        item = (
            boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": storage.job_pk(job_id), "sk": "JOB"})
        )
        payload = execution_input(item["Item"])
        return self.sfn.start_execution(stateMachineArn=self.arn, name=job_id, input=json.dumps(payload))[
            "executionArn"
        ]

    def result(self, execution_arn: str) -> dict[str, Any]:
        return wait_for(
            lambda: (d := self.sfn.describe_execution(executionArn=execution_arn))["status"] in FINAL and d
        )

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn)["events"]


def training_jobs() -> dict[str, Any]:
    return sagemaker_backends[deployment.LOCAL_ACCOUNT][deployment.LOCAL_REGION].training_jobs


def training_job(job_id: str) -> Any:
    return wait_for(lambda: training_jobs().get(names.training_job_name(TRAINING_JOB_PREFIX, job_id)))


def finish(job_id: str, status: str, reason: str | None = None) -> None:
    """What SageMaker does when the container exits."""
    job = training_job(job_id)
    job.training_job_status = job.secondary_status = status
    if reason is not None:
        job.failure_reason = reason


def job_item(job_id: str) -> dict[str, Any]:
    return call_api("GET", f"/jobs/{job_id}").body


def stored_job(job_id: str) -> dict[str, Any]:
    """The job item itself, as the state machine wrote it."""
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key=storage.job_key(job_id))["Item"]


@pytest.fixture
def machine(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    real_create = SageMakerModelBackend.create_training_job

    def create_in_progress(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        created = real_create(self, *args, **kwargs)
        job = self.training_jobs[kwargs.get("training_job_name") or args[0]]
        job.training_job_status, job.secondary_status = "InProgress", "Training"
        return created

    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", create_in_progress)
    stepfunctions_sagemaker.install()
    try:
        yield Machine()
    finally:
        stepfunctions_sagemaker.uninstall()


def test_a_job_trains_to_completed_with_its_model(machine: Machine) -> None:
    job_id = call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 3, "learning_rate": 0.0002}}).body[
        "job_id"
    ]

    execution = machine.start(job_id)
    training = training_job(job_id)
    assert job_item(job_id)["status"] == "STARTING"
    finish(job_id, "Completed")
    result = machine.result(execution)

    assert result["status"] == "SUCCEEDED"
    job = job_item(job_id)
    assert job["status"] == "COMPLETED"
    stored = stored_job(job_id)["model_artifact"]
    assert stored == training.model_artifacts["S3ModelArtifacts"]
    assert stored.startswith(f"s3://{BUCKET}/{storage.model_output_prefix(job_id)}")
    assert job["outputs"]["model"] == f"/jobs/{job_id}/model"  # the route that presigns it
    assert job["failure_reason"] is None
    # the state machine's own timestamp reaches the client in the API's one form
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", job["updated_at"])


def test_the_training_job_gets_the_jobs_settings(machine: Machine) -> None:
    job_id = call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 3, "learning_rate": 0.0002}}).body[
        "job_id"
    ]

    execution = machine.start(job_id)
    job = training_job(job_id)
    finish(job_id, "Completed")
    machine.result(execution)

    assert job.hyper_parameters == {
        "epochs": "3",
        "learning_rate": "0.0002",
        "update_ratio": "5",
        "batch_size": "64",
        "seed": "0",
    }
    [channel] = job.input_data_config
    assert channel["ChannelName"] == training.MELODY_CHANNEL
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/{storage.melody_key(job_id)}"
    assert (
        job.output_data_config["S3OutputPath"] == f"s3://{BUCKET}/{storage.model_output_prefix(job_id)}"
    )
    assert job.checkpoint_config["S3Uri"] == f"s3://{BUCKET}/{storage.checkpoint_prefix(job_id)}"
    # On-demand (the stack's default): no spot, so no wait limit (SageMaker refuses one without spot).
    assert job.enable_managed_spot_training is False
    assert job.stopping_condition == {"MaxRuntimeInSeconds": 3600}
    assert job.resource_config["InstanceCount"] == 1
    assert job.algorithm_specification["TrainingImage"] == SUBSTITUTIONS["TrainingImage"]
    # moto drops Environment: read it from what the task sent.
    [scheduled] = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])
        for e in machine.history(execution)
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "sagemaker"
    ]
    # ... the region among them: SageMaker sets none in the container, the AWS SDK needs one.
    assert scheduled["Environment"] == {
        training.ENV_TABLE: TABLE,
        training.ENV_BUCKET: BUCKET,
        training.ENV_JOB_ID: job_id,
        training.ENV_REGION: deployment.LOCAL_REGION,
        training.ENV_DEFAULT_REGION: deployment.LOCAL_REGION,
    }
    # One task's parameter names are fixed, so on-demand sends false: SageMaker's own default.
    assert scheduled["EnableManagedSpotTraining"] is False
    assert scheduled["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def _train_on_spot(name: str, spot_wait_seconds: str) -> tuple[str, Any, list[dict[str, Any]], str]:
    """A job trained to completion on a stack deployed with UseSpotInstances=true: its id, its
    training job, the execution's history and the execution's status."""
    spot = Machine(name, UseSpotInstances="true", SpotWaitSeconds=spot_wait_seconds)
    job_id = call_api("POST", "/jobs").body["job_id"]
    execution = spot.start(job_id)
    job = training_job(job_id)
    finish(job_id, "Completed")
    return job_id, job, spot.history(execution), spot.result(execution)["status"]


def test_a_spot_deployment_trains_on_managed_spot_capacity_within_its_wait_limit(machine: Machine) -> None:
    # Given a stack deployed with spot on and SpotWaitSeconds=7200, when a job runs on it
    job_id, job, history, status = _train_on_spot("training-spot", "7200")

    # Then its one training job asks SageMaker for spot capacity, waiting at most its runtime
    # (MaxRuntimeSeconds, 3600) plus SpotWaitSeconds: never less than the runtime, as SageMaker
    # requires, with checkpoints to resume from after an interruption
    assert status == "SUCCEEDED"
    assert job_item(job_id)["status"] == "COMPLETED"
    assert job.enable_managed_spot_training is True
    assert job.stopping_condition == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 10800}
    assert job.checkpoint_config["S3Uri"] == f"s3://{BUCKET}/{storage.checkpoint_prefix(job_id)}"
    [scheduled] = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])
        for e in history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "sagemaker"
    ]
    assert scheduled["EnableManagedSpotTraining"] is True
    assert scheduled["StoppingCondition"]["MaxWaitTimeInSeconds"] == 10800


def test_a_spot_deployment_without_extra_wait_waits_exactly_its_runtime(machine: Machine) -> None:
    # The smallest SpotWaitSeconds (0) still gives SageMaker MaxWaitTimeInSeconds >= MaxRuntimeInSeconds.
    _, job, _, status = _train_on_spot("training-spot-0", "0")

    assert status == "SUCCEEDED"
    assert job.stopping_condition == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}


def test_a_failed_training_ends_the_job_failed_with_the_trainings_own_reason(machine: Machine) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]

    execution = machine.start(job_id)
    finish(job_id, "Failed", "AlgorithmError: the melody channel holds no MIDI file")
    result = machine.result(execution)

    assert result["status"] == "FAILED"
    # the execution itself ends through the Fail state, saying why (not through an interpreter error)
    assert result.get("error") == "JobFailed"
    assert result.get("cause") == "AlgorithmError: the melody channel holds no MIDI file"
    job = job_item(job_id)
    assert job["status"] == "FAILED"
    assert job["failure_reason"] == "AlgorithmError: the melody channel holds no MIDI file"
    assert job["outputs"]["model"] is None


def test_a_job_stopped_while_training_ends_stopped(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    execution = machine.start(job_id)
    training_job(job_id)
    wait_for(lambda: job_item(job_id)["status"] == "STARTING")
    real = BaseClient._make_api_call

    def sagemaker_stops(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        # moto has no StopTrainingJob: do what SageMaker does (the local stack's runner does too).
        if operation == "StopTrainingJob":
            finish(job_id, "Stopped")
            return {}
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", sagemaker_stops)

    assert call_api("POST", f"/jobs/{job_id}/stop").status == 202
    result = machine.result(execution)

    assert result["status"] == "FAILED" and result.get("error") == "JobStopped"
    job = job_item(job_id)
    assert job["status"] == "STOPPED"
    assert job["failure_reason"] is None


def test_a_job_stopped_before_it_started_ends_stopped_without_training(machine: Machine) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    assert call_api("POST", f"/jobs/{job_id}/stop").status == 202

    result = machine.result(machine.start(job_id))

    assert result.get("error") == "JobStopped"
    assert job_item(job_id)["status"] == "STOPPED"
    assert training_jobs() == {}


def test_a_throttled_create_training_job_is_retried(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    real = BaseClient._make_api_call
    attempts: list[str] = []

    def throttle_once(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "CreateTrainingJob":
            attempts.append(operation)
            if len(attempts) == 1:
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation
                )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", throttle_once)
    execution = machine.start(job_id)
    finish(job_id, "Completed")
    result = machine.result(execution)

    assert result["status"] == "SUCCEEDED"
    assert len(attempts) == 2
    assert job_item(job_id)["status"] == "COMPLETED"
    failures = [
        e["taskFailedEventDetails"]["error"] for e in machine.history(execution) if e["type"] == "TaskFailed"
    ]
    assert failures == ["SageMaker.ThrottlingException"]


def test_a_refused_create_training_job_ends_the_job_failed_with_sagemakers_answer(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    real = BaseClient._make_api_call

    def refuse(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "CreateTrainingJob":
            message = "No quota for ml.m5.large"
            raise ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": message}}, operation)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    result = machine.result(machine.start(job_id))

    assert result["status"] == "FAILED"
    job = job_item(job_id)
    assert job["status"] == "FAILED"
    assert job["failure_reason"] == "SageMaker.ResourceLimitExceeded: No quota for ml.m5.large"


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "STOPPED"])
def test_a_finished_job_never_changes_again(machine: Machine, status: str) -> None:
    job_id = "1" * 32
    put_job_item(job_id, status, failure_reason="as it was" if status == "FAILED" else None)

    result = machine.result(machine.start(job_id))

    assert result["status"] == "FAILED"
    job = job_item(job_id)
    assert job["status"] == status
    assert job["failure_reason"] == ("as it was" if status == "FAILED" else None)
    assert training_jobs() == {}


def test_the_definition_uses_only_deployment_placeholders_and_the_shared_names() -> None:
    text = ASL.read_text()
    definition = json.loads(text)  # valid JSON before substitution, as CDK reads it

    assert names.all_placeholders(text) == set(SUBSTITUTIONS)
    task = definition["States"]["CreateTrainingJob"]
    assert task["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    # Spot and on-demand share this one task: only its data differs.
    trainings = [s for s in definition["States"].values() if "sagemaker" in s.get("Resource", "")]
    assert trainings == [task]
    environment = {k.removesuffix(".$") for k in task["Parameters"]["Environment"]}
    assert environment == set(training.JOB_ENVIRONMENT)
    assert task["Parameters"]["InputDataConfig"][0]["ChannelName"] == training.MELODY_CHANNEL
    # Every step of the training path hands any error to one recording step, and only it.
    catch_all = {
        name: catch["Next"]
        for name, state in definition["States"].items()
        for catch in state.get("Catch", [])
        if "States.ALL" in catch["ErrorEquals"]
    }
    assert catch_all == {
        name: "RecordStopped" for name in ("MarkStarting", "CreateTrainingJob", "MarkCompleted")
    }


def test_a_training_job_that_ran_out_of_time_ends_failed_saying_so(machine: Machine) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]

    execution = machine.start(job_id)
    job = training_job(job_id)
    job.training_job_status, job.secondary_status = "Stopped", "MaxRuntimeExceeded"
    machine.result(execution)

    failed = job_item(job_id)
    assert failed["status"] == "FAILED"
    assert failed["failure_reason"] == "The training job ended Stopped (MaxRuntimeExceeded)."


def test_post_stream_and_state_machine_together_take_a_job_to_completed(machine: Machine) -> None:
    job_id = call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 2}}).body["job_id"]

    assert deliver(stream_records()) == {"batchItemFailures": []}
    assert training_job(job_id).hyper_parameters["epochs"] == "2"
    finish(job_id, "Completed")

    wait_for(lambda: job_item(job_id)["status"] == "COMPLETED")
    assert stored_job(job_id)["model_artifact"].endswith("/output/model.tar.gz")
