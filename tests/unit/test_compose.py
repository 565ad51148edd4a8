"""Composing with a finished job's model, through the API as API Gateway calls it (moto; a small
random generator packed as SageMaker packs a trained one): POST, list, delete, the model's URL,
the sample melodies, and every bad request refused naming its field with nothing stored."""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from urllib.parse import urlparse

import boto3
import mido
import pytest

from contracts import compositions, instruments, names, storage
from lambdas.common import melodies
from tests.unit.conftest import BUCKET, bucket_keys, call_api, put_job_item, put_trained_job, table_items

JOB = "c" * 32
SAMPLE = {"melody": {"sample": "twinkle-twinkle"}}


def stored(url: str) -> bytes:
    """The object a presigned URL points at (moto answers no HTTP here: read it by its key)."""
    key = urlparse(url).path.lstrip("/").removeprefix(f"{BUCKET}/")
    return boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def midi_base64(messages: list[mido.Message], *, drums: bool = False, ticks_per_beat: int = 480) -> str:
    track = mido.MidiTrack([m.copy(channel=9) if drums else m for m in messages])
    buffer = io.BytesIO()
    mido.MidiFile(ticks_per_beat=ticks_per_beat, tracks=[track]).save(file=buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def notes(pitches: list[int], ticks: int = 480) -> list[mido.Message]:
    out = []
    for pitch in pitches:
        out += [
            mido.Message("note_on", note=pitch, velocity=80, time=0),
            mido.Message("note_off", note=pitch, velocity=0, time=ticks),
        ]
    return out


def compose(body: dict, job_id: str = JOB):
    return call_api("POST", f"/jobs/{job_id}/compositions", body=body)


# --- POST /jobs/{id}/compositions ---------------------------------------------------------------
def test_compose_answers_201_with_the_file_its_settings_and_the_metrics_beside_bach(aws: None) -> None:
    put_trained_job(JOB)

    response = compose({**SAMPLE, "seed": 7, "instruments": "strings", "name": "for the choir"})

    assert response.status == 201
    body = response.body
    assert names.is_composition_id(body["composition_id"])
    assert body["kind"] == "composition" and body["job_id"] == JOB and body["name"] == "for the choir"
    assert body["seed"] == 7 and body["temperature"] == compositions.DEFAULT_TEMPERATURE
    assert body["instruments"] == instruments.as_json(instruments.PRESETS["strings"])
    assert body["melody"] == {"sample": "twinkle-twinkle"}
    assert body["bars"] == 12
    assert 0 <= body["metrics"]["similarity"] <= 1 and "consonance" in body["metrics"]
    assert body["reference"]["consonance"] == pytest.approx(0.918)
    song = mido.MidiFile(file=io.BytesIO(stored(body["url"])))
    assert [t.name for t in song.tracks if any(m.type == "note_on" for m in t)] == [
        "Violin I",
        "Violin II",
        "Viola",
        "Cello",
    ]
    item = next(i for i in table_items() if i["sk"] == storage.composition_sk(body["composition_id"]))
    assert item["item_type"] == storage.COMPOSITION_ITEM and item["seed"] == 7


def test_the_same_melody_model_seed_and_instruments_give_the_same_file(aws: None) -> None:
    put_trained_job(JOB)
    first, second = compose({**SAMPLE, "seed": 3}).body, compose({**SAMPLE, "seed": 3}).body
    other = compose({**SAMPLE, "seed": 4}).body

    assert first["composition_id"] != second["composition_id"]
    assert stored(first["url"]) == stored(second["url"])
    assert stored(other["url"]) != stored(first["url"])


def test_an_uploaded_melody_comes_back_note_for_note_on_top(aws: None) -> None:
    put_trained_job(JOB)
    # A triplet and a grace note: off the 16th-note grid, kept as given.
    messages = [
        mido.Message("note_on", note=72, velocity=70, time=0),
        mido.Message("note_off", note=72, velocity=0, time=160),
        mido.Message("note_on", note=74, velocity=71, time=0),
        mido.Message("note_off", note=74, velocity=0, time=160),
        mido.Message("note_on", note=76, velocity=72, time=0),
        mido.Message("note_off", note=76, velocity=0, time=160),
        mido.Message("note_on", note=77, velocity=60, time=468),
        mido.Message("note_off", note=77, velocity=0, time=12),
        *notes([79, 77, 76, 74, 72, 74, 76, 72]),
    ]
    response = compose({"melody": {"midi_base64": midi_base64(messages)}})

    assert response.status == 201 and response.body["melody"] == {"upload": True, "notes": 12}
    song = mido.MidiFile(file=io.BytesIO(stored(response.body["url"])))
    melody_track = next(t for t in song.tracks if any(m.type == "note_on" for m in t))
    ticks, given = 0, []
    for message in melody_track:
        ticks += message.time
        if message.type == "note_on" and message.velocity:
            given.append((ticks, message.note, message.velocity))
    assert given[:4] == [(0, 72, 70), (160, 74, 71), (320, 76, 72), (948, 77, 60)]


def test_compose_with_an_explicit_form_and_temperature_zero(aws: None) -> None:
    put_trained_job(JOB)
    voices = [{"program": 73, "name": "Flute"}, 71, {"program": 70}, 58]

    body = compose({**SAMPLE, "instruments": voices, "temperature": 0}).body

    assert body["temperature"] == 0
    assert body["instruments"] == [
        {"program": 73, "name": "Flute"},
        {"program": 71, "name": "Alto"},
        {"program": 70, "name": "Tenor"},
        {"program": 58, "name": "Bass"},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"melody": {"sample": "happy-birthday"}}, "melody.sample"),
        ({"melody": {"midi_base64": base64.b64encode(b"not a midi file").decode()}}, "melody.midi_base64"),
        ({"melody": {"midi_base64": "%%%"}}, "melody.midi_base64"),
        (
            {"melody": {"midi_base64": midi_base64([mido.Message("program_change", program=3)])}},
            "melody.midi_base64",
        ),  # no notes
        ({"melody": {"midi_base64": midi_base64(notes([36, 38, 42]), drums=True)}}, "melody.midi_base64"),
        (
            {
                "melody": {
                    "midi_base64": midi_base64(notes([60, 62], ticks=480 * 4 * (compositions.MAX_BARS + 1)))
                }
            },
            "melody.midi_base64",
        ),  # too long
        (
            {
                "melody": {
                    "midi_base64": midi_base64(notes([60]) + [mido.Message("note_on", note=62, time=2**27)])
                }
            },
            "melody.midi_base64",
        ),  # a few bytes that say "much later"
        ({**SAMPLE, "instruments": "kazoo"}, "instruments"),
        ({**SAMPLE, "instruments": [0, 0, 128, 0]}, "instruments[2]"),
        ({**SAMPLE, "instruments": [0, 0, 0, {"program": 5, "name": ""}]}, "instruments[3].name"),
        ({**SAMPLE, "instruments": [0, 0, 0]}, "instruments"),
        ({**SAMPLE, "seed": -1}, "seed"),
        ({**SAMPLE, "seed": compositions.SEED_MAX + 1}, "seed"),
        ({**SAMPLE, "seed": "1"}, "seed"),
        ({**SAMPLE, "temperature": compositions.TEMPERATURE_MAX + 0.5}, "temperature"),
        ({**SAMPLE, "name": "a/b"}, "name"),
        ({**SAMPLE, "colour": "blue"}, "colour"),
        ({}, "melody"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field_and_stores_nothing(
    aws: None, body: dict, field: str
) -> None:
    put_trained_job(JOB)
    keys_before, items_before = bucket_keys(), table_items()

    response = compose(body)

    assert response.status == 400, response.body
    assert response.body["error"]["field"] == field
    assert bucket_keys() == keys_before and table_items() == items_before


def test_over_a_mebibyte_is_413(aws: None) -> None:
    put_trained_job(JOB)
    assert compose({"melody": {"midi_base64": "A" * 2**20}}).status == 413


@pytest.mark.parametrize("status", ["SUBMITTED", "TRAINING", "FAILED", "STOPPED"])
def test_a_job_without_a_model_is_409(aws: None, status: str) -> None:
    put_job_item(JOB, status)
    response = compose(SAMPLE)
    assert response.status == 409 and response.body["error"]["code"] == "job_state_conflict"


def test_another_callers_job_and_an_unknown_one_are_404(aws: None) -> None:
    put_trained_job(JOB, owner="arn:aws:iam::123456789012:user/someone-else")
    assert compose(SAMPLE).status == 404
    assert compose(SAMPLE, job_id="0" * 32).status == 404
    assert compose(SAMPLE, job_id="not-a-job").status == 404
    assert [k for k in bucket_keys() if "/composed/" in k] == []


def test_a_model_recorded_outside_the_jobs_own_prefix_is_refused(aws: None) -> None:
    other = "d" * 32
    key = put_trained_job(other)
    put_job_item(JOB, "COMPLETED", model_artifact=f"s3://{BUCKET}/{key}")
    response = compose(SAMPLE)
    assert response.status == 409 and "no model" in response.body["error"]["message"]


def test_a_job_keeps_at_most_its_limit_of_compositions(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compositions, "MAX_PER_JOB", 2)
    put_trained_job(JOB)
    assert [compose(SAMPLE).status for _ in range(3)] == [201, 201, 409]


def test_a_job_deleted_while_composing_keeps_no_composition(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_trained_job(JOB)
    from lambdas.compose import composer

    real = composer.accompaniment

    def then_delete(*args, **kwargs):
        piece = real(*args, **kwargs)
        boto3.resource("dynamodb").Table("jobs-test").delete_item(Key=storage.job_key(JOB))
        return piece

    monkeypatch.setattr(composer, "accompaniment", then_delete)
    response = compose(SAMPLE)

    assert response.status == 409
    assert [k for k in bucket_keys() if "/composed/" in k] == []
    assert not [i for i in table_items() if i["sk"].startswith(storage.COMPOSITION_SORT_KEY_PREFIX)]


# --- GET and DELETE /jobs/{id}/compositions ------------------------------------------------------
def test_the_list_shows_your_compositions_newest_first_then_the_trainings_outputs(aws: None) -> None:
    put_trained_job(JOB)
    s3 = boto3.client("s3")
    for key in (
        storage.composition_key(JOB, "final"),
        storage.sample_key(JOB, 5),
        storage.sample_key(JOB, 10),
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"MThd")
    made = [compose({**SAMPLE, "seed": seed}).body["composition_id"] for seed in range(3)]

    listed = call_api("GET", f"/jobs/{JOB}/compositions").body

    assert [c["composition_id"] for c in listed["compositions"]] == [
        *reversed(made),
        "final",
        "epoch-0010",
        "epoch-0005",
    ]
    assert [c["kind"] for c in listed["compositions"]] == ["composition"] * 3 + ["training"] * 3
    assert listed["next_token"] is None


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_the_list_pages_through_both_kinds_without_loss_or_repeat(aws: None, limit: int) -> None:
    put_trained_job(JOB)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=storage.composition_key(JOB, "final"), Body=b"MThd")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=storage.sample_key(JOB, 5), Body=b"MThd")
    made = [compose({**SAMPLE, "seed": seed}).body["composition_id"] for seed in range(3)]

    seen, token = [], None
    while True:
        query = {"limit": str(limit), **({"next_token": token} if token else {})}
        page = call_api("GET", f"/jobs/{JOB}/compositions", query=query).body
        assert len(page["compositions"]) <= limit
        seen += [c["composition_id"] for c in page["compositions"]]
        token = page["next_token"]
        if token is None:
            break

    assert seen == [*reversed(made), "final", "epoch-0005"]


def test_a_token_for_another_job_or_made_up_is_a_400(aws: None) -> None:
    put_trained_job(JOB)
    for _ in range(2):
        compose(SAMPLE)
    token = call_api("GET", f"/jobs/{JOB}/compositions", query={"limit": "1"}).body["next_token"]
    put_trained_job("d" * 32)

    for job_id, bad in (("d" * 32, token), (JOB, "bm90IGEgdG9rZW4=")):
        response = call_api("GET", f"/jobs/{job_id}/compositions", query={"next_token": bad})
        assert response.status == 400 and response.body["error"]["field"] == "next_token"


def test_a_job_with_nothing_yet_lists_nothing(aws: None) -> None:
    put_job_item(JOB, "TRAINING")
    assert call_api("GET", f"/jobs/{JOB}/compositions").body == {"compositions": [], "next_token": None}


def test_delete_removes_the_composition_and_its_file(aws: None) -> None:
    put_trained_job(JOB)
    kept, gone = compose(SAMPLE).body, compose({**SAMPLE, "seed": 1}).body

    response = call_api("DELETE", f"/jobs/{JOB}/compositions/{gone['composition_id']}")

    assert response.status == 204
    assert storage.composed_key(JOB, gone["composition_id"]) not in bucket_keys()
    listed = call_api("GET", f"/jobs/{JOB}/compositions").body["compositions"]
    assert [c["composition_id"] for c in listed] == [kept["composition_id"]]
    again = call_api("DELETE", f"/jobs/{JOB}/compositions/{gone['composition_id']}")
    assert again.status == 404 and again.body["error"]["code"] == "composition_not_found"


def test_the_trainings_outputs_go_only_with_the_job(aws: None) -> None:
    put_trained_job(JOB)
    response = call_api("DELETE", f"/jobs/{JOB}/compositions/final")
    assert response.status == 409
    assert call_api("DELETE", f"/jobs/{JOB}/compositions/../model").status == 404


def test_deleting_the_job_deletes_its_compositions(aws: None) -> None:
    put_trained_job(JOB)
    compose(SAMPLE)

    assert call_api("DELETE", f"/jobs/{JOB}").status == 204
    assert bucket_keys() == [] and table_items() == []


def test_another_caller_can_neither_list_nor_delete(aws: None) -> None:
    put_trained_job(JOB)
    made = compose(SAMPLE).body["composition_id"]
    stranger = "arn:aws:iam::123456789012:user/someone-else"

    assert call_api("GET", f"/jobs/{JOB}/compositions", owner=stranger).status == 404
    assert call_api("DELETE", f"/jobs/{JOB}/compositions/{made}", owner=stranger).status == 404
    assert storage.composed_key(JOB, made) in bucket_keys()


# --- the model and the melodies ---------------------------------------------------------------------
def test_a_completed_job_gives_its_model_as_a_presigned_url(aws: None) -> None:
    key = put_trained_job(JOB)

    job = call_api("GET", f"/jobs/{JOB}").body
    link = call_api("GET", job["outputs"]["model"]).body

    assert job["outputs"]["model"] == f"/jobs/{JOB}/model"
    assert (
        link["job_id"] == JOB
        and stored(link["url"]) == boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    )


def test_a_job_without_a_model_has_none_to_give(aws: None) -> None:
    put_job_item(JOB, "TRAINING")
    assert call_api("GET", f"/jobs/{JOB}").body["outputs"]["model"] is None
    assert call_api("GET", f"/jobs/{JOB}/model").status == 409
    assert call_api("GET", f"/jobs/{'0' * 32}/model").status == 404


def test_the_melodies_are_the_samples_a_job_or_a_composition_takes(aws: None) -> None:
    listed = call_api("GET", "/melodies", owner=None).body["melodies"]

    assert [m["name"] for m in listed] == list(melodies.SAMPLES)
    stille = next(m for m in listed if m["name"] == "stille-nacht")
    assert stille == {
        "name": "stille-nacht",
        "title": "Stille Nacht, heilige Nacht",
        "bars": 12,
        "meter": "6/8",
        "key": "C major",
        "tempo_bpm": 70,
    }


def test_each_melodys_bars_are_what_a_composition_of_it_reports(aws: None) -> None:
    put_trained_job(JOB)
    for melody in call_api("GET", "/melodies").body["melodies"]:
        body = compose({"melody": {"sample": melody["name"]}, "temperature": 0}).body
        assert body["bars"] == melody["bars"], melody["name"]


@pytest.mark.parametrize("name", list(melodies.SAMPLES))
def test_each_melodys_key_has_its_last_note_as_tonic_and_holds_its_notes(name: str) -> None:
    melody = melodies.SAMPLES[name]
    tonic_name, mode = melody.key.split()
    tonic = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"].index(tonic_name)
    scale = {
        (tonic + step) % 12
        for step in ((0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 10))
    }
    sounding = [pitch for pitch, _ in melody.notes if pitch is not None]

    assert sounding[-1] % 12 == tonic
    assert sum(p % 12 in scale for p in sounding) / len(sounding) >= 0.9


def test_stored_metrics_are_numbers_dynamodb_takes(aws: None) -> None:
    put_trained_job(JOB)
    made = compose(SAMPLE).body
    item = next(i for i in table_items() if i["sk"] == storage.composition_sk(made["composition_id"]))
    assert all(v is None or isinstance(v, Decimal) for v in item["metrics"].values())
