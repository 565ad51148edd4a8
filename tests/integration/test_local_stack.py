"""The whole local stack in this process, driven over HTTP as a user drives it.

One stack for the module; its jobs run one after another, so the two cores never train twice at
once: a tiny job to COMPLETED and its MIDI through the presigned
URL, a job whose training fails, and a job stopped while it trains.
"""

from __future__ import annotations

import base64
import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pretty_midi
import pytest

from contracts import names, statuses, storage
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

# Two bars of 4/4 with a repeated note (which must stay two notes), quarters and eighths.
MELODY = [
    (60, 0.0, 1.0),
    (62, 1.0, 2.0),
    (64, 2.0, 2.5),
    (64, 2.5, 3.0),
    (65, 3.0, 4.0),
    (67, 4.0, 5.0),
    (65, 5.0, 6.0),
    (64, 6.0, 7.0),
    (62, 7.0, 8.0),
]  # (pitch, start, end) in beats
TINY = {"epochs": 1, "batch_size": 16, "update_ratio": 1, "seed": 3}


def _melody_midi() -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    voice = pretty_midi.Instrument(program=0, name="melody")
    seconds_per_beat = 0.5
    for pitch, start, end in MELODY:
        voice.notes.append(pretty_midi.Note(100, pitch, start * seconds_per_beat, end * seconds_per_beat))
    pm.instruments.append(voice)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def _notes_in_beats(pm: pretty_midi.PrettyMIDI, track: int) -> list[tuple[int, float, float]]:
    def beats(t: float) -> float:
        return round(pm.time_to_tick(t) / pm.resolution, 3)

    notes = sorted(pm.instruments[track].notes, key=lambda n: (n.start, n.pitch))
    return [(n.pitch, beats(n.start), beats(n.end)) for n in notes]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-home")
    with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5)) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Client:
    return Client(stack.api_url)


def _wait_for(client: Client, job_id: str, timeout: float = 240) -> dict[str, Any]:
    """The job once its status is final."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(job_id)
        if job["status"] in statuses.FINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
        time.sleep(0.5)


def _execution_ends(stack: LocalStack, job_id: str) -> str:
    """The job's execution (named after the job) must end too: nothing is left running."""
    assert stack.resources is not None
    arn = stack.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
    stepfunctions = stack.client("stepfunctions")
    deadline = time.monotonic() + 20
    while (status := stepfunctions.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, f"execution {job_id} still RUNNING"
        time.sleep(0.2)
    return status  # type: ignore[no-any-return]


def test_a_tiny_job_completes_and_its_midi_accompanies_the_submitted_melody(
    stack: LocalStack, client: Client, tmp_path: Path
) -> None:
    # Given a melody of our own, submitted over HTTP
    job = client.submit(
        {
            "name": "integration",
            "hyperparameters": TINY,
            "melody": {"midi_base64": base64.b64encode(_melody_midi()).decode()},
        }
    )
    assert job["status"] == statuses.SUBMITTED

    # When it trains to the end
    done = client.wait(job["job_id"], interval=0.5, timeout=300)

    # Then it completed, with its model in S3, and its final composition downloads through the
    # presigned URL as a 4-track MIDI whose first track is the melody, note for note
    assert done["status"] == statuses.COMPLETED, done.get("failure_reason")
    assert done["outputs"]["model"] == f"/jobs/{job['job_id']}/model"
    assert "final" in done["outputs"]["compositions"]
    paths = {p.stem: p for p in client.download(job["job_id"], tmp_path / job["job_id"])}
    final = pretty_midi.PrettyMIDI(str(paths["final"]))
    assert len(final.instruments) == 4
    assert all(instrument.notes for instrument in final.instruments)
    assert _notes_in_beats(final, 0) == MELODY
    training_log = (
        stack.logs_dir / f"{names.training_job_name(stack.names.training_job_prefix, job['job_id'])}.log"
    )
    assert training_log.exists()

    # And its model composes: a new melody through HTTP → front door → compose function → model
    # → S3, the same request twice giving the same file, the model itself downloadable
    first = client.compose(job["job_id"], sample="ode-to-joy", seed=1, instruments="strings")
    again = client.compose(job["job_id"], sample="ode-to-joy", seed=1, instruments="strings")
    composed = {name: tmp_path / f"{name}.mid" for name in ("first", "again", "model.tar.gz")}
    client.fetch(first["url"], composed["first"])
    client.fetch(again["url"], composed["again"])
    assert composed["first"].read_bytes() == composed["again"].read_bytes()
    song = pretty_midi.PrettyMIDI(str(composed["first"]))
    assert [i.program for i in song.instruments] == [40, 40, 41, 42] and first["bars"] == 16
    listed = client.compositions(job["job_id"])["compositions"]
    assert [c["composition_id"] for c in listed[:2]] == [again["composition_id"], first["composition_id"]]
    client.fetch(client.model(job["job_id"])["url"], composed["model.tar.gz"])
    with tarfile.open(composed["model.tar.gz"]) as archive:
        assert "model.pt" in archive.getnames()


def test_a_job_whose_training_fails_ends_failed_with_the_trainings_reason(
    stack: LocalStack, client: Client
) -> None:
    # Given a job whose melody in S3 is damaged before the training reads it (the stream mapping
    # is paused so that nothing starts until the damage is done)
    lam = stack.client("lambda")
    assert stack.resources is not None
    lam.update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=False)
    try:
        job = client.submit({"hyperparameters": TINY})
        stack.client("s3").put_object(
            Bucket=stack.names.bucket, Key=storage.melody_key(job["job_id"]), Body=b"this is not MIDI"
        )
    finally:
        lam.update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=True)

    # When it runs
    done = _wait_for(client, job["job_id"])

    # Then it failed, saying what the training found wrong
    assert done["status"] == statuses.FAILED
    assert "not a readable MIDI file" in done["failure_reason"]
    assert _execution_ends(stack, job["job_id"]) == "FAILED"


def test_stop_really_stops_the_training(stack: LocalStack, client: Client) -> None:
    # Given a long job whose training process is running
    job = client.submit({"hyperparameters": {"epochs": 500, "batch_size": 16, "update_ratio": 1}})
    name = names.training_job_name(stack.names.training_job_prefix, job["job_id"])
    sagemaker = stack.client("sagemaker")
    deadline = time.monotonic() + 60
    while True:
        try:
            if sagemaker.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training":
                break
        except sagemaker.exceptions.ClientError:
            pass  # not created yet
        assert time.monotonic() < deadline, "the training job never started"
        time.sleep(0.2)

    # When the user stops it
    assert client.stop(job["job_id"])["status"] == statuses.STOPPING
    done = _wait_for(client, job["job_id"], timeout=60)

    # Then the job and its training job are stopped, and the process has ended
    assert done["status"] == statuses.STOPPED
    assert sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"
    assert "Process exited with code" in (stack.logs_dir / f"{name}.log").read_text()
    assert _execution_ends(stack, job["job_id"]) == "FAILED"
