"""The /datasets routes and the dataset build function against moto: the presigned upload and its
policy, owner scoping, listing, deletion, and the build's ends (READY, FAILED, a duplicate event,
an upload nobody asked for)."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

import boto3
import pytest

from contracts import datasets, deployment
from lambdas.common.dal.datasets import DatasetsRepository, get_dataset
from lambdas.common.errors import DatasetNotFoundError
from tests.unit.conftest import BUCKET, TABLE, FakeContext, bucket_keys, call_api, table_items

OTHER = "arn:aws:iam::123456789012:user/someone-else"


def _policy(upload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(upload["fields"]["policy"]))


def _item(dataset_id: str) -> dict[str, Any]:
    [item] = [i for i in table_items() if i["pk"] == f"DATASET#{dataset_id}"]
    return item


def _create(name: str | None = None, owner: str = deployment.LOCAL_OWNER) -> str:
    response = call_api("POST", "/datasets", body={"name": name} if name else None, owner=owner)
    assert response.status == 201, response.body
    return str(response.body["dataset_id"])


# --- POST /datasets ---------------------------------------------------------------------------
def test_post_answers_a_presigned_post_whose_policy_carries_the_key_and_the_size_limit(aws: None) -> None:
    response = call_api("POST", "/datasets", body={"name": "my jazz"})

    assert response.status == 201
    created = response.body
    dataset_id = created["dataset_id"]
    assert created["status"] == "WAITING_FOR_UPLOAD"
    upload = created["upload"]
    assert upload["max_bytes"] == datasets.MAX_UPLOAD_BYTES == 256 * 1024 * 1024
    assert upload["fields"]["key"] == datasets.upload_key(dataset_id)
    conditions = _policy(upload)["conditions"]
    # moto's S3 does not enforce a POST policy, so the policy S3 would enforce is what is checked
    assert ["content-length-range", 1, datasets.MAX_UPLOAD_BYTES] in conditions
    assert {"key": datasets.upload_key(dataset_id)} in conditions
    assert BUCKET in upload["url"]
    item = _item(dataset_id)
    assert item["status"] == "WAITING_FOR_UPLOAD" and item["name"] == "my jazz"
    assert item["dataset_owner"] == deployment.LOCAL_OWNER and "owner" not in item  # not a job to GET /jobs


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "no/slashes"}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"name": 7}, "name"),
    ({"files": 3}, "files"),
])
def test_post_refuses_a_bad_field_by_name_and_stores_nothing(
    aws: None, body: dict[str, Any], field: str
) -> None:
    response = call_api("POST", "/datasets", body=body)

    assert response.status == 400
    assert response.body["error"]["field"] == field
    assert table_items() == []


# --- GET /datasets, GET /datasets/{id} --------------------------------------------------------------
def test_list_is_the_callers_newest_first_in_pages(aws: None) -> None:
    ids = [_create(f"set {n}") for n in range(3)]
    _create("theirs", owner=OTHER)

    first = call_api("GET", "/datasets", query={"limit": "2"}).body
    second = call_api("GET", "/datasets", query={"limit": "2", "next_token": first["next_token"]}).body

    listed = [d["dataset_id"] for d in first["datasets"] + second["datasets"]]
    assert listed == ids[::-1]
    assert second["next_token"] is None
    assert call_api("GET", "/jobs").body["jobs"] == []  # datasets are not jobs
    # a token is the caller's own
    stolen = call_api("GET", "/datasets", query={"next_token": first["next_token"]}, owner=OTHER)
    assert stolen.status == 400 and stolen.body["error"]["field"] == "next_token"


def test_another_callers_dataset_is_not_found_for_every_route(aws: None) -> None:
    dataset_id = _create()

    for method in ("GET", "DELETE"):
        response = call_api(method, f"/datasets/{dataset_id}", owner=OTHER)
        assert response.status == 404
        assert response.body["error"]["code"] == "dataset_not_found"
    assert call_api("GET", "/datasets/not-an-id").status == 404
    assert _item(dataset_id)["status"] == "WAITING_FOR_UPLOAD"
    with pytest.raises(DatasetNotFoundError) as found:
        get_dataset(OTHER, dataset_id)
    assert found.value.field == "dataset"
    assert get_dataset(deployment.LOCAL_OWNER, dataset_id)["status"] == "WAITING_FOR_UPLOAD"


def test_the_built_in_dataset_is_everyones_and_cannot_be_deleted(aws: None) -> None:
    entries = json.loads(datasets.BACH_INDEX_FILE.read_text())  # what the training's index says
    for owner in (deployment.LOCAL_OWNER, OTHER):
        shown = call_api("GET", "/datasets/bach-chorales", owner=owner).body
        assert shown["status"] == "READY" and shown["builtin"] is True
        summary = shown["summary"]
        assert summary["pieces"] == len(entries) > 300
        assert summary["windows"] == sum(entry["windows"] for entry in entries)
        assert summary["tags"]["mode:minor"] == sum("mode:minor" in entry["tags"] for entry in entries)

    refused = call_api("DELETE", "/datasets/bach-chorales")
    assert refused.status == 409 and refused.body["error"]["code"] == "dataset_state_conflict"


# --- DELETE /datasets/{id} --------------------------------------------------------------------
def test_delete_removes_the_item_and_every_object_under_its_prefix(aws: None) -> None:
    dataset_id, kept = _create(), _create()
    s3 = boto3.client("s3")
    for key in (datasets.pieces_key(dataset_id), datasets.report_key(dataset_id), datasets.report_key(kept)):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")

    assert call_api("DELETE", f"/datasets/{dataset_id}").status == 204

    assert bucket_keys() == [datasets.report_key(kept)]
    assert [i["dataset_id"] for i in table_items()] == [kept]
    assert call_api("GET", f"/datasets/{dataset_id}").status == 404


def test_delete_while_building_is_a_conflict_and_keeps_everything(aws: None) -> None:
    dataset_id = _create()
    assert DatasetsRepository(TABLE).start_build(dataset_id)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=datasets.upload_key(dataset_id), Body=b"zip")

    response = call_api("DELETE", f"/datasets/{dataset_id}")

    assert response.status == 409 and response.body["error"]["code"] == "dataset_state_conflict"
    assert _item(dataset_id)["status"] == "BUILDING"
    assert bucket_keys() == [datasets.upload_key(dataset_id)]


# --- the build function -----------------------------------------------------------------------
def _upload_event(key: str) -> dict[str, Any]:
    return {"Records": [{"eventName": "ObjectCreated:Post", "eventSource": "aws:s3",
                         "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}


def _upload(dataset_id: str, body: bytes) -> dict[str, Any]:
    key = datasets.upload_key(dataset_id)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return _upload_event(key)


def _build(event: dict[str, Any]) -> list[str]:
    from lambdas.datasets.handler import lambda_handler

    return list(lambda_handler(event, FakeContext(function_name="datasets"))["done"])


def test_an_upload_that_is_no_zip_ends_failed_with_a_reason_and_leaves_no_files(aws: None) -> None:
    dataset_id = _create()

    assert _build(_upload(dataset_id, b"this is not a zip file")) == ["FAILED"]

    shown = call_api("GET", f"/datasets/{dataset_id}").body
    assert shown["status"] == "FAILED"
    assert "zip" in shown["failure_reason"].lower()
    assert shown["summary"] is None and shown["report"] is None
    assert bucket_keys() == []  # the zip deleted, nothing built


def test_a_zip_bomb_ends_failed_saying_so_and_leaves_no_files(aws: None) -> None:
    # Given a zip whose one member inflates 10 MiB of zeros from a few kilobytes
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.mid", bytes(10 * 1024 * 1024))
    dataset_id = _create()

    assert _build(_upload(dataset_id, packed.getvalue())) == ["FAILED"]

    shown = call_api("GET", f"/datasets/{dataset_id}").body
    assert shown["status"] == "FAILED" and "zip bomb" in shown["failure_reason"]
    assert bucket_keys() == []  # the upload deleted, nothing built


def test_a_duplicate_event_builds_once(aws: None) -> None:
    dataset_id = _create()
    event = _upload(dataset_id, b"not a zip")
    assert _build(event) == ["FAILED"]
    failed_at = _item(dataset_id)["updated_at"]

    assert _build(event) == ["duplicate"]

    assert _item(dataset_id)["status"] == "FAILED" and _item(dataset_id)["updated_at"] == failed_at


def test_a_duplicate_event_while_building_leaves_the_build_alone(aws: None) -> None:
    dataset_id = _create()
    assert DatasetsRepository(TABLE).start_build(dataset_id)

    assert _build(_upload(dataset_id, b"PK")) == ["duplicate"]

    assert _item(dataset_id)["status"] == "BUILDING"
    assert bucket_keys() == [datasets.upload_key(dataset_id)]  # the running build's zip


def test_an_upload_for_no_dataset_is_deleted_unread(aws: None) -> None:
    unknown = "0" * 32

    assert _build(_upload(unknown, b"PK")) == ["deleted"]

    assert bucket_keys() == [] and table_items() == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_builds_ready_with_its_report(aws: None) -> None:
    from tests.integration.test_datasets import chorale_files

    dataset_id = _create()
    files = chorale_files()

    assert _build(_upload(dataset_id, _zip(files))) == ["READY"]

    shown = call_api("GET", f"/datasets/{dataset_id}").body
    summary = shown["summary"]
    assert shown["status"] == "READY"
    assert summary["files"] == len(files) and summary["accepted"] == len(files) - 1
    assert [r["file"] for r in summary["rejected"]] == ["jazz/two-voices.mid"]
    assert summary["rejected_count"] == 1
    assert summary["tags"]["jazz"] == 1
    assert shown["report"]["url"]
    assert set(bucket_keys()) == {datasets.pieces_key(dataset_id), datasets.index_key(dataset_id),
                                  datasets.report_key(dataset_id)}


def test_a_build_out_of_time_ends_failed_saying_what_to_do(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from gan import datasets as gan_datasets
    from lambdas.datasets import handler

    release = threading.Event()

    def endless(*args: Any, **kwargs: Any) -> dict[str, Any]:
        release.wait(30)
        raise gan_datasets.ArchiveError("released")

    monkeypatch.setattr(gan_datasets, "build_zip", endless)
    monkeypatch.setattr(handler, "_END_RESERVE_S", 29.0)  # FakeContext has 30 s: 1 s to build
    dataset_id = _create()
    try:
        assert _build(_upload(dataset_id, b"PK")) == ["FAILED"]
    finally:
        release.set()

    assert _item(dataset_id)["failure_reason"] == handler.TOO_LONG
    assert bucket_keys() == []


def test_a_build_that_died_is_ended_failed_by_the_next_event(aws: None) -> None:
    from lambdas.datasets import handler

    dataset_id = _create()
    assert DatasetsRepository(TABLE).start_build(dataset_id)
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key=datasets.dataset_key(dataset_id), UpdateExpression="SET updated_at = :then",
        ExpressionAttributeValues={":then": "2026-01-01T00:00:00.000Z"})

    assert _build(_upload(dataset_id, b"PK")) == ["FAILED"]

    assert _item(dataset_id)["failure_reason"] == handler.ABANDONED
    assert bucket_keys() == []
