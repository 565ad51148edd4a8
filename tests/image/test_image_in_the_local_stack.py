"""The local stack with `OPENCOMPOSER_TRAINING_RUNTIME=docker`: a job trains inside the training
image, as SageMaker runs it, and its outputs are where the API finds them."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pretty_midi
import pytest

from contracts import names, statuses
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack

pytestmark = pytest.mark.slow


def test_a_two_epoch_job_in_the_image_writes_progress_samples_composition_and_model(
    stack: LocalStack, tmp_path: Path
) -> None:
    client = Client(stack.api_url)
    # Given a 2-epoch job with a sample melody, submitted over HTTP
    hyperparameters = {"epochs": 2, "batch_size": 16, "update_ratio": 1, "seed": 3}
    job = client.submit({"name": "in the image", "hyperparameters": hyperparameters,
                         "melody": {"sample": "ode-to-joy"}})

    # When it trains (in the image: the training job's log is the docker client's)
    done = client.wait(job["job_id"], interval=1, timeout=900)
    log = stack.logs_dir / f"{names.training_job_name(stack.names.training_job_prefix, job['job_id'])}.log"
    text = log.read_text()
    assert done["status"] == statuses.COMPLETED, f"{done.get('failure_reason')}\n{text[-3000:]}"
    assert "Invoking: docker run" in text and "Process exited with code 0" in text

    # Then the API finds its progress: both epochs, with their metrics
    assert done["progress"]["epoch"] == 2 and done["progress"]["epochs"] == 2
    assert {"generator_loss", "critic_loss", "similarity"} <= set(done["progress"]["metrics"])
    assert [e["epoch"] for e in client.metrics(job["job_id"])["epochs"]] == [1, 2]
    # its sample (the last epoch's) and its final composition, as MIDI through presigned URLs
    listed = {c["name"] for c in client.compositions(job["job_id"])["compositions"]}
    assert {"final", "epoch-0002"} <= listed, listed
    files = {p.stem: p for p in client.download(job["job_id"], tmp_path / "out")}
    final = pretty_midi.PrettyMIDI(str(files["final"]))
    assert len(final.instruments) == 4 and all(i.notes for i in final.instruments)
    # and its model, the model.tar.gz SageMaker would upload from /opt/ml/model
    client.fetch(client.model(job["job_id"])["url"], tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        assert "model.pt" in archive.getnames()
