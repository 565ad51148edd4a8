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

from contracts import hyperparameters, routes, statuses
from contracts.events import match_resource
from opencomposer import cli
from opencomposer.client import ApiError, Client, _region_of


class _Api:
    """Answers scripted replies per (method, path) and records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
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


def test_download_fetches_every_composition_into_out_job_id(api: _Api, tmp_path: Path) -> None:
    job_id = "a" * 32
    api.on("GET", "/final.mid", (200, b"MThd-final"))
    api.on("GET", "/epoch-0002.mid", (200, b"MThd-sample"))
    api.on(
        "GET",
        f"/jobs/{job_id}/compositions",
        (
            200,
            {
                "compositions": [
                    {"name": "final", "url": api.url + "/final.mid", "expires_at": "x"},
                    {"name": "epoch-0002", "url": api.url + "/epoch-0002.mid", "expires_at": "x"},
                ]
            },
        ),
    )

    assert cli.main(["download", "--api", api.url, job_id, "--out", str(tmp_path)]) == 0

    assert (tmp_path / job_id / "final.mid").read_bytes() == b"MThd-final"
    assert (tmp_path / job_id / "epoch-0002.mid").read_bytes() == b"MThd-sample"


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

    monkeypatch.setattr(Client, "_request", record)
    client, job_id = Client("http://127.0.0.1:9"), "a" * 32
    calls = {
        "submit": lambda: client.submit({"name": "n"}, idempotency_key="k"),
        "list": lambda: client.list(status=statuses.COMPLETED, limit=5),
        "get": lambda: client.get(job_id),
        "metrics": lambda: client.metrics(job_id),
        "compositions": lambda: client.compositions(job_id),
        "stop": lambda: client.stop(job_id),
        "delete": lambda: client.delete(job_id),
        "openapi": lambda: client.openapi(),
    }
    conveniences = {"wait", "download"}  # built on the methods above
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
