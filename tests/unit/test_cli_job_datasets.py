"""`opencomposer submit --dataset ID --tag TAG ...` and the training data line of `opencomposer
status`, against test_client_cli's scripted HTTP API."""

from __future__ import annotations

import json

import pytest

from opencomposer import cli
from tests.unit.test_client_cli import JOB, _Api, _job
from tests.unit.test_client_cli import api as api  # noqa: F401 (the fixture)

DATASET = "d" * 32


def test_submit_sends_the_dataset_and_every_tag(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("POST", "/jobs", (202, _job("SUBMITTED")))

    flags = ["--dataset", DATASET, "--tag", "mode:minor", "--tag", "jazz"]
    code = cli.main(["submit", "--api", api.url, *flags])

    assert code == 0 and capsys.readouterr().out.strip() == JOB
    assert json.loads(api.requests[0]["body"]) == {"dataset": DATASET, "tags": ["mode:minor", "jazz"]}


def test_submit_without_them_sends_neither(api: _Api) -> None:
    api.on("POST", "/jobs", (202, _job("SUBMITTED")))

    assert cli.main(["submit", "--api", api.url]) == 0
    assert json.loads(api.requests[0]["body"]) == {}


def test_a_refused_filter_is_reported_with_the_apis_message(
    api: _Api, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"code": "invalid_field", "field": "tags",
             "message": "the tags meter:3/4 leave 1 piece(s) and 20 window(s); a job needs at least 2 pieces"}
    api.on("POST", "/jobs", (400, {"error": error}))

    assert cli.main(["submit", "--api", api.url, "--tag", "meter:3/4"]) != 0
    assert "leave 1 piece(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("training_data", "line"),
    [
        ({"dataset": "bach-chorales", "tags": ["mode:minor", "meter:4/4"], "pieces": 1234, "windows": 25000},
         "training data:   bach-chorales, tags mode:minor meter:4/4: 1,234 pieces, 25,000 windows"),
        ({"dataset": DATASET, "tags": [], "pieces": 12, "windows": 300},
         f"training data:   {DATASET}, all pieces: 12 pieces, 300 windows"),
        ({"dataset": "bach-chorales", "tags": [], "pieces": None, "windows": None},
         "training data:   bach-chorales, all pieces"),
    ],
)
def test_status_shows_what_the_job_trains_on(
    api: _Api, capsys: pytest.CaptureFixture[str], training_data: dict[str, object], line: str
) -> None:
    api.on("GET", f"/jobs/{JOB}", (200, _job("TRAINING", epoch=1, training_data=training_data)))

    assert cli.main(["status", "--api", api.url, JOB]) == 0
    assert line in capsys.readouterr().out.splitlines()


def test_status_of_a_job_from_before_datasets_has_no_training_data_line(
    api: _Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("GET", f"/jobs/{JOB}", (200, _job("COMPLETED", epoch=4, training_data=None)))

    assert cli.main(["status", "--api", api.url, JOB]) == 0
    assert "training data" not in capsys.readouterr().out
