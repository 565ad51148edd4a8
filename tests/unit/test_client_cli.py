"""The client and the CLI against a small scripted HTTP API (the real one runs in the
integration test): request shapes, signing, error reporting, progress, downloads, exit codes;
one file because the CLI is tested through the client against the same scripted API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from contracts import hyperparameters, instruments, names, routes, statuses
from contracts.events import match_resource
from opencomposer import cli
from opencomposer.client import ApiError, Client, _region_of

JOB = "a" * 32
DATASET = "d" * 32
COMPOSITION = "0190f3a1b2c3d4e5f601"


class _Api:
    """Answers scripted replies per (method, path) and records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: dict[str, str] = {}  # sent with every answer
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                replies = api.routes.get((self.command, self.path)) or [
                    (404, {"error": {"code": "not_found"}})
                ]
                status, payload = replies.pop(0) if len(replies) > 1 else replies[0]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in api.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, method: str, path: str, *replies: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(replies)


@pytest.fixture()
def api() -> Iterator[_Api]:
    server = _Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _job(status: str, epoch: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": "a" * 32,
        "status": status,
        "progress": {
            "epoch": epoch,
            "epochs": 4,
            "metrics": {"generator_loss": 1.5, "critic_loss": -0.25, "similarity": 0.8},
        },
        **extra,
    }


def test_submit_sends_the_flags_as_the_documented_body(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("POST", "/jobs", (202, _job("SUBMITTED")))

    code = cli.main(
        [
            "submit",
            "--api",
            api.url,
            "--name",
            "mine",
            "--epochs",
            "3",
            "--learning-rate",
            "0.01",
            "--sample",
            "twinkle-twinkle",
            "--idempotency-key",
            "k-1",
        ]
    )

    assert code == 0
    assert capsys.readouterr().out.strip() == "a" * 32
    request = api.requests[0]
    assert json.loads(request["body"]) == {
        "name": "mine",
        "hyperparameters": {"epochs": 3, "learning_rate": 0.01},
        "melody": {"sample": "twinkle-twinkle"},
    }
    assert request["headers"]["Idempotency-Key"] == "k-1"
    assert "Authorization" not in request["headers"], "the local stack needs no signature"


def test_submit_with_a_midi_file_sends_it_as_base64(api: _Api, tmp_path: Path) -> None:
    api.on("POST", "/jobs", (202, _job("SUBMITTED")))
    midi = tmp_path / "tune.mid"
    midi.write_bytes(b"MThd\x00\x00")

    assert cli.main(["submit", "--api", api.url, "--midi", str(midi)]) == 0
    assert json.loads(api.requests[0]["body"]) == {"melody": {"midi_base64": "TVRoZAAA"}}


def test_an_api_error_names_the_field_and_exits_3(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    error = {
        "error": {
            "code": "invalid_field",
            "message": "must be at most 10000",
            "field": "hyperparameters.epochs",
        }
    }
    api.on("POST", "/jobs", (400, error))

    code = cli.main(["submit", "--api", api.url, "--epochs", "99999"])

    assert code == cli.EXIT_API
    err = capsys.readouterr().err
    assert "400 invalid_field" in err and "hyperparameters.epochs" in err


def test_wait_shows_progress_and_exits_non_zero_with_the_reason_on_failure(
    api: _Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on(
        "GET",
        "/jobs/" + "a" * 32,
        (200, _job("TRAINING", epoch=1)),
        (200, _job("TRAINING", epoch=2)),
        (200, _job("FAILED", epoch=2, failure_reason="AlgorithmError: out of memory")),
    )

    code = cli.main(["wait", "--api", api.url, "a" * 32, "--interval", "0.01"])

    captured = capsys.readouterr()
    assert code == cli.EXIT_JOB_FAILED
    assert "epoch 1/4" in captured.err and "epoch 2/4" in captured.err
    assert "G 1.500" in captured.err and "C -0.250" in captured.err and "similarity 0.800" in captured.err
    assert "FAILED: AlgorithmError: out of memory" in captured.err


def test_wait_exits_zero_when_completed(api: _Api) -> None:
    api.on("GET", "/jobs/" + "a" * 32, (200, _job("COMPLETED", epoch=4)))
    assert cli.main(["wait", "--api", api.url, "a" * 32, "--interval", "0.01"]) == 0


def _training_output(api: _Api, name: str, created: str = "2026-11-27T15:00:00.000Z") -> dict[str, Any]:
    return {
        "composition_id": name,
        "job_id": JOB,
        "kind": "training",
        "name": name,
        "url": f"{api.url}/files/{name}.mid?X-Amz-Signature=s",
        "expires_at": "2026-11-27T16:00:00.000Z",
        "created_at": created,
    }


def _composition(api: _Api, composition_id: str = COMPOSITION, **extra: Any) -> dict[str, Any]:
    return {
        "composition_id": composition_id,
        "job_id": JOB,
        "kind": "composition",
        "name": "twinkle-twinkle seed 7",
        "url": f"{api.url}/files/{composition_id}.mid?X-Amz-Signature=s",
        "expires_at": "2026-11-27T16:00:00.000Z",
        "created_at": "2026-11-27T15:30:00.000Z",
        "melody": {"sample": "twinkle-twinkle"},
        "seed": 7,
        "temperature": 0.5,
        "instruments": instruments.as_json(instruments.PRESETS["strings"]),
        "bars": 12,
        "metrics": {"similarity": 0.81, "consonance": 0.9, "in_key_ratio": 0.97},
        "reference": {"consonance": 0.918, "in_key_ratio": 0.99},
        **extra,
    }


def test_download_fetches_every_composition_of_every_page_into_out_job_id(api: _Api, tmp_path: Path) -> None:
    # Given two pages: a composition and the final one, then an epoch sample
    mine = _composition(api)
    api.on("GET", f"/files/{COMPOSITION}.mid?X-Amz-Signature=s", (200, b"MThd-mine"))
    api.on("GET", "/files/final.mid?X-Amz-Signature=s", (200, b"MThd-final"))
    api.on("GET", "/files/epoch-0002.mid?X-Amz-Signature=s", (200, b"MThd-sample"))
    api.on(
        "GET",
        f"/jobs/{JOB}/compositions",
        (200, {"compositions": [mine, _training_output(api, "final")], "next_token": "page 2"}),
    )
    api.on(
        "GET",
        f"/jobs/{JOB}/compositions?next_token=page+2",
        (200, {"compositions": [_training_output(api, "epoch-0002")], "next_token": None}),
    )

    # When downloading
    assert cli.main(["download", "--api", api.url, JOB, "--out", str(tmp_path)]) == 0

    # Then every file is there: the training's by name, the composition by its id
    assert (tmp_path / JOB / "final.mid").read_bytes() == b"MThd-final"
    assert (tmp_path / JOB / "epoch-0002.mid").read_bytes() == b"MThd-sample"
    assert (tmp_path / JOB / f"{COMPOSITION}.mid").read_bytes() == b"MThd-mine"
    assert sorted(p.name for p in (tmp_path / JOB).iterdir()) == sorted(
        ["final.mid", "epoch-0002.mid", f"{COMPOSITION}.mid"]
    ), "no partial files are left behind"
    # and no signature or API header goes to the presigned URLs
    fetched = [r for r in api.requests if r["path"].startswith("/files/")]
    assert len(fetched) == 3 and not any("Authorization" in r["headers"] for r in fetched)


@pytest.mark.parametrize("name", ["../escape", "..", "a/../../b", ".hidden", ""])
def test_download_refuses_a_name_that_could_leave_the_folder(
    api: _Api, tmp_path: Path, name: str
) -> None:
    output = {**_training_output(api, "final"), "name": name, "composition_id": name}
    api.on("GET", f"/jobs/{JOB}/compositions", (200, {"compositions": [output], "next_token": None}))

    with pytest.raises(ApiError, match="refusing to write"):
        Client(api.url).download(JOB, tmp_path / "out")
    assert not [r for r in api.requests if r["path"].startswith("/files/")]


def test_compose_sends_the_documented_body_writes_the_midi_and_shows_the_metrics(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a trained job whose compose answers with a composition and its MIDI
    monkeypatch.chdir(tmp_path)
    api.on("POST", f"/jobs/{JOB}/compositions", (201, _composition(api)))
    api.on("GET", f"/files/{COMPOSITION}.mid?X-Amz-Signature=s", (200, b"MThd-composed"))
    flags = ["--seed", "7", "--temperature", "0.5", "--instruments", "strings", "--name", "mine"]

    # When composing with a sample melody and no -o
    code = cli.main(["compose", "--api", api.url, JOB, "--sample", "twinkle-twinkle", *flags])

    # Then the body is the documented one
    assert code == 0
    request = api.requests[0]
    assert (request["method"], request["path"]) == ("POST", f"/jobs/{JOB}/compositions")
    assert json.loads(request["body"]) == {
        "melody": {"sample": "twinkle-twinkle"},
        "seed": 7,
        "temperature": 0.5,
        "instruments": "strings",
        "name": "mine",
    }
    # and the MIDI is in out/<job_id>/<composition_id>.mid, whose path comes first
    expected = Path("out") / JOB / f"{COMPOSITION}.mid"
    assert (tmp_path / expected).read_bytes() == b"MThd-composed"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(expected)
    # then what it is and its metrics beside Bach's
    assert "bars:            12" in lines and "seed:            7" in lines
    assert "instruments:     strings" in lines
    (this,) = (line for line in lines if line.startswith("this "))
    (bach,) = (line for line in lines if line.startswith("Bach "))
    header = lines[lines.index(this) - 1]
    assert [c.strip() for c in header.split("  ") if c.strip()] == ["similarity", "in key", "consonant"]
    assert this.split() == ["this", "0.810", "0.970", "0.900"]
    assert bach.split() == ["Bach", "-", "0.990", "0.918"]


def test_compose_with_a_midi_file_and_explicit_voices(
    api: _Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("POST", f"/jobs/{JOB}/compositions", (201, _composition(api)))
    api.on("GET", f"/files/{COMPOSITION}.mid?X-Amz-Signature=s", (200, b"MThd-composed"))
    midi = tmp_path / "tune.mid"
    midi.write_bytes(b"MThd\x00\x00")
    voices = '[{"program": 73, "name": "Flute"}, 71, 70, 58]'
    out = tmp_path / "songs" / "mine.mid"

    flags = ["--midi", str(midi), "--instruments", voices, "-o", str(out), "--json"]
    code = cli.main(["compose", JOB, "--api", api.url, *flags])

    assert code == 0
    assert json.loads(api.requests[0]["body"]) == {
        "melody": {"midi_base64": "TVRoZAAA"},
        "instruments": [{"program": 73, "name": "Flute"}, 71, 70, 58],
    }, "what is left out takes the API's defaults"
    assert out.read_bytes() == b"MThd-composed"
    captured = capsys.readouterr()
    assert json.loads(captured.out) == _composition(api), "--json: stdout is the API's JSON"
    assert captured.err.strip() == str(out)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sample", "twinkle-twinkle", "--instruments", "stringz"], "unknown preset 'stringz'"),
        (["--sample", "twinkle-twinkle", "--instruments", "[1, 2, 3]"], "3 voices given"),
        (["--sample", "twinkle-twinkle", "--instruments", "[0, 0, 0, 128]"], "instruments[3]"),
        (["--sample", "twinkle-twinkle", "--seed", "-1"], "--seed"),
        (["--sample", "twinkle-twinkle", "--temperature", "1.5"], "--temperature"),
        (["--seed", "1"], "--sample"),
    ],
)
def test_a_bad_compose_flag_fails_before_any_request(
    api: _Api, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compose", "--api", api.url, JOB, *flags])

    assert exit_.value.code == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert api.requests == []


def test_a_compose_the_api_refuses_names_the_field(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    error = {"error": {"code": "invalid_field", "message": "unknown sample", "field": "melody.sample"}}
    api.on("POST", f"/jobs/{JOB}/compositions", (400, error))

    assert cli.main(["compose", "--api", api.url, JOB, "--sample", "nope"]) == cli.EXIT_API
    err = capsys.readouterr().err
    assert "400 invalid_field" in err and "melody.sample" in err


def test_compositions_pages_through_next_token(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    first = {"compositions": [_composition(api), _training_output(api, "final")], "next_token": "t2"}
    second = {"compositions": [_training_output(api, "epoch-0001")], "next_token": None}
    api.on("GET", f"/jobs/{JOB}/compositions?limit=2", (200, first))
    api.on("GET", f"/jobs/{JOB}/compositions?limit=2&next_token=t2", (200, second))

    # The CLI shows one page as a table and how to get the next
    assert cli.main(["compositions", "--api", api.url, JOB, "--limit", "2"]) == 0
    header, mine, final, more = capsys.readouterr().out.splitlines()
    assert header.split() == ["COMPOSITION", "ID", "KIND", "NAME", "CREATED", "BARS", "SEED"]
    assert mine.split() == [COMPOSITION, "composition", "twinkle-twinkle", "seed", "7",
                            "2026-11-27T15:30:00.000Z", "12", "7"]
    assert final.split() == ["final", "training", "final", "2026-11-27T15:00:00.000Z", "-", "-"]
    assert more == "more: --next-token t2"

    flags = ["--limit", "2", "--next-token", "t2", "--json"]
    assert cli.main(["compositions", "--api", api.url, JOB, *flags]) == 0
    assert json.loads(capsys.readouterr().out) == second

    # and the client iterates every page
    names = [c["composition_id"] for c in Client(api.url).all_compositions(JOB, limit=2)]
    assert names == [COMPOSITION, "final", "epoch-0001"]


def test_delete_composition(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("DELETE", f"/jobs/{JOB}/compositions/{COMPOSITION}", (204, b""))
    error = {"error": {"code": "training_output", "message": "the training's MIDI stays with the job"}}
    api.on("DELETE", f"/jobs/{JOB}/compositions/final", (409, error))

    assert cli.main(["delete-composition", "--api", api.url, JOB, COMPOSITION]) == 0
    assert capsys.readouterr().out.strip() == f"deleted {COMPOSITION}"
    assert cli.main(["delete-composition", "--api", api.url, JOB, "final"]) == cli.EXIT_API
    assert "409 training_output" in capsys.readouterr().err
    with pytest.raises(ApiError, match="not a composition id"):
        Client(api.url).delete_composition(JOB, "../../jobs")
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("DELETE", f"/jobs/{JOB}/compositions/{COMPOSITION}"),
        ("DELETE", f"/jobs/{JOB}/compositions/final"),
    ]


def test_melodies_prints_a_table(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    twinkle = {"name": "twinkle-twinkle", "title": "Twinkle, Twinkle", "bars": 12, "meter": "4/4",
               "key": "C major", "tempo_bpm": 100}
    api.on("GET", "/melodies", (200, {"melodies": [twinkle]}))

    assert cli.main(["melodies", "--api", api.url]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "TITLE", "BARS", "METER", "KEY", "BPM"]
    assert row.split() == ["twinkle-twinkle", "Twinkle,", "Twinkle", "12", "4/4", "C", "major", "100"]
    assert cli.main(["melodies", "--api", api.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"melodies": [twinkle]}


def test_model_downloads_the_model(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    link = {"job_id": JOB, "url": f"{api.url}/files/model.tar.gz?X-Amz-Signature=s",
            "expires_at": "2026-11-27T16:00:00.000Z"}
    api.on("GET", f"/jobs/{JOB}/model", (200, link))
    api.on("GET", "/files/model.tar.gz?X-Amz-Signature=s", (200, b"\x1f\x8b-model"))

    assert cli.main(["model", "--api", api.url, JOB, "-o", "model.tar.gz"]) == 0
    assert (tmp_path / "model.tar.gz").read_bytes() == b"\x1f\x8b-model"
    assert capsys.readouterr().out.strip() == "model.tar.gz"

    assert cli.main(["model", "--api", api.url, JOB]) == 0
    default = Path("out") / JOB / "model.tar.gz"
    assert (tmp_path / default).read_bytes() == b"\x1f\x8b-model"
    assert capsys.readouterr().out.strip() == str(default)


def test_model_before_the_job_completed_is_an_api_error(
    api: _Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"error": {"code": "job_not_completed", "message": "the job is TRAINING"}}
    api.on("GET", f"/jobs/{JOB}/model", (409, error))

    assert cli.main(["model", "--api", api.url, JOB, "-o", str(tmp_path / "m.tar.gz")]) == cli.EXIT_API
    assert "409 job_not_completed" in capsys.readouterr().err
    assert not (tmp_path / "m.tar.gz").exists()


def test_status_shows_how_to_download_the_model(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    job = _job("COMPLETED", epoch=4, outputs={"model": f"/jobs/{JOB}/model", "compositions": ["final"]})
    api.on("GET", f"/jobs/{JOB}", (200, job))

    assert cli.main(["status", "--api", api.url, JOB]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"model:           /jobs/{JOB}/model  (download: opencomposer model {JOB})" in out
    assert "compositions:    final" in out


def test_status_says_what_a_starting_job_waits_for(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    job = _job("STARTING", status_message="waiting for training capacity")
    api.on("GET", f"/jobs/{JOB}", (200, job))

    assert cli.main(["status", "--api", api.url, JOB]) == 0
    assert "waiting:         waiting for training capacity" in capsys.readouterr().out.splitlines()


def test_list_passes_the_query(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("GET", "/jobs?status=COMPLETED&limit=5", (200, {"jobs": [], "next_token": None}))
    assert cli.main(["list", "--api", api.url, "--status", "COMPLETED", "--limit", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"jobs": [], "next_token": None}


def test_list_status_and_metrics_print_tables_for_people(
    api: _Api, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job("TRAINING", epoch=2, name="my first bach", created_at="2026-11-27T15:00:00.000Z")
    api.on("GET", "/jobs", (200, {"jobs": [job], "next_token": "abc"}))
    api.on("GET", f"/jobs/{'a' * 32}", (200, job))
    epoch = {"epoch": 1, "generator_loss": 1.5, "critic_loss": -0.25, "similarity": 0.8, "consonance": 0.9}
    api.on("GET", f"/jobs/{'a' * 32}/metrics", (200, {"epochs": [epoch], "reference": {"consonance": 0.918}}))

    assert cli.main(["list", "--api", api.url]) == 0
    header, row, more = capsys.readouterr().out.splitlines()
    assert header.split() == ["JOB", "ID", "NAME", "STATUS", "EPOCH", "SIMILARITY", "CREATED"]
    created = "2026-11-27T15:00:00.000Z"
    assert row.split() == ["a" * 32, "my", "first", "bach", "TRAINING", "2/4", "0.800", created]
    assert more == "more: --next-token abc"

    assert cli.main(["status", "a" * 32, "--api", api.url]) == 0
    assert "status:          TRAINING" in capsys.readouterr().out.splitlines()

    assert cli.main(["metrics", "a" * 32, "--api", api.url]) == 0
    header, first, bach = capsys.readouterr().out.splitlines()
    columns = [c.strip() for c in header.split("  ") if c.strip()]
    assert columns[:5] == ["epoch", "G loss", "C loss", "similarity", "in key"]
    assert first.split()[:4] == ["1", "1.500", "-0.250", "0.800"]
    assert bach.split()[0] == "Bach" and "0.918" in bach.split()


def test_stop_and_delete(api: _Api) -> None:
    job_id = "a" * 32
    api.on("POST", f"/jobs/{job_id}/stop", (202, {"status": "STOPPING"}))
    api.on("DELETE", f"/jobs/{job_id}", (204, b""))

    assert cli.main(["stop", "--api", api.url, job_id]) == 0
    assert cli.main(["delete", "--api", api.url, job_id]) == 0
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("POST", f"/jobs/{job_id}/stop"),
        ("DELETE", f"/jobs/{job_id}"),
    ]


def test_every_route_of_the_api_has_a_client_method(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a client whose requests are recorded as (method, the API resource of the path)
    sent: list[tuple[str, str]] = []

    def record(self: Client, method: str, path: str, body: Any = None, headers: Any = None) -> bytes:
        sent.append((method, match_resource(urlsplit(path).path)[0]))
        return b"{}"

    monkeypatch.setattr(Client, "_send_once", record)
    client, job_id = Client("http://127.0.0.1:9"), "a" * 32
    calls = {
        "submit": lambda: client.submit({"name": "n"}, idempotency_key="k"),
        "list": lambda: client.list(status=statuses.COMPLETED, limit=5),
        "get": lambda: client.get(job_id),
        "metrics": lambda: client.metrics(job_id),
        "model": lambda: client.model(job_id),
        "compositions": lambda: client.compositions(job_id, limit=5, next_token="t"),
        "compose": lambda: client.compose(job_id, sample="twinkle-twinkle", seed=1, instruments="piano"),
        "delete_composition": lambda: client.delete_composition(job_id, "0" * 20),
        "melodies": lambda: client.melodies(),
        "stop": lambda: client.stop(job_id),
        "delete": lambda: client.delete(job_id),
        "openapi": lambda: client.openapi(),
        "create_dataset": lambda: client.create_dataset("n"),
        "datasets": lambda: client.datasets(limit=5, next_token="t"),
        "dataset": lambda: client.dataset(DATASET),
        "delete_dataset": lambda: client.delete_dataset(DATASET),
    }
    # built on the methods above
    conveniences = {"wait", "download", "all_compositions", "fetch", "upload_dataset", "wait_dataset"}
    public = {name for name in vars(Client) if not name.startswith("_") and callable(vars(Client)[name])}
    assert set(calls) == public - conveniences, "a new Client method belongs in `calls`"

    # When each API method is called once
    for call in calls.values():
        call()

    # Then together they call every route of the API, and nothing else
    assert sorted(sent) == sorted((route.method, route.path) for route in routes.ROUTES)


def test_every_hyperparameter_has_a_submit_flag() -> None:
    flags = []
    for spec in hyperparameters.HYPERPARAMETERS:
        flags += ["--" + spec.name.replace("_", "-"), str(spec.default)]

    args = cli.build_parser().parse_args(["submit", *flags])

    assert cli._submit_body(args) == {"hyperparameters": dict(hyperparameters.DEFAULTS)}


def test_requests_to_a_deployed_api_are_signed_for_execute_api(
    api: _Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    api.on("GET", "/jobs/" + "a" * 32, (200, _job("TRAINING")))

    Client(api.url, sign=True).get("a" * 32)

    authorization = api.requests[0]["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "X-Amz-Date" in api.requests[0]["headers"]


def test_the_region_comes_from_an_execute_api_url() -> None:
    assert _region_of("abc123.execute-api.ap-southeast-2.amazonaws.com") == "ap-southeast-2"
    assert Client("https://abc123.execute-api.us-west-2.amazonaws.com/prod").sign is True
    assert Client("http://127.0.0.1:8000").sign is False


def test_an_unreachable_api_is_a_clear_error() -> None:
    with pytest.raises(ApiError, match="cannot reach"):
        Client("http://127.0.0.1:9", timeout=2).get("a" * 32)


def _retry_quickly(api: _Api) -> Client:
    return Client(api.url, retry_delays_s=(0.01, 0.01, 0.01))


def test_a_submit_answered_502_is_retried_with_the_same_idempotency_key(api: _Api) -> None:
    # Given an API whose first answer to POST /jobs is API Gateway's 502 (the function died)
    api.on("POST", "/jobs", (502, {"message": "Internal server error"}), (202, _job("SUBMITTED")))

    # When the client submits without choosing a key
    job = _retry_quickly(api).submit({"name": "retried"})

    # Then the retry carried the key the first try did, and its job came back
    assert job["job_id"] == JOB
    keys = [r["headers"].get(names.IDEMPOTENCY_HEADER) for r in api.requests]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]


def test_a_persistent_5xx_ends_as_an_error_with_the_request_id(api: _Api) -> None:
    api.on("GET", f"/jobs/{JOB}", (502, {"message": "Internal server error"}))
    api.headers = {names.REQUEST_ID_HEADER: "req-123"}

    with pytest.raises(ApiError) as raised:
        _retry_quickly(api).get(JOB)

    # four tries (the first and three retries), then the gateway's message with its request id
    assert len(api.requests) == 4
    assert raised.value.status == 502 and raised.value.request_id == "req-123"
    assert "request id req-123" in str(raised.value)


def test_requests_that_could_act_twice_are_not_retried(api: _Api) -> None:
    api.on("POST", f"/jobs/{JOB}/compositions", (502, {"message": "Internal server error"}))
    api.on("POST", f"/jobs/{JOB}/stop", (503, {"message": "Service Unavailable"}))
    client = _retry_quickly(api)

    with pytest.raises(ApiError):
        client.compose(JOB, sample="twinkle-twinkle")
    with pytest.raises(ApiError):
        client.stop(JOB)

    assert len(api.requests) == 2


def test_a_4xx_is_not_retried(api: _Api) -> None:
    api.on("POST", "/jobs", (400, {"error": {"code": "invalid_field", "message": "m", "field": "name"}}))

    with pytest.raises(ApiError):
        _retry_quickly(api).submit({"name": ""})

    assert len(api.requests) == 1


# --- datasets ---------------------------------------------------------------------------------
def _created(api: _Api, max_bytes: int = 1024 * 1024) -> dict[str, Any]:
    fields = {"key": f"datasets/{DATASET}/upload/collection.zip", "policy": "cG9saWN5"}
    return {"dataset_id": DATASET, "status": "WAITING_FOR_UPLOAD",
            "upload": {"url": f"{api.url}/bucket", "fields": fields,
                       "expires_at": "2026-11-27T16:00:00.000Z", "max_bytes": max_bytes}}


def _ready(**summary: Any) -> dict[str, Any]:
    return {"dataset_id": DATASET, "name": "mine", "status": "READY", "builtin": False,
            "created_at": "2026-11-27T15:00:00.000Z", "updated_at": "2026-11-27T15:00:05.000Z",
            "failure_reason": None, "report": None,
            "summary": {"files": 3, "accepted": 2, "pieces": 2, "bars": 16, "windows": 40,
                        "rejected": [{"file": "jazz/bad.mid", "reason": "2 note track(s) but 4 are needed"}],
                        "rejected_count": 1, "tags": {"jazz": 1, "mode:major": 2}, **summary}}


def _music(folder: Path) -> Path:
    for name in ("a.mid", "jazz/b.mid", "jazz/bad.mid", ".DS_Store", ".git/config"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"MThd" + name.encode())
    return folder


def test_dataset_upload_zips_the_folder_with_its_subfolders_posts_the_form_and_prints_the_report(
    api: _Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import zipfile

    api.on("POST", "/datasets", (201, _created(api)))
    api.on("POST", "/bucket", (204, b""))
    api.on("GET", f"/datasets/{DATASET}", (200, {**_ready(), "status": "BUILDING", "summary": None}),
           (200, _ready()))

    code = cli.main(["dataset", "upload", "--api", api.url, str(_music(tmp_path / "music")),
                     "--name", "mine", "--interval", "0.01"])

    out = capsys.readouterr().out
    assert code == 0
    create, upload = api.requests[0], api.requests[1]
    assert json.loads(create["body"]) == {"name": "mine"}
    # the presigned form: its fields first, the zip last as `file`
    body = upload["body"]
    assert upload["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert body.index(b'name="key"') < body.index(b'name="policy"') < body.index(b'name="file"')
    archive = body[body.index(b"PK\x03\x04"):]
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert sorted(zipped.namelist()) == ["a.mid", "jazz/b.mid", "jazz/bad.mid"]  # hidden files left out
        assert zipped.read("jazz/b.mid") == b"MThdjazz/b.mid"
    assert out.splitlines()[0] == DATASET
    assert "accepted 2 of 3 files: 2 pieces, 16 bars, 40 training windows" in out
    assert "jazz/bad.mid: 2 note track(s) but 4 are needed" in out
    assert "jazz: 1" in out


def test_a_dataset_that_failed_exits_1_with_its_reason(
    api: _Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("POST", "/datasets", (201, _created(api)))
    api.on("POST", "/bucket", (204, b""))
    api.on("GET", f"/datasets/{DATASET}",
           (200, {**_ready(), "status": "FAILED", "summary": None, "failure_reason": "not a zip archive"}))

    assert cli.main(["dataset", "upload", "--api", api.url, str(_music(tmp_path)), "--interval", "0"]) == 1
    assert "failure: not a zip archive" in capsys.readouterr().out


def test_a_zip_over_the_limit_is_refused_before_any_request(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contracts import datasets

    monkeypatch.setattr(datasets, "MAX_UPLOAD_BYTES", 100)
    (tmp_path / "big.mid").write_bytes(bytes(range(256)) * 10)

    assert cli.main(["dataset", "upload", "--api", api.url, str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "413 upload_too_large: the zip is" in err and "the limit is 100 (field: file)" in err
    assert api.requests == []


def test_an_upload_s3_refuses_is_an_error_naming_s3s_reason(
    api: _Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = (b"<?xml version='1.0'?><Error><Code>EntityTooLarge</Code><Message>Your proposed upload "
               b"exceeds the maximum allowed size</Message></Error>")
    api.on("POST", "/datasets", (201, _created(api)))
    api.on("POST", "/bucket", (400, refusal))

    assert cli.main(["dataset", "upload", "--api", api.url, str(_music(tmp_path))]) == 3
    err = capsys.readouterr().err
    assert "400 EntityTooLarge: the upload was refused: Your proposed upload exceeds" in err
    assert "(field: file)" in err


def test_dataset_upload_of_a_file_that_is_no_zip_is_a_usage_error(
    api: _Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not a zip")

    assert cli.main(["dataset", "upload", "--api", api.url, str(tmp_path / "notes.txt")]) == 2
    assert "is not a zip file" in capsys.readouterr().err
    assert api.requests == []


def test_dataset_list_show_and_delete(api: _Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("GET", "/datasets?limit=2", (200, {"datasets": [_ready()], "next_token": "t"}))
    api.on("GET", f"/datasets/{DATASET}", (200, _ready()))
    api.on("DELETE", f"/datasets/{DATASET}", (204, b""))

    assert cli.main(["dataset", "list", "--api", api.url, "--limit", "2"]) == 0
    listed = capsys.readouterr().out
    assert DATASET in listed and "READY" in listed and "more: --next-token t" in listed
    assert cli.main(["dataset", "show", "--api", api.url, DATASET, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["tags"] == {"jazz": 1, "mode:major": 2}
    assert cli.main(["dataset", "delete", "--api", api.url, DATASET]) == 0
    assert capsys.readouterr().out.strip() == f"deleted {DATASET}"
    assert [r["method"] for r in api.requests] == ["GET", "GET", "DELETE"]
