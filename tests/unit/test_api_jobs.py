"""The api handler against moto: every route, every error status, and what each stores.

One file because its tests share one fixture world (the table, the bucket, a job in each status)
and read as the API's specification, route by route."""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import mido
import pytest
from botocore.exceptions import ClientError

from contracts import deployment, routes, storage
from lambdas.common import melodies
from lambdas.common.dal import JobsRepository
from tests.unit.conftest import BUCKET, TABLE, bucket_keys, call_api, put_job_item, table_items

DEFAULTS = {"epochs": 20, "learning_rate": 0.001, "update_ratio": 5, "batch_size": 64, "seed": 0,
            "model_size": "small"}


def midi_base64(notes: list[int]) -> str:
    track = mido.MidiTrack()
    for pitch in notes:
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
    buffer = io.BytesIO()
    mido.MidiFile(tracks=[mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]), track]).save(
        file=buffer
    )
    return base64.b64encode(buffer.getvalue()).decode()


def stored_melody(job_id: str) -> mido.MidiFile:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=storage.melody_key(job_id))["Body"].read()
    return mido.MidiFile(file=io.BytesIO(body))


def melody_pitches(midi: mido.MidiFile) -> list[int]:
    for track in midi.tracks:
        pitches = [m.note for m in track if m.type == "note_on" and m.velocity > 0]
        if pitches:
            return pitches
    return []


# --- POST /jobs -----------------------------------------------------------------------------
def test_post_with_no_body_submits_the_default_job_and_stores_its_melody(aws: None) -> None:
    response = call_api("POST", "/jobs")

    assert response.status == 202
    job = response.body
    assert job["status"] == "SUBMITTED"
    assert job["hyperparameters"] == DEFAULTS
    assert job["melody"] == {"sample": melodies.DEFAULT_SAMPLE}
    assert job["outputs"] == {"model": None, "compositions": []}
    assert len(job["job_id"]) == 32
    expected = [p for p, _ in melodies.SAMPLES[melodies.DEFAULT_SAMPLE].notes if p is not None]
    assert melody_pitches(stored_melody(job["job_id"])) == expected


def test_post_fills_in_the_missing_hyperparameters_and_keeps_the_given_ones(aws: None) -> None:
    body = {
        "name": "my-first bach_1",
        "hyperparameters": {"epochs": 3, "seed": 7},
        "melody": {"sample": "ode-to-joy"},
    }
    job = call_api("POST", "/jobs", body=body).body

    assert job["name"] == "my-first bach_1"
    assert job["hyperparameters"] == {**DEFAULTS, "epochs": 3, "seed": 7}
    [item] = [i for i in table_items() if i["sk"] == "JOB"]
    assert item["item_type"] == "job" and item["owner"] == deployment.LOCAL_OWNER
    assert item["hyperparameters"]["epochs"] == 3 and item["hyperparameters"]["batch_size"] == 64


def test_post_with_an_uploaded_midi_stores_it_and_records_its_note_count(aws: None) -> None:
    upload = midi_base64([60, 62, 64, 65, 67])
    job = call_api("POST", "/jobs", body={"melody": {"midi_base64": upload}}).body

    assert job["melody"] == {"upload": True, "notes": 5}
    assert melody_pitches(stored_melody(job["job_id"])) == [60, 62, 64, 65, 67]
    assert "midi_base64" not in str(table_items())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"hyperparameters": {"epochs": 5, "momentum": 0.9}}, "hyperparameters.momentum"),
        ({"hyperparameters": {"epochs": "20"}}, "hyperparameters.epochs"),
        ({"hyperparameters": {"epochs": 2.5}}, "hyperparameters.epochs"),
        ({"hyperparameters": {"epochs": True}}, "hyperparameters.epochs"),
        ({"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs"),
        ({"hyperparameters": {"epochs": 10_001}}, "hyperparameters.epochs"),
        ({"hyperparameters": {"learning_rate": 0}}, "hyperparameters.learning_rate"),
        ({"hyperparameters": {"learning_rate": 1}}, "hyperparameters.learning_rate"),
        ({"hyperparameters": {"update_ratio": 21}}, "hyperparameters.update_ratio"),
        ({"hyperparameters": {"batch_size": 1025}}, "hyperparameters.batch_size"),
        ({"hyperparameters": {"seed": -1}}, "hyperparameters.seed"),
        ({"hyperparameters": [20]}, "hyperparameters"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "semi;colon"}, "name"),
        ({"name": 7}, "name"),
        ({"melody": {"sample": "never-heard-of-it"}}, "melody.sample"),
        ({"melody": {}}, "melody"),
        ({"melody": {"sample": "ode-to-joy", "midi_base64": "TVRoZA=="}}, "melody"),
        ({"melody": {"midi_base64": "not base64!"}}, "melody.midi_base64"),
        (
            {"melody": {"midi_base64": base64.b64encode(b"RIFF not a midi file").decode()}},
            "melody.midi_base64",
        ),
        ({"melody": {"midi_base64": midi_base64([])}}, "melody.midi_base64"),
        ({"melody": {"midi_base64": ""}}, "melody.midi_base64"),
    ],
)
def test_post_rejects_a_bad_field_naming_it_and_stores_nothing(
    aws: None, body: dict[str, Any], field: str
) -> None:
    response = call_api("POST", "/jobs", body=body)

    assert response.status == 400
    assert response.body["error"]["code"] == "invalid_field"
    assert response.body["error"]["field"] == field
    assert response.body["error"]["message"]
    assert table_items() == [] and bucket_keys() == []


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"a string"', "null"])
def test_post_rejects_a_body_that_is_not_a_json_object(aws: None, raw: str) -> None:
    response = call_api("POST", "/jobs", raw_body=raw)

    assert response.status == 400
    assert response.body["error"]["code"] == "invalid_json"
    assert table_items() == []


def test_post_rejects_a_body_over_one_mebibyte_with_413(aws: None) -> None:
    response = call_api("POST", "/jobs", body={"melody": {"midi_base64": "A" * (1024 * 1024)}})

    assert response.status == 413
    assert response.body["error"]["code"] == "body_too_large"
    assert table_items() == [] and bucket_keys() == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_post_rejects_a_body_that_is_not_json_with_415(aws: None, content_type: str) -> None:
    response = call_api("POST", "/jobs", body={"name": "x"}, headers={"Content-Type": content_type})

    assert response.status == 415
    assert table_items() == []


def test_post_accepts_a_base64_encoded_proxy_body(aws: None) -> None:
    response = call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 4}}, base64_body=True)

    assert response.status == 202
    assert response.body["hyperparameters"]["epochs"] == 4


# --- Idempotency-Key ------------------------------------------------------------------------
def test_a_repeated_post_with_the_same_idempotency_key_returns_the_first_job(aws: None) -> None:
    body = {"hyperparameters": {"epochs": 3}}
    first = call_api("POST", "/jobs", body=body, headers={"Idempotency-Key": "abc-123"})
    again = call_api("POST", "/jobs", body=body, headers={"Idempotency-Key": "abc-123"})
    other = call_api("POST", "/jobs", body=body, headers={"Idempotency-Key": "abc-456"})

    assert first.status == again.status == other.status == 202
    assert again.body["job_id"] == first.body["job_id"]
    assert other.body["job_id"] != first.body["job_id"]
    assert len(call_api("GET", "/jobs").body["jobs"]) == 2
    assert len(bucket_keys()) == 2


def test_an_idempotency_key_reused_with_another_body_is_a_409(aws: None) -> None:
    call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 3}}, headers={"Idempotency-Key": "k1"})
    response = call_api(
        "POST", "/jobs", body={"hyperparameters": {"epochs": 4}}, headers={"Idempotency-Key": "k1"}
    )

    assert response.status == 409
    assert response.body["error"]["field"] == "Idempotency-Key"
    assert len(call_api("GET", "/jobs").body["jobs"]) == 1


def test_idempotency_keys_are_scoped_to_the_caller(aws: None) -> None:
    mine = call_api("POST", "/jobs", headers={"Idempotency-Key": "same"})
    theirs = call_api("POST", "/jobs", headers={"Idempotency-Key": "same"}, owner="arn:aws:iam::1:user/bob")

    assert theirs.status == 202 and theirs.body["job_id"] != mine.body["job_id"]


def test_a_malformed_idempotency_key_is_a_400_naming_the_header(aws: None) -> None:
    response = call_api("POST", "/jobs", headers={"Idempotency-Key": "has spaces"})

    assert response.status == 400
    assert response.body["error"]["field"] == "Idempotency-Key"


def test_a_post_that_loses_the_idempotency_race_returns_the_winner_and_keeps_nothing(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a POST with the same key that won, whose key our first look after the cancelled
    # write does not find yet (as if it had gone and come back)
    winner = call_api("POST", "/jobs", headers={"Idempotency-Key": "race"}).body
    monkeypatch.setattr(JobsRepository, "get_idempotency", _none_then_real(JobsRepository.get_idempotency))

    # When ours is written, its transaction is cancelled, and written again, cancelled again
    response = call_api("POST", "/jobs", headers={"Idempotency-Key": "race"})

    # Then it answers with the winner's job and leaves no second melody behind
    assert response.status == 202 and response.body["job_id"] == winner["job_id"]
    assert bucket_keys() == [storage.melody_key(winner["job_id"])]


def _none_then_real(real: Any) -> Any:
    calls = {"n": 0}

    def get_idempotency(self: JobsRepository, owner: str, key: str) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(self, owner, key)

    return get_idempotency


# --- identity ---------------------------------------------------------------------------------
def test_another_callers_job_is_404_everywhere(aws: None) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]
    bob = "arn:aws:iam::123456789012:user/bob"

    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/metrics"),
        ("GET", f"/jobs/{job_id}/compositions"),
        ("POST", f"/jobs/{job_id}/stop"),
        ("DELETE", f"/jobs/{job_id}"),
    ]:
        response = call_api(method, path, owner=bob)
        assert response.status == 404, (method, path)
        assert response.body["error"]["code"] == "job_not_found"
    assert call_api("GET", "/jobs", owner=bob).body["jobs"] == []
    assert call_api("GET", f"/jobs/{job_id}").body["status"] == "SUBMITTED"


ACCOUNT = deployment.LOCAL_ACCOUNT


def _session(role: str, session: str) -> str:
    """The caller ARN API Gateway's IAM authorization reports for an assumed role's session."""
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"


def test_every_session_of_an_assumed_role_owns_the_roles_jobs(aws: None) -> None:
    # Given a job created by one CI run's session of a role
    first = call_api("POST", "/jobs", owner=_session("ci-deployer", "github-run-1001")).body
    [item] = [i for i in table_items() if i["sk"] == "JOB"]
    assert item["owner"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer"

    # When the next run, under another session name, calls the API
    later = _session("ci-deployer", "github-run-1002")

    # Then it sees, stops and lists the job as its own
    assert call_api("GET", f"/jobs/{first['job_id']}", owner=later).status == 200
    assert [j["job_id"] for j in call_api("GET", "/jobs", owner=later).body["jobs"]] == [first["job_id"]]
    assert call_api("POST", f"/jobs/{first['job_id']}/stop", owner=later).status == 202
    # ... and an Idempotency-Key replays across its sessions
    one = call_api("POST", "/jobs", headers={"Idempotency-Key": "k"}, owner=_session("ci-deployer", "a")).body
    two = call_api("POST", "/jobs", headers={"Idempotency-Key": "k"}, owner=_session("ci-deployer", "b")).body
    assert one["job_id"] == two["job_id"]


def test_another_role_of_the_same_account_does_not_see_the_roles_jobs(aws: None) -> None:
    job_id = call_api("POST", "/jobs", owner=_session("ci-deployer", "run-1")).body["job_id"]

    other = _session("analyst", "run-1")  # same session name, another role
    assert call_api("GET", f"/jobs/{job_id}", owner=other).status == 404
    assert call_api("GET", "/jobs", owner=other).body["jobs"] == []
    user = f"arn:aws:iam::{ACCOUNT}:user/ci-deployer"  # a user of the role's name is no session of it
    assert call_api("GET", f"/jobs/{job_id}", owner=user).status == 404


def test_people_sharing_an_identity_center_permission_set_keep_their_own_jobs(aws: None) -> None:
    # Identity Center sets the session name to the person's user name: the session is kept.
    role = "AWSReservedSSO_DataScientist_0123456789abcdef"
    alice, bob = _session(role, "alice@example.com"), _session(role, "bob@example.com")
    job_id = call_api("POST", "/jobs", owner=alice).body["job_id"]

    assert call_api("GET", f"/jobs/{job_id}", owner=alice).status == 200
    assert call_api("GET", f"/jobs/{job_id}", owner=bob).status == 404
    [item] = [i for i in table_items() if i["sk"] == "JOB"]
    assert item["owner"] == alice


def test_iam_users_and_other_callers_own_jobs_under_their_arn_as_it_is(aws: None) -> None:
    for caller in (f"arn:aws:iam::{ACCOUNT}:user/team/bob", f"arn:aws:sts::{ACCOUNT}:federated-user/carol",
                   f"arn:aws-cn:iam::{ACCOUNT}:root"):
        job_id = call_api("POST", "/jobs", owner=caller).body["job_id"]
        stored = [i["owner"] for i in table_items() if i.get("job_id") == job_id and i["sk"] == "JOB"]
        assert stored == [caller]


def test_a_request_without_a_caller_identity_is_refused(aws: None) -> None:
    response = call_api("GET", "/jobs", owner=None)

    assert response.status == 403


# --- GET /jobs --------------------------------------------------------------------------------
def test_list_pages_newest_first_with_an_opaque_token(aws: None) -> None:
    for n in range(5):
        put_job_item(
            f"{n:032x}", "COMPLETED" if n % 2 else "FAILED", created_at=f"2026-11-27T15:0{n}:00.000Z"
        )

    first = call_api("GET", "/jobs", query={"limit": "2"})
    second = call_api("GET", "/jobs", query={"limit": "2", "next_token": first.body["next_token"]})
    third = call_api("GET", "/jobs", query={"limit": "2", "next_token": second.body["next_token"]})

    ids = [j["job_id"] for page in (first, second, third) for j in page.body["jobs"]]
    assert ids == [f"{n:032x}" for n in (4, 3, 2, 1, 0)]
    assert third.body["next_token"] is None


def test_list_filters_by_status(aws: None) -> None:
    for n in range(6):
        put_job_item(
            f"{n:032x}", "COMPLETED" if n % 3 == 0 else "FAILED", created_at=f"2026-11-27T15:0{n}:00Z"
        )

    completed = call_api("GET", "/jobs", query={"status": "COMPLETED", "limit": "1"})
    rest = call_api("GET", "/jobs", query={"status": "COMPLETED", "next_token": completed.body["next_token"]})

    assert [j["job_id"] for j in completed.body["jobs"] + rest.body["jobs"]] == [f"{3:032x}", f"{0:032x}"]
    assert {j["status"] for j in rest.body["jobs"]} == {"COMPLETED"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "RUNNING"}, "status"),
        ({"next_token": "!!!"}, "next_token"),
        ({"next_token": base64.urlsafe_b64encode(b'{"pk": "JOB#x"}').decode()}, "next_token"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_list_rejects_a_bad_query_naming_the_parameter(aws: None, query: dict[str, str], field: str) -> None:
    response = call_api("GET", "/jobs", query=query)

    assert response.status == 400
    assert response.body["error"]["field"] == field


def test_a_next_token_of_another_caller_is_refused(aws: None) -> None:
    for n in range(3):
        put_job_item(f"{n:032x}", "COMPLETED", created_at=f"2026-11-27T15:0{n}:00Z")
    token = call_api("GET", "/jobs", query={"limit": "1"}).body["next_token"]

    response = call_api("GET", "/jobs", query={"next_token": token}, owner="arn:aws:iam::1:user/mallory")

    assert response.status == 400 and response.body["error"]["field"] == "next_token"


# --- GET /jobs/{id} -----------------------------------------------------------------------------
def test_a_starting_job_says_what_it_waits_for_and_only_while_starting(aws: None) -> None:
    waiting, started = "b" * 32, "c" * 32
    note = "waiting for training capacity"
    put_job_item(waiting, "STARTING", status_message=note)
    put_job_item(started, "TRAINING", status_message=note)  # a note the runner had no time to remove

    assert call_api("GET", f"/jobs/{waiting}").body["status_message"] == note
    assert call_api("GET", f"/jobs/{started}").body["status_message"] is None
    listed = {j["job_id"]: j["status_message"] for j in call_api("GET", "/jobs").body["jobs"]}
    assert listed == {waiting: note, started: None}


def test_get_returns_the_job_as_designed(aws: None) -> None:
    job_id = "a" * 32
    put_job_item(
        job_id,
        "COMPLETED",
        name="bach",
        progress={"epoch": 2, "epochs": 2, "metrics": {"generator_loss": -1, "similarity": Decimal("0.5")}},
        model_artifact="s3://b/jobs/x/model/out/model.tar.gz",
        compositions=["final"],
    )

    job = call_api("GET", f"/jobs/{job_id}").body

    assert set(job) == {
        "job_id", "name", "status", "created_at", "updated_at", "hyperparameters", "melody",
        "training_data", "progress", "status_message", "failure_reason", "outputs",
    }  # fmt: skip
    assert job["outputs"] == {"model": f"/jobs/{job_id}/model", "compositions": ["final"]}
    assert job["progress"]["epoch"] == 2
    assert job["hyperparameters"]["learning_rate"] == 0.001


@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job-id", "x" * 3000])
def test_get_of_an_unknown_job_is_404(aws: None, job_id: str) -> None:
    response = call_api("GET", f"/jobs/{job_id}")

    assert response.status == 404
    assert response.body["error"]["code"] == "job_not_found"


def test_the_handler_serves_exactly_the_contracts_routes(aws: None) -> None:
    # Every method on every resource of the contract: a route the handler has no registration
    # for answers the resolver's own 404 (`not_found`), any other reaches its function.
    served = set()
    for path in routes.resources():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = call_api(method, path.replace("{job_id}", "0" * 32))
            if (response.body or {}).get("error", {}).get("code") != "not_found":
                served.add((method, path))

    assert served == {(route.method, route.path) for route in routes.ROUTES}


@pytest.mark.parametrize("change", ["a route without a function", "a function without a route"])
def test_registering_fails_when_the_functions_and_the_contract_differ(change: str) -> None:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from lambdas.api import handler
    from lambdas.common import http

    functions = dict(handler.ROUTE_FUNCTIONS)
    if change == "a route without a function":
        del functions[("GET", "/jobs/{job_id}/metrics")]
    else:
        functions[("PUT", "/jobs/{job_id}")] = handler.get_job

    with pytest.raises(RuntimeError, match="contracts.routes and the api function differ"):
        http.register(APIGatewayRestResolver(), "api", functions)


def test_an_unknown_route_is_404_in_the_error_format(aws: None) -> None:
    response = call_api("PUT", "/jobs")

    assert response.status == 404
    assert set(response.body["error"]) == {"code", "message"}


def test_an_unexpected_failure_is_a_500_without_a_stack_trace(aws: None) -> None:
    boto3.client("dynamodb").delete_table(TableName=TABLE)

    response = call_api("GET", f"/jobs/{'a' * 32}")

    assert response.status == 500
    assert response.body == {
        "error": {"code": "internal_error", "message": "internal error; see the function's log"}
    }


def test_throttling_is_a_503_the_client_may_retry(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def throttled(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetItem":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, operation
            )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", throttled)
    response = call_api("GET", f"/jobs/{'a' * 32}")

    assert response.status == 503


# --- GET /jobs/{id}/metrics ---------------------------------------------------------------------
def test_metrics_lists_every_epoch_in_order_with_bachs_reference(aws: None) -> None:
    job_id = "b" * 32
    put_job_item(job_id, "TRAINING", reference={"consonance": Decimal("0.918")})
    table = boto3.resource("dynamodb").Table(TABLE)
    for epoch in (2, 1, 10):
        table.put_item(
            Item={
                "pk": storage.job_pk(job_id),
                "sk": storage.epoch_sk(epoch),
                "item_type": "epoch",
                "epoch": epoch,
                "metrics": {"generator_loss": -epoch, "critic_loss": 1, "similarity": Decimal("0.25")},
            }
        )

    body = call_api("GET", f"/jobs/{job_id}/metrics").body

    assert body["job_id"] == job_id
    assert [e["epoch"] for e in body["epochs"]] == [1, 2, 10]
    assert body["epochs"][0] == {"epoch": 1, "generator_loss": -1, "critic_loss": 1, "similarity": 0.25}
    assert body["reference"] == {"consonance": 0.918}


def test_metrics_of_a_job_without_epochs_yet_is_empty(aws: None) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]

    assert call_api("GET", f"/jobs/{job_id}/metrics").body == {
        "job_id": job_id,
        "epochs": [],
        "reference": {},
    }


# --- GET /jobs/{id}/compositions ----------------------------------------------------------------
def test_compositions_list_the_final_midi_and_the_epoch_samples_as_presigned_urls(aws: None) -> None:
    job_id = "c" * 32
    put_job_item(job_id, "COMPLETED", compositions=["final"])
    s3 = boto3.client("s3")
    for key in (
        storage.composition_key(job_id, "final"),
        storage.sample_key(job_id, 10),
        storage.sample_key(job_id, 5),
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"MThd")

    listed = call_api("GET", f"/jobs/{job_id}/compositions").body["compositions"]

    assert [c["name"] for c in listed] == ["final", "epoch-0010", "epoch-0005"]
    final = urlparse(listed[0]["url"])
    assert final.path.endswith(storage.composition_key(job_id, "final"))
    assert "X-Amz-Signature" in parse_qs(final.query) or "Signature" in parse_qs(final.query)
    assert listed[0]["expires_at"].endswith("Z")


# --- POST /jobs/{id}/stop -----------------------------------------------------------------------
def test_stop_of_a_submitted_job_marks_it_stopping(aws: None) -> None:
    job_id = call_api("POST", "/jobs").body["job_id"]

    response = call_api("POST", f"/jobs/{job_id}/stop")
    again = call_api("POST", f"/jobs/{job_id}/stop")

    assert response.status == again.status == 202
    assert response.body == {"job_id": job_id, "status": "STOPPING"}
    assert call_api("GET", f"/jobs/{job_id}").body["status"] == "STOPPING"


def test_stop_of_a_training_job_asks_sagemaker_to_stop_it(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.client import BaseClient

    job_id = "d" * 32
    put_job_item(job_id, "TRAINING", training_job_name=f"opencomposer-test-{job_id}")
    calls: list[dict[str, Any]] = []
    real = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StopTrainingJob":  # moto does not implement it; the local stack does
            calls.append(params)
            return {}
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    response = call_api("POST", f"/jobs/{job_id}/stop")

    assert response.status == 202
    assert calls == [{"TrainingJobName": f"opencomposer-test-{job_id}"}]


def test_stop_succeeds_when_sagemaker_has_nothing_left_to_stop(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.client import BaseClient

    job_id = "e" * 32
    put_job_item(job_id, "STARTING", training_job_name=f"opencomposer-test-{job_id}")
    real = BaseClient._make_api_call

    def not_created_yet(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StopTrainingJob":
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "not found"}}, operation)
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", not_created_yet)

    assert call_api("POST", f"/jobs/{job_id}/stop").status == 202
    assert call_api("GET", f"/jobs/{job_id}").body["status"] == "STOPPING"


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "STOPPED"])
def test_stop_of_a_finished_job_is_409_and_changes_nothing(aws: None, status: str) -> None:
    job_id = "f" * 32
    put_job_item(job_id, status)

    response = call_api("POST", f"/jobs/{job_id}/stop")

    assert response.status == 409
    assert call_api("GET", f"/jobs/{job_id}").body["status"] == status


# --- DELETE /jobs/{id} --------------------------------------------------------------------------
def test_delete_of_a_finished_job_removes_its_items_and_objects_only(aws: None) -> None:
    keep = call_api("POST", "/jobs").body["job_id"]
    job_id = call_api("POST", "/jobs", headers={"Idempotency-Key": "del"}).body["job_id"]
    table = boto3.resource("dynamodb").Table(TABLE)
    table.update_item(
        Key={"pk": storage.job_pk(job_id), "sk": "JOB"},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": "COMPLETED"},
    )
    table.put_item(
        Item={"pk": storage.job_pk(job_id), "sk": storage.epoch_sk(1), "item_type": "epoch", "epoch": 1}
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=storage.composition_key(job_id, "final"), Body=b"x")

    response = call_api("DELETE", f"/jobs/{job_id}")

    assert response.status == 204 and response.body is None
    assert call_api("GET", f"/jobs/{job_id}").status == 404
    assert [i["job_id"] for i in table_items()] == [keep]
    assert bucket_keys() == [storage.melody_key(keep)]
    # The key is free again: a new POST with it creates a new job.
    assert call_api("POST", "/jobs", headers={"Idempotency-Key": "del"}).body["job_id"] != job_id


@pytest.mark.parametrize("status", ["SUBMITTED", "STARTING", "TRAINING", "STOPPING"])
def test_delete_of_an_unfinished_job_is_409_and_removes_nothing(aws: None, status: str) -> None:
    job_id = "9" * 32
    put_job_item(job_id, status)

    response = call_api("DELETE", f"/jobs/{job_id}")

    assert response.status == 409
    assert call_api("GET", f"/jobs/{job_id}").body["status"] == status


def test_headers_are_read_whatever_their_case(aws: None) -> None:
    body = '{"name": "a"}'
    lower = {"content-type": "application/json; charset=utf-8", "idempotency-key": "k"}
    upper = {"CONTENT-TYPE": "Application/JSON", "IDEMPOTENCY-KEY": "k"}

    first = call_api("POST", "/jobs", raw_body=body, headers=lower)
    again = call_api("POST", "/jobs", raw_body=body, headers=upper)

    assert first.status == again.status == 202
    assert again.body["job_id"] == first.body["job_id"]
