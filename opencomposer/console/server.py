"""`opencomposer console`: the console page for any stack, from this machine.

A threaded HTTP server on 127.0.0.1 (only) that serves the console's files and
`/console/fetch` (`static_files`), and forwards every other request to the API: method, path,
query, body, `Content-Type`, `Accept` and `Idempotency-Key`, signed with SigV4 for a deployed API
exactly as `opencomposer.client.Client` signs (the caller's AWS credentials, read in this
process). The API's answer comes back with its status, body and a few harmless headers
(`Content-Type`, `Retry-After`, ...); no credential, signature or `Authorization` header ever
goes to the browser, and the browser's own cookies and headers never go to the API.

Because the server holds credentials, it answers only requests addressed to itself: a `Host`
other than 127.0.0.1/localhost at its port is refused (DNS rebinding), and so is a request that
changes something (POST, DELETE, ...) from another origin (`Origin`, `Sec-Fetch-Site`), which
another web page open in the same browser could otherwise send.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from contracts import names
from opencomposer.client import _LOCAL_HOSTS, ApiError, Client, request_headers
from opencomposer.console.static_files import FetchAllowList, Response, console_response, error

DEFAULT_PORT = 8080
HOST = "127.0.0.1"
MAX_BODY_BYTES = 10 * 1024 * 1024
UPSTREAM_TIMEOUT_S = 60.0
# What goes from the browser to the API (besides the body), and what comes back.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", names.IDEMPOTENCY_HEADER)
RETURNED_RESPONSE_HEADERS = frozenset(
    {"content-type", "cache-control", "retry-after", "etag", "last-modified", "x-amzn-requestid"}
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch_allow_list(api_url: str) -> FetchAllowList:
    """A local API's presigned URLs point at moto on this machine (a port the console cannot
    know); a deployed API's at S3."""
    host = urlsplit(api_url).hostname or ""
    if host in _LOCAL_HOSTS:
        return FetchAllowList(loopback=True)
    return FetchAllowList(s3=True)


class ConsoleServer:
    """The console page and a signing forwarder to the API at `api_url`, on 127.0.0.1:`port`
    (0: any free port)."""

    def __init__(
        self, api_url: str | None = None, port: int = DEFAULT_PORT, client: Client | None = None
    ) -> None:
        self.client = client or Client(api_url)
        self.api_url = self.client.api_url
        self.allowed = fetch_allow_list(self.api_url)
        console = self

        class Handler(_ConsoleHandler):
            server_of = console

        self._server = ThreadingHTTPServer((HOST, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="console")
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def forward(self, method: str, target: str, headers: Any, body: bytes) -> Response:
        """The API's answer to the browser's request, signed on the way for a deployed API."""
        if not target.startswith("/") or target.startswith("//"):
            return error(400, "bad_request", "the request target must be a path")
        url = self.api_url + target
        wanted = {name: headers.get(name) for name in FORWARDED_REQUEST_HEADERS if headers.get(name)}
        payload = body if (body or method in ("POST", "PUT", "PATCH")) else None
        try:
            sent = request_headers(self.client, method, url, payload, wanted)
        except ApiError as e:
            return error(502, e.code, e.message)
        request = urllib.request.Request(url, data=payload, method=method, headers=sent)
        try:
            with _OPENER.open(request, timeout=UPSTREAM_TIMEOUT_S) as reply:
                return reply.status, _returned(reply.headers.items()), reply.read()
        except urllib.error.HTTPError as e:
            return e.code, _returned(e.headers.items()), e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            return error(502, "unreachable", f"cannot reach {self.api_url}: {reason}")


def _returned(headers: Any) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() in RETURNED_RESPONSE_HEADERS]


class _ConsoleHandler(BaseHTTPRequestHandler):
    server_of: ConsoleServer
    protocol_version = "HTTP/1.1"
    server_version = "opencomposer-console"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(*error(413, "payload_too_large", "the body is over 10 MiB"))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        refused = self._refused()
        if refused is not None:
            self._send(*refused)
            return
        console = self.server_of
        answer = console_response(self.command, self.path, console.allowed)
        if answer is None:
            try:
                answer = console.forward(self.command, self.path, self.headers, body)
            except Exception:  # noqa: BLE001 - the browser gets a 502, the terminal the cause
                self.log_error("forwarding failed for %s %s", self.command, self.path)
                answer = error(502, "bad_gateway", "the console could not forward the request")
        self._send(*answer)

    def _refused(self) -> Response | None:
        port = self.server_of.port
        host = self.headers.get("Host")
        mine = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        if host is not None and host.lower() not in mine:
            return error(403, "forbidden", f"this console answers only at http://127.0.0.1:{port}/")
        if self.command not in _SAFE_METHODS:
            origin = self.headers.get("Origin")
            if origin is not None and origin.lower() not in {f"http://{h}" for h in mine}:
                return error(403, "forbidden", "requests from another origin are refused")
            if (self.headers.get("Sec-Fetch-Site") or "").lower() in ("cross-site", "same-site"):
                return error(403, "forbidden", "requests from another site are refused")
        return None

    def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        pass


def describe(console: ConsoleServer) -> str:
    """What `opencomposer console` prints once it listens."""
    if console.client.sign:
        signed = "signed with your AWS credentials, which stay in this process"
    else:
        signed = "unsigned: a local stack"
    return (
        f"opencomposer console: {console.url}\n"
        f"  API: {console.api_url} (requests {signed})\n"
        "  listening on 127.0.0.1 only; Ctrl-C stops"
    )
