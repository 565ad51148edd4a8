"""The console's server side: its files and `/console/fetch` (`opencomposer.console.static_files`),
served by the local front door without a function and by `opencomposer console`, which forwards
everything else to the API, signed for a deployed one (a scripted upstream records what arrives)."""

from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from opencomposer.client import Client
from opencomposer.console import static_files
from opencomposer.console.server import ConsoleServer, fetch_allow_list
from opencomposer.console.static_files import FetchAllowList, resolve, static_response
from opencomposer.local.front_door import FrontDoor


class _Upstream:
    """A scripted HTTP server: records every request, answers `reply` (status, headers, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: tuple[int, dict[str, str], bytes] = (200, {"Content-Type": "application/json"}, b"{}")
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, data = upstream.reply
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    yield server
    server.close()


class _Lambda:
    """moto's Lambda client as the front door sees it: records invocations, answers 200 {}."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.meta = SimpleNamespace(endpoint_url=endpoint_url)

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.events.append(json.loads(Payload))
        reply = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"api": true}'}
        return {"Payload": io.BytesIO(json.dumps(reply).encode())}


@pytest.fixture
def front_door() -> Iterator[tuple[FrontDoor, _Lambda]]:
    lam = _Lambda()
    door = FrontDoor(lam, {"api": "api-fn", "compose": "compose-fn"}, port=0)
    door.start()
    yield door, lam
    door.stop()


def _request(
    base: str, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A raw request (http.client sends the target as written: no `..` folding)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def _a_nested_file() -> Path:
    root = static_files.STATIC_DIR
    nested = sorted(
        p for p in root.rglob("*") if p.is_file() and p.parent != root and not p.name.startswith(".")
    )
    if not nested:
        pytest.skip("the console has no file in a sub-folder yet")
    return nested[0]


# --- the files ------------------------------------------------------------------------------------


def test_the_console_ships_its_page() -> None:
    assert (static_files.STATIC_DIR / "index.html").is_file()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "vendor" / "deep").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    for name in ("app.js", "style.css", "icon.svg", "shot.png", "font.sf2", "tune.mid", "data.json", "x.bin"):
        (root / "vendor" / name).write_bytes(b"content of " + name.encode())
    (root / "vendor" / "deep" / "lib.js").write_text("export {}")
    (root / ".secret").write_text("no")
    (tmp_path / "outside.txt").write_text("outside")
    (root / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (root / "inside.js").symlink_to(root / "vendor" / "app.js")
    return root


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("vendor/app.js", "text/javascript; charset=utf-8"),
        ("vendor/style.css", "text/css; charset=utf-8"),
        ("vendor/icon.svg", "image/svg+xml"),
        ("vendor/shot.png", "image/png"),
        ("vendor/font.sf2", "application/octet-stream"),
        ("vendor/tune.mid", "audio/midi"),
        ("vendor/data.json", "application/json"),
        ("vendor/x.bin", "application/octet-stream"),
        ("vendor/deep/lib.js", "text/javascript; charset=utf-8"),
    ],
)
def test_files_have_their_content_type(tree: Path, name: str, kind: str) -> None:
    status, headers, body = static_response(f"/console/{name}?v=3", root=tree)

    assert status == 200
    assert dict(headers)["Content-Type"] == kind
    assert dict(headers)["Cache-Control"] == "no-cache"
    assert body == (tree / name).read_bytes()


def test_the_root_is_the_index(tree: Path) -> None:
    for target in ("/", "/console/", "/console"):
        status, headers, body = static_response(target, root=tree)
        assert status == 200 and body.startswith(b"<!doctype html>")
        assert dict(headers)["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "relative",
    [
        "../outside.txt",
        "%2e%2e/outside.txt",
        "vendor/../../outside.txt",
        "vendor/%2E%2E/%2E%2E/outside.txt",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "vendor//app.js",
        "./index.html",
        "vendor\\app.js",
        "C:/Windows/win.ini",
        ".secret",
        "escape.txt",  # a symbolic link out of the folder
        "index.html%00.js",
        "vendor",  # a folder
        "missing.js",
    ],
)
def test_nothing_outside_the_folder_and_nothing_missing_is_served(tree: Path, relative: str) -> None:
    assert resolve(relative, tree) is None
    status, headers, body = static_response("/console/" + relative, root=tree)

    assert status == 404
    assert dict(headers)["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "not_found" and error["message"]
    assert b"outside" not in body.replace(b"outside.txt", b"")


def test_a_link_inside_the_folder_is_served(tree: Path) -> None:
    assert resolve("inside.js", tree) == (tree / "vendor" / "app.js").resolve()


def test_only_get_and_head_of_console_paths_are_the_consoles() -> None:
    allowed = FetchAllowList()
    assert static_files.console_response("GET", "/jobs", allowed) is None
    assert static_files.console_response("POST", "/", allowed) is None
    assert static_files.console_response("GET", "/consoled", allowed) is None
    assert static_files.console_response("HEAD", "/", allowed) is not None


# --- the front door ---------------------------------------------------------------------------------


def test_the_front_door_serves_the_console_without_a_function(front_door: tuple[FrontDoor, _Lambda]) -> None:
    door, lam = front_door
    index = (static_files.STATIC_DIR / "index.html").read_bytes()
    nested = _a_nested_file()
    relative = nested.relative_to(static_files.STATIC_DIR).as_posix()

    status, headers, body = _request(door.url, "GET", "/")
    assert (status, body) == (200, index)
    assert headers["content-type"] == "text/html; charset=utf-8"
    status, headers, body = _request(door.url, "GET", "/console/" + quote(relative))
    assert (status, body) == (200, nested.read_bytes())
    assert headers["content-type"] == static_files.content_type(nested)
    status, headers, body = _request(door.url, "HEAD", "/console/index.html")
    assert (status, body, int(headers["content-length"])) == (200, b"", len(index))
    status, headers, body = _request(door.url, "GET", "/console/../pyproject.toml")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, _, body = _request(door.url, "GET", "/console/no-such-file.js")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    assert lam.events == []

    status, _, body = _request(door.url, "GET", "/jobs?limit=1")
    assert (status, body) == (200, b'{"api": true}')
    assert [event["path"] for event in lam.events] == ["/jobs"]


def test_the_front_door_fetches_moto_urls_only(upstream: _Upstream) -> None:
    upstream.reply = (200, {"Content-Type": "binary/octet-stream"}, b"MThd-final")
    lam = _Lambda(endpoint_url=upstream.url)  # the stack's moto: the Lambda client's endpoint
    door = FrontDoor(lam, {"api": "api-fn"}, port=0)
    door.start()
    try:
        presigned = upstream.url + "/artifacts/jobs/j1/final.mid?X-Amz-Signature=abc&X-Amz-Expires=60"
        status, headers, body = _request(door.url, "GET", "/console/fetch?url=" + quote(presigned, safe=""))
        assert (status, body) == (200, b"MThd-final")
        assert headers["content-type"] == "audio/midi"
        assert (
            upstream.requests[-1]["path"]
            == "/artifacts/jobs/j1/final.mid?X-Amz-Signature=abc&X-Amz-Expires=60"
        )

        for url in (
            "http://127.0.0.1:1/artifacts/x.mid",  # another port of this machine
            "https://bucket.s3.amazonaws.com/x.mid",  # S3 is for a deployed stack's console
            "http://example.com/x.mid",
            "file:///etc/passwd",
            upstream.url.replace("http://", "http://user:pw@") + "/x.mid",
        ):
            status, _, body = _request(door.url, "GET", "/console/fetch?url=" + quote(url, safe=""))
            error = json.loads(body)["error"]
            assert (status, error["code"], error["field"]) == (400, "invalid_url", "url"), url
            assert "X-Amz-Signature" not in error["message"]
        status, _, body = _request(door.url, "GET", "/console/fetch")
        assert status == 400 and json.loads(body)["error"]["field"] == "url"

        upstream.reply = (403, {"Content-Type": "application/xml"}, b"<Error>expired</Error>")
        status, _, body = _request(door.url, "GET", "/console/fetch?url=" + quote(presigned, safe=""))
        assert status == 403 and json.loads(body)["error"]["code"] == "fetch_failed"
    finally:
        door.stop()
    assert lam.events == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://artifacts-123.s3.amazonaws.com/jobs/j/final.mid?X-Amz-Signature=x", True),
        ("https://artifacts-123.s3.eu-west-1.amazonaws.com/jobs/j/final.mid", True),
        ("https://s3.eu-west-1.amazonaws.com/artifacts-123/jobs/j/final.mid", True),
        ("https://s3-eu-west-1.amazonaws.com/artifacts-123/k", True),
        ("https://bucket.s3.dualstack.us-east-1.amazonaws.com/k", True),
        ("https://bucket.s3.cn-north-1.amazonaws.com.cn/k", True),
        ("http://bucket.s3.amazonaws.com/k", False),  # not HTTPS
        ("https://s3.amazonaws.com.evil.example/k", False),
        ("https://evil.example/?h=s3.amazonaws.com", False),
        ("https://abc.execute-api.us-east-1.amazonaws.com/prod/jobs", False),
        ("https://evils3.amazonaws.com/k", False),
        ("http://127.0.0.1:5000/k", False),
    ],
)
def test_a_deployed_stacks_console_fetches_s3_only(url: str, allowed: bool) -> None:
    allow = fetch_allow_list("https://abc.execute-api.eu-west-1.amazonaws.com/prod")
    assert allow(urlsplit(url)) is allowed


def test_a_local_stacks_console_fetches_this_machine_only() -> None:
    allow = fetch_allow_list("http://127.0.0.1:8000")
    assert allow(urlsplit("http://127.0.0.1:53123/artifacts/k.mid"))
    assert allow(urlsplit("http://localhost:53123/artifacts/k.mid"))
    assert not allow(urlsplit("http://10.0.0.1:53123/k.mid"))
    assert not allow(urlsplit("https://bucket.s3.amazonaws.com/k.mid"))


# --- opencomposer console: forwarding ---------------------------------------------------------------


@pytest.fixture
def console(upstream: _Upstream) -> Iterator[ConsoleServer]:
    server = ConsoleServer(upstream.url, port=0)
    server.start()
    yield server
    server.stop()


def test_the_console_serves_the_page(console: ConsoleServer, upstream: _Upstream) -> None:
    status, headers, body = _request(console.url, "GET", "/")
    assert (status, body) == (200, (static_files.STATIC_DIR / "index.html").read_bytes())
    status, _, body = _request(console.url, "GET", "/console/%2e%2e/server.py")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    assert upstream.requests == []
    assert console.url == f"http://127.0.0.1:{console.port}/"


def test_the_console_forwards_requests_as_they_are(console: ConsoleServer, upstream: _Upstream) -> None:
    upstream.reply = (
        202,
        {"Content-Type": "application/json", "Set-Cookie": "s=1", "X-Internal": "x", "Retry-After": "3"},
        b'{"job_id": "j1"}',
    )
    status, headers, body = _request(
        console.url,
        "POST",
        "/jobs?dry=1&x=a%20b",
        body=b'{"name": "n"}',
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": "key-1",
            "Cookie": "browser=secret",
            "Origin": f"http://127.0.0.1:{console.port}",
        },
    )

    assert (status, body) == (202, b'{"job_id": "j1"}')
    assert headers["content-type"] == "application/json" and headers["retry-after"] == "3"
    assert "set-cookie" not in headers and "x-internal" not in headers
    sent = upstream.requests[0]
    assert (sent["method"], sent["path"], sent["body"]) == ("POST", "/jobs?dry=1&x=a%20b", b'{"name": "n"}')
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["Idempotency-Key"] == "key-1"
    assert "Cookie" not in sent["headers"] and "Origin" not in sent["headers"]
    assert "Authorization" not in sent["headers"], "a local API is not signed"


def test_the_apis_errors_come_back_as_they_are(console: ConsoleServer, upstream: _Upstream) -> None:
    error = b'{"error": {"code": "not_found", "message": "no job j2"}}'
    upstream.reply = (404, {"Content-Type": "application/json"}, error)
    status, _, body = _request(console.url, "GET", "/jobs/j2/metrics")
    assert (status, body) == (404, error)

    upstream.reply = (204, {}, b"")
    status, _, body = _request(console.url, "DELETE", "/jobs/j2")
    assert (status, body) == (204, b"")
    assert [(r["method"], r["path"]) for r in upstream.requests] == [
        ("GET", "/jobs/j2/metrics"),
        ("DELETE", "/jobs/j2"),
    ]


def test_an_unreachable_api_is_a_502_in_the_apis_shape() -> None:
    server = ConsoleServer("http://127.0.0.1:1", port=0)
    server.start()
    try:
        status, _, body = _request(server.url, "GET", "/jobs")
    finally:
        server.stop()
    assert status == 502 and json.loads(body)["error"]["code"] == "unreachable"


def test_a_deployed_api_gets_signed_requests_and_the_browser_no_credentials(
    upstream: _Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.credentials import Credentials

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setattr(
        "botocore.session.Session.get_credentials",
        lambda self: Credentials("AKIDEXAMPLE", "secret", "session-token"),
    )
    upstream.reply = (
        200,
        {"Content-Type": "application/json", "Authorization": "echoed", "X-Amz-Security-Token": "echoed"},
        b'{"jobs": []}',
    )
    server = ConsoleServer(client=Client(upstream.url + "/prod", sign=True), port=0)
    server.start()
    try:
        status, headers, body = _request(
            server.url, "POST", "/jobs", b"{}", {"Content-Type": "application/json", "Idempotency-Key": "k"}
        )
    finally:
        server.stop()

    sent = upstream.requests[0]
    assert sent["path"] == "/prod/jobs"
    authorization = sent["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "idempotency-key" in authorization.lower(), "the Idempotency-Key is signed too"
    assert sent["headers"]["X-Amz-Security-Token"] == "session-token"
    assert (status, body) == (200, b'{"jobs": []}')
    assert not any(name.startswith(("authorization", "x-amz")) for name in headers)
    assert b"AKIDEXAMPLE" not in body and "AKIDEXAMPLE" not in json.dumps(headers)


def test_requests_not_addressed_to_the_console_are_refused(
    console: ConsoleServer, upstream: _Upstream
) -> None:
    status, _, body = _request(console.url, "GET", "/jobs", headers={"Host": "evil.example:8080"})
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"
    status, _, _ = _request(
        console.url,
        "POST",
        "/jobs",
        b"{}",
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
    )
    assert status == 403
    status, _, _ = _request(console.url, "DELETE", "/jobs/j1", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, _ = _request(console.url, "GET", "/jobs", headers={"Host": f"localhost:{console.port}"})
    assert status == 200
    assert [r["method"] for r in upstream.requests] == ["GET"]


def test_the_console_fetches_presigned_urls_of_a_local_stack(
    console: ConsoleServer, upstream: _Upstream
) -> None:
    upstream.reply = (200, {"Content-Type": "audio/midi"}, b"MThd")
    url = upstream.url + "/artifacts/final.mid?X-Amz-Signature=s"
    status, headers, body = _request(console.url, "GET", "/console/fetch?url=" + quote(url, safe=""))
    assert (status, body, headers["content-type"]) == (200, b"MThd", "audio/midi")
    status, _, _ = _request(
        console.url, "GET", "/console/fetch?url=" + quote("http://example.com/x", safe="")
    )
    assert status == 400
