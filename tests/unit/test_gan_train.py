"""The training entry point under SageMaker's contract: hyperparameters, dry run, resume, failure
file, SIGTERM, a real short training run, and the reporter's sinks (DynamoDB and S3 on moto)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, fields
from decimal import Decimal
from pathlib import Path
from typing import get_type_hints
from unittest.mock import patch

import boto3
import numpy as np
import pytest
from botocore.client import BaseClient

from contracts import storage, training
from contracts.hyperparameters import DEFAULTS, HYPERPARAMETERS, Hyperparameter
from gan import data as gan_data
from gan import midi
from gan.generate import accompany, load_generator
from gan.reporter import PROGRESS_FILE, Reporter
from gan.train import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    Hyperparameters,
    Paths,
    main,
    parse_args,
    read_hyperparameters,
    train,
)

TABLE, BUCKET, JOB_ID = "jobs", "artifacts", "0123456789abcdef0123456789abcdef"


def _sagemaker_env(tmp_path: Path, melody: bytes | None = None) -> dict[str, str]:
    env = {
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
        "SM_INPUT_CONFIG_DIR": str(tmp_path / "input" / "config"),
    }
    if melody is not None:
        channel = tmp_path / "input" / "data" / "melody"
        channel.mkdir(parents=True)
        (channel / "melody.mid").write_bytes(melody)
        env["SM_CHANNEL_MELODY"] = str(channel)
    return env


def _progress(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "output" / "data" / PROGRESS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines]


def _melody_midi(bars: int = 4) -> bytes:
    steps = bars * 16
    pitches = np.repeat(np.array([67, 69, 71, 72] * bars, dtype=np.uint8), 4)[:steps]
    onsets = np.zeros(steps, dtype=bool)
    onsets[::4] = True
    return midi.write_chorale(pitches[None], onsets[None], tempo_bpm=90, steps_per_bar=16)


@pytest.fixture(scope="module")
def small_splits() -> gan_data.Splits:
    splits = gan_data.load_chorales()
    return gan_data.Splits(splits.train[:12], splits.validation[:2], splits.test[:2])


# --- hyperparameters ---------------------------------------------------------------------------


def test_the_hyperparameters_are_the_contracts_names_types_and_defaults():
    types = get_type_hints(Hyperparameters)

    assert [f.name for f in fields(Hyperparameters)] == [spec.name for spec in HYPERPARAMETERS]
    assert {name: types[name] for name in DEFAULTS} == {spec.name: spec.kind for spec in HYPERPARAMETERS}
    assert asdict(Hyperparameters()) == DEFAULTS


@pytest.mark.parametrize("spec", [s for s in HYPERPARAMETERS if not s.choices], ids=lambda spec: spec.name)
def test_the_container_accepts_exactly_the_contracts_range(spec: Hyperparameter):
    step = 1e-9 if spec.kind is float else 1
    if spec.exclusive:
        accepted, refused = [spec.minimum + step, spec.maximum - step], [spec.minimum, spec.maximum]
    else:
        accepted, refused = [spec.minimum, spec.maximum], [spec.minimum - step, spec.maximum + step]

    for value in accepted:  # as SageMaker passes it: a string
        assert getattr(Hyperparameters.parse({spec.name: str(value)}), spec.name) == value
    for value in refused:
        with pytest.raises(ValueError, match=f"hyperparameter {spec.name}: "):
            Hyperparameters.parse({spec.name: str(value)})


def test_every_hyperparameter_is_a_flag_with_the_contracts_help(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])

    text = " ".join(capsys.readouterr().out.split())
    for spec in HYPERPARAMETERS:
        assert f"--{spec.name} {spec.name.upper()} {spec.help}" in text


def test_hyperparameters_arrive_as_strings_and_flags_win(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "hyperparameters.json").write_text(json.dumps({"epochs": "7", "batch_size": "32", "seed": "1"}))
    environ = {
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_HPS": json.dumps({"learning_rate": "0.0005", "seed": "2"}),
    }

    hp = read_hyperparameters(parse_args(["--seed", "3", "--update_ratio", "2"]), environ)

    assert hp == Hyperparameters(epochs=7, learning_rate=0.0005, update_ratio=2, batch_size=32, seed=3)


def test_sagemaker_extras_are_ignored():
    args = parse_args(["train", "--epochs", "2", "--sagemaker_program", "gan/train.py"])

    assert read_hyperparameters(args, {}).epochs == 2


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"epochs": "0"}, "epochs"),
        ({"learning_rate": "1.5"}, "learning_rate"),
        ({"batch_size": "many"}, "batch_size"),
        ({"update_ratio": "2.5"}, "update_ratio"),
    ],
)
def test_a_bad_hyperparameter_is_named(values, field):
    with pytest.raises(ValueError, match=field):
        Hyperparameters.parse(values)


def test_paths_follow_the_sagemaker_variables_never_opt_ml(tmp_path):
    paths = Paths.from_env(_sagemaker_env(tmp_path))

    assert paths.checkpoints == tmp_path / "checkpoints"
    assert paths.failure == tmp_path / "output" / "failure"
    assert "/opt/ml" not in str(Paths.from_env({}))


# --- failures ----------------------------------------------------------------------------------


def test_an_unreadable_melody_fails_at_once_with_a_readable_reason(tmp_path):
    env = _sagemaker_env(tmp_path, melody=b"this is not a MIDI file")

    code = main([], env)

    assert code != 0
    reason = (tmp_path / "output" / "failure").read_text()
    assert "melody" in reason and "not a readable MIDI file" in reason
    assert not (tmp_path / "model" / MODEL_FILE).exists()


def test_a_bad_hyperparameter_fails_the_job_naming_it(tmp_path):
    env = {**_sagemaker_env(tmp_path), "SM_HPS": json.dumps({"batch_size": "0"})}

    assert main([], env) != 0
    assert "batch_size" in (tmp_path / "output" / "failure").read_text()


def test_a_training_folder_without_usable_midi_fails_naming_the_files(tmp_path):
    folder = tmp_path / "input" / "data" / "training"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("hello")
    env = {**_sagemaker_env(tmp_path), "SM_CHANNEL_TRAINING": str(folder)}

    assert main([], env) != 0
    assert "notes.txt" in (tmp_path / "output" / "failure").read_text()


# --- training ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_dry_run_checks_one_whole_cycle(tmp_path):
    env = _sagemaker_env(tmp_path, melody=_melody_midi())

    assert main(["--dry-run"], env) == 0

    events = [e["event"] for e in _progress(tmp_path)]
    assert events == ["reference", "epoch", "sample", "compositions"]
    assert (tmp_path / "model" / MODEL_FILE).exists()
    assert (tmp_path / "checkpoints" / CHECKPOINT_FILE).exists()


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(tmp_path, small_splits):
    paths = Paths.from_env(_sagemaker_env(tmp_path))
    reporter = Reporter.from_env(paths.output, {})
    train(Hyperparameters(epochs=1, update_ratio=1, batch_size=8), paths, reporter, None, small_splits, 2)

    # Given a job stopped after epoch 1 (a spot interruption), when it runs again with 2 epochs
    train(Hyperparameters(epochs=2, update_ratio=1, batch_size=8), paths, reporter, None, small_splits, 2)

    epochs = [e["epoch"] for e in _progress(tmp_path) if e["event"] == "epoch"]
    assert epochs == [1, 2]  # epoch 1 was not trained again
    saved = __import__("torch").load(paths.model / MODEL_FILE, weights_only=False)
    assert saved["epoch"] == 2


@pytest.mark.slow
def test_a_real_short_training_writes_a_model_progress_and_midi_to_dynamodb_and_s3(tmp_path):
    from moto import mock_aws

    melody = _melody_midi(bars=6)
    env = {
        **_sagemaker_env(tmp_path, melody=melody),
        "SM_HPS": json.dumps({"epochs": "2", "update_ratio": "2", "batch_size": "16", "seed": "4"}),
        training.ENV_TABLE: TABLE,
        training.ENV_BUCKET: BUCKET,
        training.ENV_JOB_ID: JOB_ID,
        training.ENV_REGION: "us-east-1",  # the job's Environment gives it: SageMaker sets none
    }
    with mock_aws():
        table = _create_job(status="STARTING")

        code = main([], env)

        assert code == 0
        job = table.get_item(Key=_job_key())["Item"]
        assert job["status"] == "TRAINING"  # the state machine, not the container, completes it
        assert job["progress"]["epoch"] == 2 and job["progress"]["epochs"] == 2
        assert 0 <= job["progress"]["metrics"]["similarity"] <= 1
        assert job["reference"]["consonance"] > Decimal("0.85")  # Bach's own values
        assert job["compositions"] == ["final"]
        epochs = table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
            ExpressionAttributeValues={":pk": storage.job_pk(JOB_ID), ":e": "EPOCH#"},
        )["Items"]
        assert [int(e["epoch"]) for e in epochs] == [1, 2]
        assert {"generator_loss", "critic_loss", "consonance", "in_key_ratio"} <= set(epochs[0]["metrics"])
        s3 = boto3.client("s3")
        final = s3.get_object(Bucket=BUCKET, Key=storage.composition_key(JOB_ID, "final"))["Body"].read()
        s3.head_object(Bucket=BUCKET, Key=storage.sample_key(JOB_ID, 2))

    tracks = midi.read_tracks(final)
    melody_in = midi.read_melody(melody)
    assert tracks.pitches.shape[0] == 4
    assert np.array_equal(tracks.pitches[0], melody_in.pitches)  # the melody passes through unchanged
    assert tracks.tempo_bpm == pytest.approx(90)
    assert (tmp_path / "output" / "data" / "final.mid").read_bytes() == final
    # the model it wrote accompanies a melody the same way for the same seed
    generator = load_generator(tmp_path / "model" / MODEL_FILE)
    assert accompany(generator, melody, seed=4) == accompany(generator, melody, seed=4)


@pytest.mark.slow
def test_a_training_channel_of_user_midi_is_trained_on_and_rejected_files_are_named(
    tmp_path, small_splits, caplog
):
    folder = tmp_path / "input" / "data" / "training"
    folder.mkdir(parents=True)
    for piece in small_splits.train[:4]:
        (folder / f"{piece.name}.mid").write_bytes(
            midi.write_chorale(piece.pitches, piece.onsets, tempo_bpm=100, steps_per_bar=piece.steps_per_bar)
        )
    (folder / "broken.mid").write_bytes(b"not MIDI")
    hps = {"epochs": "1", "update_ratio": "1", "batch_size": "8"}
    env = {**_sagemaker_env(tmp_path), "SM_CHANNEL_TRAINING": str(folder), "SM_HPS": json.dumps(hps)}

    with caplog.at_level("INFO", logger="gan.train"):
        assert main([], env) == 0

    assert "training file broken.mid rejected" in caplog.text
    assert "training on 4 of the user's pieces (1 rejected)" in caplog.text
    assert (tmp_path / "model" / MODEL_FILE).exists()


@pytest.mark.slow
def test_sigterm_stops_training_promptly(tmp_path):
    env = {
        **os.environ,
        **_sagemaker_env(tmp_path),
        "SM_HPS": json.dumps({"epochs": "1000"}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gan.train"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    progress = tmp_path / "output" / "data" / PROGRESS_FILE
    deadline = time.monotonic() + 60
    while not progress.exists() and time.monotonic() < deadline:  # training has begun
        time.sleep(0.2)

    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = process.wait(timeout=30)

    assert time.monotonic() - started < 5
    assert code == 128 + signal.SIGTERM
    assert not (tmp_path / "output" / "failure").exists()  # a stop is not a failure


# --- the reporter's sinks ------------------------------------------------------------------------


def _job_key() -> dict[str, str]:
    return {storage.PARTITION_KEY: storage.job_pk(JOB_ID), storage.SORT_KEY: storage.JOB_SORT_KEY_VALUE}


def _create_job(status: str):
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    if status:
        table.put_item(
            Item={**_job_key(), storage.ITEM_TYPE: storage.JOB_ITEM, "job_id": JOB_ID, "status": status}
        )
    return table


def _job_environment(region: str | None = "us-east-1") -> dict[str, str]:
    """What the state machine's CreateTrainingJob gives the container (the region under both
    names, as contracts.training.REGION_ENVIRONMENT)."""
    env = {training.ENV_TABLE: TABLE, training.ENV_BUCKET: BUCKET, training.ENV_JOB_ID: JOB_ID}
    if region is not None:
        env.update({name: region for name in training.REGION_ENVIRONMENT})
    return env


def _aws_reporter(tmp_path: Path) -> Reporter:
    return Reporter.from_env(tmp_path, _job_environment())


def test_the_aws_clients_take_the_region_from_the_jobs_environment_only(tmp_path, monkeypatch):
    # Given a process with no region of its own, as a SageMaker training container
    for name in training.REGION_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)

    # When the job's Environment names one, every client is built for it
    reporter = Reporter.from_env(tmp_path, _job_environment(region="eu-west-3"))
    (sink,) = [s for s in reporter.sinks if type(s).__name__ == "AwsSink"]
    assert sink.s3.meta.region_name == "eu-west-3"
    assert sink.table.meta.client.meta.region_name == "eu-west-3"

    # and without one, the job fails at once, naming what is missing, not after the training
    with pytest.raises(RuntimeError, match="AWS_REGION"):
        Reporter.from_env(tmp_path, _job_environment(region=None))


def test_reporter_writes_the_job_items_and_midi():
    from moto import mock_aws

    with mock_aws():
        table = _create_job(status="STARTING")
        reporter = _aws_reporter(Path(os.devnull).parent / "tmp" / f"reporter-{os.getpid()}")

        reporter.reference({"consonance": 0.918})
        reporter.epoch(1, 3, {"generator_loss": 1.5, "critic_loss": -0.25, "similarity": float("nan")})
        reporter.sample(1, b"MThd sample")
        reporter.compositions({"final": b"MThd final"})

        job = table.get_item(Key=_job_key())["Item"]
        assert job["status"] == "TRAINING"
        assert job["reference"] == {"consonance": Decimal("0.918")}
        assert job["progress"] == {
            "epoch": 1,
            "epochs": 3,
            "metrics": {
                "generator_loss": Decimal("1.5"),
                "critic_loss": Decimal("-0.25"),
                "similarity": None,
            },
        }
        assert job["compositions"] == ["final"]
        assert job["updated_at"].endswith("Z")
        item = table.get_item(Key={"pk": storage.job_pk(JOB_ID), "sk": storage.epoch_sk(1)})["Item"]
        assert item[storage.ITEM_TYPE] == storage.EPOCH_ITEM and item["metrics"][
            "generator_loss"
        ] == Decimal("1.5")
        s3 = boto3.client("s3")
        assert (
            s3.get_object(Bucket=BUCKET, Key=storage.sample_key(JOB_ID, 1))["Body"].read() == b"MThd sample"
        )
        tags = s3.get_object_tagging(Bucket=BUCKET, Key=storage.sample_key(JOB_ID, 1))["TagSet"]
        assert tags == [{"Key": storage.SAMPLE_TAG_KEY, "Value": storage.SAMPLE_TAG_VALUE}]  # lifecycle
        assert (
            s3.get_object(Bucket=BUCKET, Key=storage.composition_key(JOB_ID, "final"))["Body"].read()
            == b"MThd final"
        )


def test_a_job_stopped_before_its_training_began_ends_the_training_at_its_first_report(tmp_path):
    """The stop found no training job to SIGTERM; the first report finds STOPPING and ends the
    training, and never moves the job back to TRAINING."""
    from moto import mock_aws

    from gan.reporter import Stopped

    with mock_aws():
        table = _create_job(status="STOPPING")

        reporter = _aws_reporter(tmp_path)
        calls: list[str] = []
        real_call = BaseClient._make_api_call

        def recording(self, operation, params):  # type: ignore[no-untyped-def]
            if self.meta.service_model.service_name == "dynamodb":
                calls.append(operation)
            return real_call(self, operation, params)

        with patch.object(BaseClient, "_make_api_call", recording), pytest.raises(Stopped):
            reporter.epoch(1, 3, {"generator_loss": 1.0})

        assert table.get_item(Key=_job_key())["Item"]["status"] == "STOPPING"
        # The status came back with the failed conditional update itself: the training role
        # holds no dynamodb:GetItem (infra/components/training.py), so a read would be denied.
        assert "GetItem" not in calls and calls[-1] == "UpdateItem"
        assert set(calls) <= {"PutItem", "UpdateItem"}


def test_reporter_never_recreates_a_deleted_job_and_training_goes_on(tmp_path):
    from moto import mock_aws

    with mock_aws():
        table = _create_job(status="")

        _aws_reporter(tmp_path).epoch(1, 3, {"generator_loss": 1.0})  # best effort: no exception

        assert "Item" not in table.get_item(Key=_job_key())
        assert json.loads((tmp_path / PROGRESS_FILE).read_text())["epoch"] == 1  # the local file has it


def test_a_failed_final_upload_fails_the_job(tmp_path):
    from moto import mock_aws

    with mock_aws():
        _create_job(status="TRAINING")
        boto3.client("s3").delete_bucket(Bucket=BUCKET)

        with pytest.raises(Exception, match="NoSuchBucket"):
            _aws_reporter(tmp_path).compositions({"final": b"MThd"})


# --- datasets and filtering tags (issue 12) ------------------------------------------------------


def _built_dataset(tmp_path: Path, folders: dict[str, list[gan_data.Chorale]]) -> Path:
    """A dataset built by the builder from a zip of chorales written as MIDI, one folder each."""
    import zipfile

    from gan import datasets as gan_datasets

    archive = tmp_path / "collection.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as opened:
        for folder, pieces in folders.items():
            for piece in pieces:
                data = midi.write_chorale(
                    piece.pitches, piece.onsets, tempo_bpm=100, steps_per_bar=piece.steps_per_bar
                )
                opened.writestr(f"{folder}/{piece.name}.mid", data)
    channel = tmp_path / "input" / "data" / "dataset"
    gan_datasets.build_zip(archive, channel, workers=1, cache_dir=tmp_path / "piece-cache")
    return channel


@pytest.mark.slow
def test_a_dataset_channel_filtered_by_tags_trains_on_the_tagged_pieces_only(tmp_path):
    from gan import datasets as gan_datasets
    from gan import metrics
    from gan.train import load_dataset

    chorales = gan_data.load_chorales().train
    channel = _built_dataset(tmp_path, {"chosen": chorales[:8], "other": chorales[8:14]})
    hps = {"epochs": "1", "update_ratio": "1", "batch_size": "8", "tags": json.dumps(json.dumps(["chosen"]))}
    env = {**_sagemaker_env(tmp_path), "SM_CHANNEL_DATASET": str(channel), "SM_HPS": json.dumps(hps)}

    assert main(["--dry-run"], env) == 0, (tmp_path / "output" / "failure").read_text()

    # Then it trained on the "chosen" folder's pieces alone, and says how many
    splits = load_dataset(None, channel, ["chosen"])
    everything = splits.train + splits.validation + splits.test
    assert {c.name for c in everything} == {f"chosen/{c.name}.mid" for c in chorales[:8]}
    trained = splits.train[:8]  # what the dry run keeps
    written = json.loads((tmp_path / "output" / "data" / "training_data.json").read_text())
    assert written == {
        "pieces": len(trained),
        "windows": sum(gan_datasets.count_windows(c.pitches[0]) for c in trained),
    }
    # And the reference values are the filtered pieces', not Bach's validation split's
    (reference,) = [e["values"] for e in _progress(tmp_path) if e["event"] == "reference"]
    validation = splits.validation[:2]
    assert reference == pytest.approx(metrics.evaluate(validation, reference=validation))


def test_tags_that_leave_too_little_fail_the_job_saying_so(tmp_path):
    chorales = gan_data.load_chorales().train
    channel = _built_dataset(tmp_path, {"chosen": chorales[:3]})
    env = {
        **_sagemaker_env(tmp_path),
        "SM_CHANNEL_DATASET": str(channel),
        "SM_HPS": json.dumps({"tags": '["chosen", "mode:minor", "meter:5/4"]'}),
    }

    assert main([], env) != 0

    reason = (tmp_path / "output" / "failure").read_text()
    assert 'the tags ["chosen", "mode:minor", "meter:5/4"] leave 0 piece(s) and 0 training' in reason
    assert not (tmp_path / "model" / MODEL_FILE).exists()


def test_bachs_chorales_are_filtered_by_their_computed_tags_as_the_index_counts_them():
    from contracts.datasets import BACH_INDEX_FILE
    from gan.train import load_dataset

    splits = load_dataset(None, None, ["mode:minor", "meter:3/4"])

    kept = {c.name for c in splits.train + splits.validation + splits.test}
    index = json.loads(BACH_INDEX_FILE.read_text())
    tagged = {e["name"] for e in index if {"mode:minor", "meter:3/4"} <= set(e["tags"])}
    assert kept and kept <= tagged  # the index also lists the 2 exact duplicates the splits drop
    assert len(tagged - kept) <= 2


def test_the_job_item_gets_the_pieces_and_windows_trained_on_and_keeps_what_the_api_wrote(tmp_path):
    from moto import mock_aws

    with mock_aws():
        table = _create_job(status="STARTING")
        table.update_item(
            Key=_job_key(),
            UpdateExpression="SET training_data = :data",
            ExpressionAttributeValues={
                ":data": {"dataset": "bach-chorales", "tags": ["jazz"], "pieces": 9, "windows": 90}
            },
        )

        _aws_reporter(tmp_path).training_data(7, 70)

        data = table.get_item(Key=_job_key())["Item"]["training_data"]
        assert data == {"dataset": "bach-chorales", "tags": ["jazz"], "pieces": 7, "windows": 70}
        # A job item without the map (submitted before datasets) gets it whole
        table.update_item(Key=_job_key(), UpdateExpression="REMOVE training_data")
        _aws_reporter(tmp_path).training_data(5, 50)
        assert table.get_item(Key=_job_key())["Item"]["training_data"] == {"pieces": 5, "windows": 50}
