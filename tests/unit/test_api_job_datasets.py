"""POST /jobs with `dataset` and `tags` against moto: what a job trains on, counted from the
dataset's index before anything is stored, and every way a dataset or a filter refuses a job.

The indexes here are small and written by the tests (the contract's shape: one entry per piece,
`{"name", "tags", "bars", "windows"}`), so each count below can be checked by hand."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from contracts import datasets, deployment
from lambdas.common import datasets as job_datasets
from lambdas.common.dal import datasets as dal_datasets
from tests.unit.conftest import BUCKET, TABLE, bucket_keys, call_api, put_job_item, table_items
from tests.unit.test_api_openapi import check


def piece(name: str, tags: list[str], windows: int) -> dict[str, Any]:
    return {"name": name, "tags": tags, "bars": windows + 3, "windows": windows}


# Bach-like: 5 major pieces in 4/4 (40 windows each), 3 minor in 4/4 (30 each), 1 minor in 3/4 (20).
BACH = [
    *(piece(f"bwv{n}", ["mode:major", "meter:4/4", "key:g-major"], 40) for n in range(5)),
    *(piece(f"bwv{n}", ["mode:minor", "meter:4/4", "key:a-minor"], 30) for n in range(5, 8)),
    piece("bwv8", ["mode:minor", "meter:3/4", "key:d-minor"], 20),
]
# A user's: folders as tags; `jazz` 3 pieces (50 windows each), `folk` 1 piece (10).
USERS = [
    *(piece(f"jazz/tune{n}.mid", ["jazz", "mode:major", "meter:4/4"], 50) for n in range(2)),
    piece("jazz/blue.mid", ["jazz", "mode:minor", "meter:4/4"], 50),
    piece("folk/reel.mid", ["folk", "mode:major", "meter:2/4"], 10),
]


@pytest.fixture
def bach_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The packaged Bach index replaced by BACH (read once per process: the caches cleared)."""
    path = tmp_path / "bach_index.json"
    path.write_text(json.dumps(BACH))
    monkeypatch.setattr(datasets, "BACH_INDEX_FILE", path)
    job_datasets.bach_index.cache_clear()
    dal_datasets.bach_dataset.cache_clear()
    yield
    job_datasets.bach_index.cache_clear()
    dal_datasets.bach_dataset.cache_clear()


def user_dataset(owner: str = deployment.LOCAL_OWNER, index: list[dict[str, Any]] | None = USERS,
                 status: str = datasets.READY) -> str:
    """A dataset of `owner` in `status` (through the repository's own moves), its index in S3."""
    dataset_id = uuid.uuid4().hex
    repository = dal_datasets.DatasetsRepository(TABLE)
    repository.put_new(dataset_id, owner, "mine")
    if status != datasets.WAITING_FOR_UPLOAD:
        assert repository.start_build(dataset_id)
    if status in datasets.FINAL_DATASET_STATUSES:
        report = {"files": 1, "accepted": 1, "rejected": [], "pieces": 1, "bars": 1, "windows": 1, "tags": {}}
        ready = status == datasets.READY
        assert repository.end_build(dataset_id, report if ready else None, None if ready else "no MIDI files")
    if index is not None:
        boto3.client("s3").put_object(Bucket=BUCKET, Key=datasets.index_key(dataset_id),
                                      Body=json.dumps(index).encode())
    return dataset_id


def job_items() -> list[dict[str, Any]]:
    return [item for item in table_items() if item.get("item_type") == "job"]


def refused(body: dict[str, Any], status: int, field: str) -> str:
    """The refusal's message, after checking it names `field` and stored no job and no melody."""
    keys_before = bucket_keys()
    response = check("POST", "/jobs", call_api("POST", "/jobs", body=body))  # a documented answer
    assert response.status == status, response.body
    assert response.body["error"]["field"] == field
    assert job_items() == [] and bucket_keys() == keys_before
    return str(response.body["error"]["message"])


# --- what a job trains on ---------------------------------------------------------------------
def test_a_job_without_a_dataset_trains_on_all_the_bach_chorales(aws: None, bach_index: None) -> None:
    job = call_api("POST", "/jobs").body

    assert job["training_data"] == {"dataset": "bach-chorales", "tags": [], "pieces": 9, "windows": 310}
    assert call_api("GET", f"/jobs/{job['job_id']}").body["training_data"] == job["training_data"]


def test_tags_filter_the_chorales_and_the_job_records_what_they_keep(aws: None, bach_index: None) -> None:
    job = call_api("POST", "/jobs", body={"dataset": "bach-chorales", "tags": ["mode:minor"]}).body

    assert job["training_data"] == {"dataset": "bach-chorales", "tags": ["mode:minor"], "pieces": 4,
                                    "windows": 110}
    # every tag must hold: minor and 4/4 keeps three pieces
    both = call_api("POST", "/jobs", body={"tags": ["mode:minor", "meter:4/4"]}).body
    assert (both["training_data"]["pieces"], both["training_data"]["windows"]) == (3, 90)
    [stored] = [i for i in job_items() if i["job_id"] == job["job_id"]]
    assert stored["training_data"]["tags"] == ["mode:minor"]


def test_a_job_trains_on_its_owners_ready_dataset_filtered_by_a_folder_tag(aws: None) -> None:
    dataset_id = user_dataset()

    body = {"dataset": dataset_id, "tags": ["jazz"]}
    job = check("POST", "/jobs", call_api("POST", "/jobs", body=body)).body

    assert job["training_data"] == {"dataset": dataset_id, "tags": ["jazz"], "pieces": 3, "windows": 150}
    listed = call_api("GET", "/jobs").body["jobs"]
    assert [j["training_data"] for j in listed] == [job["training_data"]]


def test_an_idempotent_replay_answers_the_first_jobs_training_data(aws: None, bach_index: None) -> None:
    body = {"tags": ["mode:major"]}
    first = call_api("POST", "/jobs", body=body, headers={"Idempotency-Key": "data-1"}).body
    again = call_api("POST", "/jobs", body=body, headers={"Idempotency-Key": "data-1"}).body

    assert again == first and first["training_data"]["pieces"] == 5
    assert len(job_items()) == 1
    # the filter is part of the request: the same key with other tags is another request
    other = call_api("POST", "/jobs", body={"tags": ["mode:minor"]}, headers={"Idempotency-Key": "data-1"})
    assert other.status == 409


def test_a_job_from_before_datasets_still_reads_with_no_training_data(aws: None) -> None:
    put_job_item("c" * 32, "COMPLETED")

    assert call_api("GET", f"/jobs/{'c' * 32}").body["training_data"] is None
    assert call_api("GET", "/jobs").body["jobs"][0]["training_data"] is None


def test_the_training_overwrites_the_counts_with_its_own_and_the_api_shows_them(aws: None) -> None:
    training_data = {"dataset": "bach-chorales", "tags": ["mode:minor"], "pieces": 3, "windows": 81}
    put_job_item("d" * 32, "TRAINING", training_data=training_data)

    assert call_api("GET", f"/jobs/{'d' * 32}").body["training_data"] == training_data


def test_a_job_from_before_datasets_shows_the_counts_its_training_wrote(aws: None) -> None:
    # its training found no training_data to update and wrote the counts alone (gan.reporter)
    put_job_item("d" * 32, "TRAINING", training_data={"pieces": 300, "windows": 9000})

    answer = check("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{'d' * 32}"))
    assert answer.body["training_data"] == {"dataset": "bach-chorales", "tags": [], "pieces": 300,
                                            "windows": 9000}


# --- what refuses a job -----------------------------------------------------------------------
def test_a_dataset_of_another_owner_is_as_unknown_as_a_missing_one(aws: None) -> None:
    theirs = user_dataset(owner="someone-else")

    for dataset_id in (theirs, uuid.uuid4().hex):
        message = refused({"dataset": dataset_id}, 404, "dataset")
        assert dataset_id in message


@pytest.mark.parametrize("dataset", ["Bach", "0" * 31, "g" * 32, "../x", ""])
def test_a_dataset_that_is_not_an_id_is_a_400(aws: None, dataset: str) -> None:
    assert "dataset id" in refused({"dataset": dataset}, 400, "dataset")


@pytest.mark.parametrize("status", [datasets.WAITING_FOR_UPLOAD, datasets.BUILDING, datasets.FAILED])
def test_a_dataset_that_is_not_ready_is_a_409_saying_its_status(aws: None, status: str) -> None:
    dataset_id = user_dataset(status=status, index=None)

    message = refused({"dataset": dataset_id}, 409, "dataset")

    assert status in message
    if status == datasets.FAILED:
        assert "no MIDI files" in message  # the build's reason, to act on


def test_a_ready_dataset_whose_index_is_gone_is_a_409_not_a_crash(aws: None) -> None:
    dataset_id = user_dataset(index=None)

    assert "index" in refused({"dataset": dataset_id}, 409, "dataset")


def test_a_tag_no_piece_carries_is_a_400_listing_tags_that_exist(aws: None, bach_index: None) -> None:
    message = refused({"tags": ["mode:minor", "jazz"]}, 400, "tags")

    assert "'jazz'" in message and "mode:minor" in message.split("include")[1]
    # a user's folder tags are offered for a user's dataset
    dataset_id = user_dataset()
    assert "folk" in refused({"dataset": dataset_id, "tags": ["bebop"]}, 400, "tags")


def test_a_filter_that_leaves_too_few_pieces_or_windows_is_a_400_saying_how_many(
    aws: None, bach_index: None
) -> None:
    # One 3/4 piece: fewer than MIN_PIECES.
    message = refused({"tags": ["meter:3/4"]}, 400, "tags")
    assert "1 piece(s) and 20 window(s)" in message and f"{datasets.MIN_PIECES} pieces" in message
    # One folk piece, 10 windows; and two pieces with too few windows.
    dataset_id = user_dataset(index=[*USERS, piece("folk/jig.mid", ["folk"], 10)])
    message = refused({"dataset": dataset_id, "tags": ["folk"]}, 400, "tags")
    assert "2 piece(s) and 20 window(s)" in message and f"{datasets.MIN_WINDOWS} windows" in message


def test_a_whole_dataset_too_small_to_train_is_a_400_naming_the_dataset(aws: None) -> None:
    dataset_id = user_dataset(index=[piece("a.mid", ["mode:major"], 100)])

    assert "1 piece(s)" in refused({"dataset": dataset_id}, 400, "dataset")


@pytest.mark.parametrize(
    ("tags", "field", "problem"),
    [
        (["Mode:Minor"], "tags", "not a tag"),
        (["jazz!"], "tags", "not a tag"),
        ([""], "tags", "not a tag"),
        (["x" * 65], "tags", "not a tag"),
        (["jazz", "jazz"], "tags", "more than once"),
        ([f"t{n}" for n in range(datasets.MAX_JOB_TAGS + 1)], "tags", f"at most {datasets.MAX_JOB_TAGS}"),
        ("mode:minor", "tags", "array"),
        (["jazz", 7], "tags.1", "string"),  # the one element at fault
    ],
)
def test_malformed_tags_are_a_400_naming_tags(aws: None, tags: Any, field: str, problem: str) -> None:
    assert problem in refused({"tags": tags}, 400, field)


def test_a_deployment_without_the_bach_index_still_trains_unfiltered_but_refuses_tags(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "BACH_INDEX_FILE", tmp_path / "absent.json")
    job_datasets.bach_index.cache_clear()
    try:
        refused({"tags": ["mode:minor"]}, 409, "tags")
        job = call_api("POST", "/jobs").body
    finally:
        job_datasets.bach_index.cache_clear()

    assert job["training_data"] == {"dataset": "bach-chorales", "tags": [], "pieces": None, "windows": None}


def test_the_packaged_bach_index_is_what_a_default_job_counts(aws: None) -> None:
    # the real index (contracts/bach_index.json, generated from the training's own reader)
    job_datasets.bach_index.cache_clear()
    index = json.loads(datasets.BACH_INDEX_FILE.read_text())
    minor = [entry for entry in index if "mode:minor" in entry["tags"]]

    everything = call_api("POST", "/jobs").body["training_data"]
    filtered = call_api("POST", "/jobs", body={"tags": ["mode:minor"]}).body["training_data"]

    assert (everything["pieces"], everything["windows"]) == (len(index), sum(e["windows"] for e in index))
    assert (filtered["pieces"], filtered["windows"]) == (len(minor), sum(e["windows"] for e in minor))
    assert 0 < filtered["pieces"] < everything["pieces"]
