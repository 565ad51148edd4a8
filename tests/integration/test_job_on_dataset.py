"""Jobs that train on a filtered dataset, through the whole local stack: the API counts the
filter from the dataset's index, the stream and the state machine give the training the tags
(and a user's built pieces as its `dataset` channel), and the training writes back what it
trained on. One stack for the module; its trainings run one after another (1 epoch each)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import datasets, statuses
from opencomposer.client import ApiError, Client
from opencomposer.local.stack import LocalStack, LocalStackOptions
from tests.integration.test_datasets import four_voices

pytestmark = pytest.mark.slow

TINY = {"epochs": 1, "batch_size": 16, "update_ratio": 1, "seed": 3}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-home")
    with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5)) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Client:
    return Client(stack.api_url)


def _finished(client: Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := client.get(job_id))["status"] not in statuses.FINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(1)
    return job


def _counted(index: list[dict[str, Any]], tags: list[str]) -> tuple[int, int]:
    kept = [entry for entry in index if datasets.matches(entry["tags"], tags)]
    return len(kept), sum(entry["windows"] for entry in kept)


def test_a_job_on_the_minor_chorales_trains_on_them_only(client: Client) -> None:
    bach = json.loads(datasets.BACH_INDEX_FILE.read_text())
    minor_pieces, minor_windows = _counted(bach, ["mode:minor"])
    assert 0 < minor_pieces < len(bach)

    job = client.submit({"hyperparameters": TINY, "tags": ["mode:minor"]})

    # At submit: the API's count of the minor chorales in the packaged index
    assert job["training_data"] == {"dataset": datasets.BACH_DATASET_ID, "tags": ["mode:minor"],
                                    "pieces": minor_pieces, "windows": minor_windows}
    done = _finished(client, job["job_id"])
    assert done["status"] == "COMPLETED", done["failure_reason"]
    # After: what the training trained on, its training split of those pieces (the rest held out
    # to validate), never the major ones
    data = done["training_data"]
    assert (data["dataset"], data["tags"]) == (datasets.BACH_DATASET_ID, ["mode:minor"])
    assert 0 < data["pieces"] <= minor_pieces and 0 < data["windows"] <= minor_windows
    assert data["pieces"] >= minor_pieces // 2


def test_a_filter_that_leaves_too_little_is_refused_before_anything_starts(client: Client) -> None:
    before = client.list()["jobs"]

    with pytest.raises(ApiError) as unknown:
        client.submit({"hyperparameters": TINY, "tags": ["mode:minor", "no-such-folder"]})
    with pytest.raises(ApiError) as missing:
        client.submit({"dataset": "0" * 32})

    assert (unknown.value.status, unknown.value.field) == (400, "tags")
    assert "mode:major" in unknown.value.message  # the tags that do exist
    assert (missing.value.status, missing.value.field) == (404, "dataset")
    assert client.list()["jobs"] == before


def _piece(transpose: int, bars: int = 16) -> bytes:
    """Four voices of 4/4 quarters (a soprano over a C major / A minor pattern), `bars` long."""
    return four_voices(transpose=transpose, bars=bars)


def test_a_job_on_a_users_dataset_trains_on_its_tagged_folder(client: Client, tmp_path: Path) -> None:
    # Given a user's dataset: four pieces in `jazz/`, two outside it
    folder = tmp_path / "collection"
    (folder / "jazz").mkdir(parents=True)
    for n in range(4):
        (folder / "jazz" / f"tune{n}.mid").write_bytes(_piece(transpose=n - 2))
    for n in range(2):
        (folder / f"other{n}.mid").write_bytes(_piece(transpose=n + 3))
    created = client.upload_dataset(folder, name="jazz and more")
    dataset = client.wait_dataset(created["dataset_id"], timeout=180)
    assert dataset["status"] == datasets.READY, dataset
    jazz = dataset["summary"]["tags"]["jazz"]
    assert jazz == 4 and dataset["summary"]["pieces"] == 6

    # When a job trains on it, filtered by the folder's tag
    job = client.submit({"hyperparameters": TINY, "dataset": dataset["dataset_id"], "tags": ["jazz"]})

    # Then it counts and trains on the jazz pieces only, read from its `dataset` channel
    assert (job["training_data"]["dataset"], job["training_data"]["pieces"]) == (dataset["dataset_id"], jazz)
    done = _finished(client, job["job_id"])
    assert done["status"] == "COMPLETED", done["failure_reason"]
    assert 0 < done["training_data"]["pieces"] <= jazz
    assert done["training_data"]["windows"] <= job["training_data"]["windows"]
