"""The local stack with `OPENCOMPOSER_TRAINING_RUNTIME=docker`: a job trains inside the training
image, as SageMaker runs it, and its outputs are where the API finds them; then the compose
function's image, its handler invoked inside it (training_container/image/invoke_compose.py),
accompanies a melody with that job's model."""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import pretty_midi
import pytest

from contracts import events, functions, names, statuses
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack

pytestmark = pytest.mark.slow


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training_container" / "image"))
from invoke_compose import invoke  # noqa: E402 - a script's module, beside the build scripts

COMPOSE_IMAGE = os.environ.get("OPENCOMPOSER_COMPOSE_IMAGE", "opencomposer-compose:local")


def test_a_two_epoch_job_in_the_image_writes_progress_samples_composition_and_model_and_composes(
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

    # And the compose function's image, its handler run inside it against the same moto,
    # accompanies a sample melody with that model (POST /jobs/{job_id}/compositions)
    function = stack.names.function_name(functions.COMPOSE.key)
    configured = stack.client("lambda").get_function_configuration(FunctionName=function)
    environment = {
        **configured["Environment"]["Variables"],
        "AWS_ENDPOINT_URL": stack.moto_url,
        "AWS_REGION": stack.names.region,
        "AWS_DEFAULT_REGION": stack.names.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": function,
    }
    body = json.dumps({"melody": {"sample": "twinkle-twinkle"}, "seed": 1}).encode()
    event = events.api_gateway_event(
        "POST", f"/jobs/{job['job_id']}/compositions", [("Content-Type", "application/json")], body,
        stage="local", source_ip="127.0.0.1",
    )
    answer = invoke(COMPOSE_IMAGE, event, environment)
    assert answer["statusCode"] == 201, answer
    composition = json.loads(answer["body"])
    client.fetch(composition["url"], tmp_path / "composed.mid")
    composed = pretty_midi.PrettyMIDI(str(tmp_path / "composed.mid"))
    assert len(composed.instruments) == 4 and all(i.notes for i in composed.instruments)
