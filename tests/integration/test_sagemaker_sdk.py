"""The SageMaker Python SDK path (examples/train_with_sagemaker_sdk.py, docs/sagemaker-sdk.md):
`ModelTrainer` jobs created by the SDK itself against the local stack's moto endpoint, where
the local runner trains them as it trains the state machine's jobs. One stack for the module;
its two jobs run one after another: a tiny one to Completed, and one whose training fails.

Needs the `sagemaker` extra, which the `dev` extra includes (so `make test` runs this).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pretty_midi
import pytest
import torch

from contracts import hyperparameters
from opencomposer.local.resources import LocalNames

pytestmark = [
    pytest.mark.slow,
    # The SDK's own ModelTrainer imports its deprecated `sagemaker.train.configs` (1.27.0).
    pytest.mark.filterwarnings("ignore:sagemaker.train.configs has been moved:DeprecationWarning"),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_with_sagemaker_sdk.py"
TINY = {"epochs": 1, "learning_rate": 0.002, "update_ratio": 1, "batch_size": 16, "seed": 3}


def _load_example() -> ModuleType:
    """The example as users run it: a script, not a package module."""
    spec = importlib.util.spec_from_file_location("train_with_sagemaker_sdk", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _archive(s3: Any, uri: str) -> dict[str, bytes]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {
            member.name.removeprefix("./"): tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def _melody_pitches(midi: bytes) -> list[int]:
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    notes = next(i for i in pm.instruments if i.notes).notes
    return [n.pitch for n in sorted(notes, key=lambda n: (n.start, n.pitch))]


class Local(NamedTuple):
    example: ModuleType
    deployment: Any  # example.Deployment
    endpoint_url: str


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    example = _load_example()
    with example.local_aws() as deployment:
        yield Local(example, deployment, os.environ["AWS_ENDPOINT_URL"])


@pytest.fixture
def session(local: Local, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK's session on the local stack, and a check that it sends no telemetry."""
    import boto3
    from sagemaker.core.telemetry import telemetry_logging

    # tests/conftest.py clears every AWS_ variable before each test: the endpoint goes back.
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
    # The SDK's usage reports go to AWS over plain HTTPS: the example turns them off for the
    # local stack, and this fails the test if one is still attempted.
    sent: list[Any] = []
    monkeypatch.setattr(telemetry_logging, "_send_telemetry_request", lambda *a, **k: sent.append(a))
    yield local.example.sagemaker_session(boto3.session.Session(region_name=local.deployment.region),
                                          telemetry=False)
    assert sent == []


def test_a_model_trainer_job_trains_on_the_local_stack(local: Local, session: Any) -> None:
    example, deployment = local.example, local.deployment
    # Given the stack's training values, read from its state machine as on AWS
    names = LocalNames()
    assert deployment == example.Deployment(
        image=names.training_image,
        role_arn=names.role_arn("training"),
        bucket=names.bucket,
        job_prefix=names.training_job_prefix,
        region=names.region,
    )
    boto_session = session.boto_session
    run = example.new_run(deployment)
    melody = example.sample_melody("ode-to-joy")

    # When the SDK trains one tiny epoch
    result = example.train(session, run, melody, TINY)

    # Then SageMaker (moto, driven by the local runner) ran the job the SDK described
    assert result.status == "Completed"
    described = boto_session.client("sagemaker").describe_training_job(
        TrainingJobName=result.training_job_name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert result.training_job_name.startswith(f"{deployment.job_prefix}-sdk-")
    assert described["AlgorithmSpecification"]["TrainingImage"] == deployment.image
    assert described["RoleArn"] == deployment.role_arn
    # every hyperparameter, as the API passes them: the defaults of those TINY leaves out
    assert described["HyperParameters"] == {
        name: str(value) for name, value in {**hyperparameters.DEFAULTS, **TINY}.items()}
    assert [c["ChannelName"] for c in described["InputDataConfig"]] == ["melody"]

    # and the model is where the SDK says: model.tar.gz under the run's output path, holding
    # the generator after its one epoch
    s3 = boto_session.client("s3")
    job_output = f"{run.output_path}{result.training_job_name}/output/"
    assert result.model_uri == job_output + "model.tar.gz"
    model = torch.load(io.BytesIO(_archive(s3, result.model_uri)["model.pt"]), weights_only=True)
    assert model["epoch"] == 1
    assert model["hyperparameters"] == {**hyperparameters.DEFAULTS, **TINY}

    # and the training's own output (no job table to report to) is output.tar.gz beside it:
    # its one epoch's progress and the melody accompanied, 4 tracks, the melody unchanged
    assert result.output_uri == job_output + "output.tar.gz"
    output = _archive(s3, result.output_uri)
    events = [json.loads(line) for line in output["progress.jsonl"].decode().splitlines()]
    assert [(e["epoch"], e["epochs"]) for e in events if e["event"] == "epoch"] == [(1, 1)]
    final = example.read_output_file(s3, result.output_uri)
    assert final == output["final.mid"]
    composition = pretty_midi.PrettyMIDI(io.BytesIO(final))
    assert len(composition.instruments) == 4
    assert _melody_pitches(final) == _melody_pitches(melody)

    # and no job of the API was made: the SDK path bypasses the jobs table
    table = boto_session.client("dynamodb").scan(TableName=names.table, Select="COUNT")
    assert table["Count"] == 0


def test_a_job_whose_training_fails_ends_failed_with_the_trainings_reason(local: Local, session: Any) -> None:
    # Given a "melody" that is not MIDI: the training refuses it before it trains
    run = local.example.new_run(local.deployment)

    # When the SDK runs it
    result = local.example.train(session, run, b"not a MIDI file", TINY)

    # Then the job ended Failed, the reason is the training's own (the failure file SageMaker
    # reads, as the local runner does), and nothing claims a model
    assert result.status == "Failed"
    assert result.failure_reason is not None
    assert "melody cannot be used" in result.failure_reason, result.failure_reason
    assert result.model_uri == ""
