"""The stream handler against moto: records read from the Jobs table's real stream."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from contracts import datasets, functions, hyperparameters, storage, training
from lambdas.common import env
from lambdas.common.dal import Executions
from lambdas.common.errors import ExecutionRefusedError, ExecutionStartError, ExecutionUnavailableError
from lambdas.common.starting import sagemaker_channel
from tests.unit.conftest import BUCKET, TABLE, call_api, deliver, failing_calls, put_job_item, stream_records

PASS_MACHINE = json.dumps({"StartAt": "Noop", "States": {"Noop": {"Type": "Pass", "End": True}}})


@pytest.fixture
def machine(aws: None) -> str:
    # The stream's concern ends at StartExecution: the definition run does not matter here.
    return boto3.client("stepfunctions").create_state_machine(
        name="training", definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/states"
    )["stateMachineArn"]


def executions(machine: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    found = sfn.list_executions(stateMachineArn=machine)["executions"]
    return [
        {**e, "input": json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])}
        for e in found
    ]


def sequence_number(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def test_a_job_insert_starts_one_execution_named_after_the_job(machine: str) -> None:
    job = call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 3, "learning_rate": 0.0005}}).body

    response = deliver(stream_records())

    assert response == {"batchItemFailures": []}
    [execution] = executions(machine)
    assert execution["name"] == job["job_id"]
    assert execution["input"] == {
        "job_id": job["job_id"],
        "hyperparameters": {
            **hyperparameters.as_sagemaker(hyperparameters.DEFAULTS),
            "epochs": "3",
            "learning_rate": "0.0005",
        },
        # the Bach chorales are in the image: the melody is the one channel
        "input_data_config": [
            sagemaker_channel(BUCKET, training.MELODY_CHANNEL, storage.melody_key(job["job_id"]))],
    }


def test_a_job_on_a_users_dataset_starts_with_its_channel_and_its_tags(machine: str) -> None:
    dataset_id = "e" * 32
    tags = ["mode:minor", "key:f#-minor"]
    training_data = {"dataset": dataset_id, "tags": tags, "pieces": 4, "windows": 99}
    put_job_item("a" * 32, "SUBMITTED", training_data=training_data)

    assert deliver(stream_records()) == {"batchItemFailures": []}

    [execution] = executions(machine)
    assert execution["input"]["input_data_config"] == [
        sagemaker_channel(BUCKET, training.MELODY_CHANNEL, storage.melody_key("a" * 32)),
        sagemaker_channel(BUCKET, datasets.DATASET_CHANNEL, datasets.built_prefix(dataset_id)),
    ]
    assert execution["input"]["input_data_config"][1]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{BUCKET}/datasets/{dataset_id}/built/")
    assert json.loads(execution["input"]["hyperparameters"][datasets.TAGS_HYPERPARAMETER]) == tags


def test_the_chorales_filtered_by_tags_get_the_tags_and_no_dataset_channel(machine: str) -> None:
    put_job_item("a" * 32, "SUBMITTED", training_data={
        "dataset": datasets.BACH_DATASET_ID, "tags": ["mode:major"], "pieces": 200, "windows": 5000})
    # a job item from before datasets: the chorales, unfiltered
    put_job_item("b" * 32, "SUBMITTED")

    assert deliver(stream_records()) == {"batchItemFailures": []}

    started = {e["name"]: e["input"] for e in executions(machine)}
    assert [c["ChannelName"] for c in started["a" * 32]["input_data_config"]] == [training.MELODY_CHANNEL]
    assert started["a" * 32]["hyperparameters"][datasets.TAGS_HYPERPARAMETER] == '["mode:major"]'
    assert [c["ChannelName"] for c in started["b" * 32]["input_data_config"]] == [training.MELODY_CHANNEL]
    assert datasets.TAGS_HYPERPARAMETER not in started["b" * 32]["hyperparameters"]


@pytest.mark.parametrize(
    "training_data",
    [{"dataset": "../other/", "tags": []}, {"dataset": "bach-chorales", "tags": ["Not A Tag"]},
     {"dataset": "bach-chorales", "tags": "mode:minor"}, "bach-chorales"],
)
def test_a_job_item_with_a_bad_dataset_or_tags_ends_failed(
    machine: str, training_data: Any
) -> None:
    put_job_item("b" * 32, "SUBMITTED", training_data=training_data)

    response = deliver(stream_records())

    assert len(response["batchItemFailures"]) == 1 and executions(machine) == []
    failed = boto3.resource("dynamodb").Table(TABLE).get_item(Key=storage.job_key("b" * 32))["Item"]
    assert failed["status"] == "FAILED" and "could not be started" in failed["failure_reason"]


def test_a_duplicate_delivery_starts_nothing_twice(machine: str) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    records = stream_records()

    first = deliver(records + copy.deepcopy(records))
    again = deliver(copy.deepcopy(records))

    assert first == again == {"batchItemFailures": []}
    assert [e["name"] for e in executions(machine)] == [job_id]


def test_records_other_than_a_job_insert_are_ignored(machine: str) -> None:
    # An idempotency item, epoch items, a status change and a deletion all reach the stream.
    job_id = call_api("POST", "/jobs", headers={"Idempotency-Key": "k"}).body["job_id"]
    table = boto3.resource("dynamodb").Table(TABLE)
    table.put_item(
        Item={"pk": storage.job_pk(job_id), "sk": storage.epoch_sk(1), "item_type": "epoch", "epoch": 1}
    )
    call_api("POST", f"/jobs/{job_id}/stop")
    table.update_item(
        Key={"pk": storage.job_pk(job_id), "sk": "JOB"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "STOPPED"},
    )
    call_api("DELETE", f"/jobs/{job_id}")
    records = stream_records()
    others = [
        r for r in records if not (r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["sk"] == {"S": "JOB"})
    ]
    assert {r["eventName"] for r in others} == {"INSERT", "MODIFY", "REMOVE"}

    response = deliver(others)

    assert response == {"batchItemFailures": []}
    assert executions(machine) == []


def test_a_malformed_record_is_reported_and_the_rest_of_the_batch_still_runs(machine: str) -> None:
    good = call_api("POST", "/jobs").body["job_id"]
    put_job_item("b" * 32, "SUBMITTED", hyperparameters={"epochs": 0})
    records = stream_records()
    bad = [r for r in records if r["dynamodb"]["Keys"]["pk"] == {"S": storage.job_pk("b" * 32)}]
    no_id = copy.deepcopy(bad[0])
    del no_id["dynamodb"]["NewImage"]["job_id"]
    no_id["dynamodb"]["SequenceNumber"] = "999999"

    response = deliver([*bad, *records[:1], no_id])

    assert response == {
        "batchItemFailures": [{"itemIdentifier": sequence_number(bad[0])}, {"itemIdentifier": "999999"}]
    }
    assert [e["name"] for e in executions(machine)] == [good]
    # A job that can never start does not wait in SUBMITTED for ever.
    failed = call_api("GET", f"/jobs/{'b' * 32}").body
    assert failed["status"] == "FAILED"
    assert "hyperparameters" in failed["failure_reason"] and "epochs" in failed["failure_reason"]


def test_a_throttled_start_is_reported_for_a_retry_and_the_job_stays_submitted(
    machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    records = stream_records()
    real = BaseClient._make_api_call

    def throttled(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StartExecution":
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation
            )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", throttled)
    response = deliver(records)
    monkeypatch.setattr(BaseClient, "_make_api_call", real)
    retried = deliver(records)

    assert response == {"batchItemFailures": [{"itemIdentifier": sequence_number(records[0])}]}
    assert retried == {"batchItemFailures": []}
    assert [e["name"] for e in executions(machine)] == [job_id]
    assert call_api("GET", f"/jobs/{job_id}").body["status"] == "SUBMITTED"


def test_a_start_refused_for_good_ends_the_job_failed(machine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    monkeypatch.setenv(functions.ENV_STATE_MACHINE_ARN, machine.replace(":training", ":deleted-machine"))
    env.stream_env.cache_clear()

    response = deliver(stream_records())

    assert len(response["batchItemFailures"]) == 1
    job = call_api("GET", f"/jobs/{job_id}").body
    assert job["status"] == "FAILED"
    assert "StateMachineDoesNotExist" in job["failure_reason"]


# --- data access: StartExecution's answers ---------------------------------------------------
def test_an_execution_that_exists_already_counts_as_started(machine: str) -> None:
    training = Executions(machine)

    assert training.start("a" * 32, {"job_id": "a" * 32}) is True
    # Step Functions answers the same input to a running execution with that execution (moto
    # too), a different input, or a closed execution's name, with ExecutionAlreadyExists.
    assert training.start("a" * 32, {"job_id": "a" * 32, "again": True}) is False
    assert [e["name"] for e in executions(machine)] == ["a" * 32]


def test_a_state_machine_that_does_not_exist_refuses_for_good(machine: str) -> None:
    with pytest.raises(ExecutionRefusedError) as refused:
        Executions(machine.replace(":training", ":deleted-machine")).start("a" * 32, {})

    assert refused.value.code == "StateMachineDoesNotExist" and refused.value.message


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        *((code, ExecutionRefusedError) for code in sorted(Executions.PERMANENT_ERRORS)),
        ("ThrottlingException", ExecutionUnavailableError),
        ("ServiceUnavailable", ExecutionUnavailableError),
        ("InternalServerError", ExecutionUnavailableError),
    ],
)
def test_start_execution_errors_become_domain_errors_with_their_code_and_message(
    machine: str, code: str, kind: type[ExecutionStartError]
) -> None:
    with failing_calls({"StartExecution": code}), pytest.raises(kind) as raised:
        Executions(machine).start("a" * 32, {})

    assert (raised.value.code, raised.value.message) == (code, "injected by the test")
    assert isinstance(raised.value.__cause__, ClientError)
