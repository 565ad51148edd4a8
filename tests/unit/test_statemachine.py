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

from contracts import datasets, deployment, hyperparameters, names, storage, training
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


def definition(retry: dict[str, Any] | None = None, **deployment: str) -> str:
    """The ASL file rendered as deployed; `retry`: RetrySettings values that differ (the waits
    between CreateTrainingJob attempts, shortened so a test need not wait minutes)."""
    rendered = json.loads(names.render(ASL.read_text(), {**SUBSTITUTIONS, **deployment}))
    settings = rendered["States"]["RetrySettings"]["Result"]
    for group, values in (retry or {}).items():
        if isinstance(values, dict):
            assert set(values) <= set(settings[group]), f"no such setting in {group}: {values}"
            settings[group].update(values)
        else:
            assert group in settings, group
            settings[group] = values
    return json.dumps(rendered)


# Waits of a second, and a capacity limit reached after two waits (1 s, then 2 s).
FAST_RETRIES = {
    "throttle": {"wait": 1},
    "capacity": {"wait": 1, "max_wait": 2, "limit": 3},
    "poll_seconds": 1,
}


class Machine:
    def __init__(self, name: str = "training", retry: dict[str, Any] | None = None,
                 **deployment: str) -> None:
        """`deployment`: stack parameter values that differ from SUBSTITUTIONS'; `retry`: as
        `definition` takes it."""
        self.sfn = boto3.client("stepfunctions")
        self.arn = self.sfn.create_state_machine(
            name=name,
            definition=definition(retry, **deployment),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]

    def start(self, job_id: str) -> str:
        item = (
            boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": storage.job_pk(job_id), "sk": "JOB"})
        )
        payload = execution_input(item["Item"], BUCKET)
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
def sagemaker(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's SageMaker with new jobs InProgress, and the `.sync` integration installed."""
    real_create = SageMakerModelBackend.create_training_job

    def create_in_progress(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        created = real_create(self, *args, **kwargs)
        job = self.training_jobs[kwargs.get("training_job_name") or args[0]]
        job.training_job_status, job.secondary_status = "InProgress", "Training"
        return created

    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", create_in_progress)
    stepfunctions_sagemaker.install()
    try:
        yield
    finally:
        stepfunctions_sagemaker.uninstall()


@pytest.fixture
def machine(sagemaker: None) -> Machine:
    return Machine()


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

    # every hyperparameter, as SageMaker strings (no `tags`: the job does not filter)
    assert job.hyper_parameters == {
        **hyperparameters.as_sagemaker(hyperparameters.DEFAULTS), "epochs": "3", "learning_rate": "0.0002",
    }
    assert job.hyper_parameters["update_ratio"] == "5"
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


def test_a_job_on_a_users_dataset_gets_its_built_pieces_as_a_channel_and_its_tags(machine: Machine) -> None:
    # Given a job (as the API writes it) that trains on a user's dataset, filtered by two tags
    dataset_id = "e" * 32
    put_job_item("f" * 32, "SUBMITTED", training_data={
        "dataset": dataset_id, "tags": ["mode:minor", "jazz"], "pieces": 3, "windows": 150})

    # When its execution runs
    execution = machine.start("f" * 32)
    job = training_job("f" * 32)
    finish("f" * 32, "Completed")

    # Then its one training job gets the melody and the dataset's built pieces as channels, in
    # the job's bucket, and the filter as the `tags` hyperparameter (a JSON list in a string)
    assert machine.result(execution)["status"] == "SUCCEEDED"
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job.input_data_config}
    assert uris == {
        training.MELODY_CHANNEL: f"s3://{BUCKET}/{storage.melody_key('f' * 32)}",
        datasets.DATASET_CHANNEL: f"s3://{BUCKET}/{datasets.built_prefix(dataset_id)}",
    }
    assert all(c["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix" for c in job.input_data_config)
    assert json.loads(job.hyper_parameters[datasets.TAGS_HYPERPARAMETER]) == ["mode:minor", "jazz"]
    assert job.hyper_parameters["epochs"] == "2"


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
    # As Step Functions reports it on AWS: the service's base exception, the code in the cause.
    assert failures == ["SageMaker.AmazonSageMakerException"]
    [cause] = [e["taskFailedEventDetails"]["cause"] for e in machine.history(execution)
               if e["type"] == "TaskFailed"]
    assert cause.startswith("Rate exceeded (Service: AmazonSageMaker; Status Code: 400; "
                            "Error Code: ThrottlingException;")


def _refusing(monkeypatch: pytest.MonkeyPatch, answers: list[tuple[str, str, int] | None]) -> list[str]:
    """CreateTrainingJob answers these in turn (code, message, HTTP status; None: SageMaker's own
    answer), then SageMaker's own; the list returned grows with each call."""
    real = BaseClient._make_api_call
    calls: list[str] = []

    def answer(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "CreateTrainingJob":
            calls.append(operation)
            planned = answers[len(calls) - 1] if len(calls) <= len(answers) else None
            if planned is not None:
                code, message, status = planned
                raise ClientError({"Error": {"Code": code, "Message": message},
                                   "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "r-1"}},
                                  operation)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answer)
    return calls


VALIDATION = ("ValidationException", "1 validation error detected: Value 'ml.m5.huge' at "
              "'resourceConfig.instanceType' failed to satisfy constraint", 400)
QUOTA = ("ResourceLimitExceeded", "The account-level service limit 'ml.m5.large for training job usage' "
         "is 0 Instances, with current utilization of 0 Instances and a request delta of 1 Instances. "
         "Please use AWS Service Quotas to request an increase for this quota.", 400)


def test_a_validation_exception_fails_the_job_at_once_with_sagemakers_message(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    calls = _refusing(monkeypatch, [VALIDATION])

    result = machine.result(machine.start(job_id))

    assert result["status"] == "FAILED" and result.get("error") == "JobFailed"
    assert calls == ["CreateTrainingJob"]  # asked once: no retry changes a refused request
    job = job_item(job_id)
    assert job["status"] == "FAILED"
    assert job["failure_reason"].startswith(f"SageMaker.AmazonSageMakerException: {VALIDATION[1]} "
                                            "(Service: AmazonSageMaker; Status Code: 400; "
                                            "Error Code: ValidationException;")


def test_server_errors_are_asked_again_and_a_lasting_one_fails_the_job_saying_so(
    sagemaker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = Machine("training-5xx", retry={"throttle": {"wait": 1, "max_attempts": 2}})
    job_id = call_api("POST", "/jobs").body["job_id"]
    unavailable = ("ServiceUnavailable", "Service is unavailable", 503)
    calls = _refusing(monkeypatch, [unavailable] * 10)

    result = machine.result(machine.start(job_id))

    assert result["status"] == "FAILED"
    assert len(calls) == 3  # the first and max_attempts more
    reason = job_item(job_id)["failure_reason"]
    assert reason.startswith("SageMaker.AmazonSageMakerException: Service is unavailable (Service: "
                             "AmazonSageMaker; Status Code: 503; Error Code: ServiceUnavailable;")


def _seen_waiting(job_id: str) -> str:
    """The job's note while it waits for capacity (it is STARTING meanwhile)."""
    def note() -> str | None:
        job = job_item(job_id)
        return job["status_message"] if job["status"] == "STARTING" else None

    return str(wait_for(note))


def test_a_quota_refusal_waits_for_capacity_saying_so_then_trains(
    sagemaker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SageMaker refusing twice for lack of quota, then creating the job
    machine = Machine("training-quota", retry={**FAST_RETRIES, "capacity": {"wait": 1, "limit": 60}})
    job_id = call_api("POST", "/jobs").body["job_id"]
    calls = _refusing(monkeypatch, [QUOTA, QUOTA])

    execution = machine.start(job_id)
    # Then while it waits the job is STARTING, saying why with SageMaker's answer
    note = _seen_waiting(job_id)
    # ... and once SageMaker takes it, it trains to the end
    training_job(job_id)
    finish(job_id, "Completed")
    result = machine.result(execution)

    assert note.startswith("waiting for training capacity: SageMaker refused the training job (")
    assert QUOTA[1] in note and "for up to 60 s in all" in note
    assert result["status"] == "SUCCEEDED"
    assert len(calls) == 3
    assert job_item(job_id)["status"] == "COMPLETED"
    # The note went when SageMaker was asked again, so no job keeps saying it waits.
    assert storage.STATUS_MESSAGE not in stored_job(job_id)
    waits = [e for e in machine.history(execution) if e["type"] == "WaitStateEntered"]
    assert [json.loads(e["stateEnteredEventDetails"]["input"])["retry"]["capacity"]["wait"]
            for e in waits] == [1, 2]  # the wait doubles


def test_a_quota_refusal_that_outlasts_the_wait_limit_ends_the_job_failed_saying_why(
    sagemaker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = Machine("training-no-quota", retry=FAST_RETRIES)
    job_id = call_api("POST", "/jobs").body["job_id"]
    calls = _refusing(monkeypatch, [QUOTA] * 10)

    result = machine.result(machine.start(job_id))

    assert result["status"] == "FAILED" and result.get("error") == "JobFailed"
    assert len(calls) == 3  # waits of 1 s and 2 s reach the limit of 3 s
    job = job_item(job_id)
    assert job["status"] == "FAILED"
    reason = job["failure_reason"]
    assert reason.startswith("NoTrainingCapacity: SageMaker had no training capacity for this job for 3 s, "
                             "the longest this deployment waits (its last answer: ")
    assert QUOTA[1] in reason and "Service Quotas" in reason and "InstanceType" in reason


def test_the_deployed_waits_for_capacity_double_up_to_a_quarter_hour_for_two_hours() -> None:
    settings = json.loads(ASL.read_text())["States"]["RetrySettings"]["Result"]
    capacity, throttle = settings["capacity"], settings["throttle"]
    waits, wait, waited = [], capacity["wait"], 0
    while waited < capacity["limit"]:  # as CapacityRefused, CountCapacityWait and CapCapacityWait do
        waits.append(wait)
        waited += wait
        wait = min(2 * wait, capacity["max_wait"])
    assert waits[:4] == [60, 120, 240, 480] and max(waits) == 900
    assert sum(waits) == 7200
    # Throttling: a few quick attempts (2, 4, ... 64 s), about two minutes in all.
    assert throttle["max_attempts"] == 6 and throttle["wait"] * (2 ** throttle["max_attempts"] - 1) == 126


NAME_TAKEN = ("Training job names must be unique within an AWS account and region, and a training job "
              "with this name already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/{name})")


@pytest.mark.parametrize("code", ["ResourceInUse", "ValidationException"])
def test_a_create_whose_answer_was_lost_finds_its_job_and_waits_for_it(
    sagemaker: None, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    machine = Machine(f"training-lost-{code}", retry=FAST_RETRIES)
    job_id = call_api("POST", "/jobs").body["job_id"]
    name = names.training_job_name(TRAINING_JOB_PREFIX, job_id)
    real = BaseClient._make_api_call
    calls: list[str] = []

    def created_then_lost(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "CreateTrainingJob":
            calls.append(operation)
            if len(calls) == 1:
                # Given SageMaker creating the job and its answer lost (a server error) ...
                real(self, operation, params)
                raise ClientError({"Error": {"Code": "InternalFailure", "Message": "internal error"},
                                   "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)
            # ... the name is taken when it is asked again (moto does not refuse it itself)
            raise ClientError({"Error": {"Code": code, "Message": NAME_TAKEN.format(name=name)},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", created_then_lost)
    execution = machine.start(job_id)
    wait_for(lambda: len(calls) == 2)
    # Then the job is the training job already made: the workflow waits for its end
    training = training_job(job_id)
    finish(job_id, "Completed")
    result = machine.result(execution)

    assert result["status"] == "SUCCEEDED"
    assert len(calls) == 2 and list(training_jobs()) == [name]
    assert job_item(job_id)["status"] == "COMPLETED"
    assert stored_job(job_id)["model_artifact"] == training.model_artifacts["S3ModelArtifacts"]


def test_an_existing_job_that_fails_ends_the_job_failed_with_the_trainings_reason(
    sagemaker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = Machine("training-existing-fails", retry=FAST_RETRIES)
    job_id = call_api("POST", "/jobs").body["job_id"]
    name = names.training_job_name(TRAINING_JOB_PREFIX, job_id)
    real = BaseClient._make_api_call

    def already_there(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "CreateTrainingJob":
            if name not in training_jobs():
                real(self, operation, params)
            taken = {"Code": "ResourceInUse", "Message": NAME_TAKEN.format(name=name)}
            raise ClientError({"Error": taken, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", already_there)
    execution = machine.start(job_id)
    finish(job_id, "Failed", "AlgorithmError: out of memory")
    result = machine.result(execution)

    assert result["status"] == "FAILED" and result.get("error") == "JobFailed"
    job = job_item(job_id)
    assert job["status"] == "FAILED" and job["failure_reason"] == "AlgorithmError: out of memory"


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
    trainings = [s for s in definition["States"].values() if "createTrainingJob" in s.get("Resource", "")]
    assert trainings == [task]
    # ... and every SageMaker task names the job as it does (the stop and the grants rely on it).
    for state in definition["States"].values():
        if "sagemaker:" in state.get("Resource", ""):
            assert state["Parameters"]["TrainingJobName.$"] == task["Parameters"]["TrainingJobName.$"]
    environment = {k.removesuffix(".$") for k in task["Parameters"]["Environment"]}
    assert environment == set(training.JOB_ENVIRONMENT)
    # Its channels are the execution input's (`starting.execution_input`), as they are: no Map
    # state (each would cost the local interpreter a parse of the definition per execution).
    assert task["Parameters"]["InputDataConfig.$"] == "$.input_data_config"
    assert not [s for s in definition["States"].values() if s["Type"] in ("Map", "Parallel")]
    # Every step of the training path hands any error to one recording step, and only it.
    catch_all = {
        name: catch["Next"]
        for name, state in definition["States"].items()
        for catch in state.get("Catch", [])
        if "States.ALL" in catch["ErrorEquals"]
    }
    assert catch_all == {
        name: "RecordStopped"
        for name in ("MarkStarting", "CreateTrainingJob", "NoteWaitingForCapacity", "ClearCapacityNote",
                     "DescribeExistingJob", "MarkCompleted")
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


# --- SageMaker's metric definitions against the training's own log ------------------------------


@pytest.fixture(scope="module")
def training_log(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The log lines of a real (dry-run) training, as the container writes them to stderr:
    what SageMaker's metric definitions are matched against, not a hand-written copy."""
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("sm")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SM_", "OPENCOMPOSER_"))}
    env.update({
        "SM_MODEL_DIR": str(folder / "model"),
        "SM_OUTPUT_DATA_DIR": str(folder / "output" / "data"),
        "SM_INPUT_CONFIG_DIR": str(folder / "input" / "config"),
        "PYTHONPATH": os.pathsep.join(str(ASL.parents[1] / p) for p in ("training_container", ".")),
    })
    done = subprocess.run([sys.executable, "-m", "gan.train", "--dry-run"], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr.splitlines()


def _metric_definitions() -> list[dict[str, str]]:
    task = json.loads(ASL.read_text())["States"]["CreateTrainingJob"]
    definitions: list[dict[str, str]] = task["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
    return definitions


def test_sagemaker_charts_the_losses_and_the_similarity_index() -> None:
    names_ = [d["Name"] for d in _metric_definitions()]
    assert {"generator_loss", "critic_loss", "similarity"} <= set(names_)
    assert len(names_) == len(set(names_)) <= 40  # SageMaker's limit per job
    for definition in _metric_definitions():  # MetricDefinition's length limits
        assert 1 <= len(definition["Name"]) <= 255 and 1 <= len(definition["Regex"]) <= 500


@pytest.mark.slow
@pytest.mark.parametrize("metric", [d["Name"] for d in _metric_definitions()])
def test_each_metric_definition_reads_its_value_from_the_trainings_epoch_line(
    training_log: list[str], metric: str
) -> None:
    (regex,) = [d["Regex"] for d in _metric_definitions() if d["Name"] == metric]
    matches = [(line, m) for line in training_log if (m := re.search(regex, line))]
    # One value per epoch (a dry run trains one), from the epoch's line only (not "done: {...}").
    assert len(matches) == 1, [line for line, _ in matches]
    line, match = matches[0]
    logged = dict(token.split("=", 1) for token in line.split() if "=" in token)
    assert float(match.group(1)) == float(logged[metric])
