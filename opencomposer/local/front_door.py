"""The local API Gateway: HTTP requests as REST API proxy events, through moto's Lambda Invoke.

moto has no usable API Gateway data plane, so this threaded HTTP server builds the event API
Gateway's `AWS_PROXY` integration would send (`contracts.events.api_gateway_event`: the resource
and path parameters matched against the API's routes, query strings, headers, body, the one
local caller as `requestContext.identity`) and invokes the function that serves the route
(`contracts.routes`: the api, or the compose function) through moto's Lambda `Invoke`, so it
runs in the same runtime as every other invocation, as API Gateway's per-method integrations
do. The function's proxy response becomes the HTTP response.

Every answer carries API Gateway's `x-amzn-RequestId` header, the request id the function also
logs (`requestContext.requestId`, Powertools' correlation id), so an error a user reports can be
found in `<logs>/<function>.log`. A function that errs or dies mid-request is API Gateway's
`502 {"message": "Internal server error"}` with `x-amzn-ErrorType`.

The console's routes (`GET /`, `GET /console/...`, `GET /console/fetch?url=`) are answered here,
without a function: API Gateway on AWS does not serve the console (`opencomposer console` does),
the local stack does (`opencomposer.console.static_files`). `/console/fetch` fetches only
moto's presigned URLs (the Lambda client's endpoint).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contracts import events, names, routes
from opencomposer.console.static_files import FetchAllowList, console_response

STAGE = "local"
# API Gateway's own payload limit; the handler enforces the API's 1 MiB body limit itself.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


def proxy_response(payload: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP response API Gateway makes of a Lambda proxy result."""
    status = int(payload.get("statusCode", 200))
    headers: list[tuple[str, str]] = []
    seen = set()
    for name, values in (payload.get("multiValueHeaders") or {}).items():
        for value in values:
            headers.append((name, str(value)))
        seen.add(name.lower())
    for name, value in (payload.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    body = payload.get("body") or ""
    data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
    return status, headers, data


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a burst of connections that arrives while the accepting
    # thread waits for the interpreter lock overflows it, and the kernel resets the extra ones.
    # API Gateway takes thousands at once; 128 is Linux's usual somaxconn.
    request_queue_size = 128


class FrontDoor:
    """A threaded HTTP server on 127.0.0.1 that invokes, for every request, the function its
    route names. `function_names`: a `contracts.functions` key → that function's name.
    `fetch_origins`: what `/console/fetch` may fetch (default: the Lambda client's endpoint, moto)."""

    def __init__(
        self,
        lambda_client: Any,
        function_names: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        fetch_origins: Sequence[str] | None = None,
    ) -> None:
        self.lambda_client = lambda_client
        self.function_names = dict(function_names)
        if fetch_origins is None:
            endpoint = getattr(getattr(lambda_client, "meta", None), "endpoint_url", None)
            fetch_origins = [endpoint] if isinstance(endpoint, str) else []
        self.fetch_allowed = FetchAllowList(fetch_origins)
        door = self

        class Handler(_ProxyHandler):
            front_door = door

        self._in_flight = 0  # requests being served: the stream's delivery yields to them
        self._in_flight_lock = threading.Lock()
        self._server = _Server((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="front-door")
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def busy(self) -> bool:
        """Requests are being served (read without the lock: one int, a snapshot)."""
        return self._in_flight > 0

    def invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            return self._invoke(event)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        function = routes.function_for(event["httpMethod"], event["resource"])
        reply = self.lambda_client.invoke(
            FunctionName=self.function_names[function], Payload=json.dumps(event).encode()
        )
        raw = reply["Payload"].read()
        if reply.get("FunctionError"):
            # API Gateway hides the function's error from the caller.
            return _gateway_error(502, "Internal server error")
        try:
            payload = json.loads(raw)
        except ValueError:
            return _gateway_error(502, "Malformed Lambda proxy response")
        if not isinstance(payload, dict) or "statusCode" not in payload:
            return _gateway_error(502, "Malformed Lambda proxy response")
        return proxy_response(payload)


# API Gateway's x-amzn-ErrorType for the errors it makes itself.
_ERROR_TYPES = {413: "RequestEntityTooLargeException", 502: "InternalServerErrorException"}


def _gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", _ERROR_TYPES[status])]
    return status, headers, json.dumps({"message": message}).encode()


class _ProxyHandler(BaseHTTPRequestHandler):
    front_door: FrontDoor
    protocol_version = "HTTP/1.1"
    server_version = "opencomposer-local"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self._send(*_gateway_error(413, "Request Too Long"), request_id=str(uuid.uuid4()))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        console = console_response(self.command, self.path, self.front_door.fetch_allowed)
        if console is not None:
            self._send(*console)
            return
        event = events.api_gateway_event(
            self.command,
            self.path,
            list(self.headers.items()),
            body,
            stage=STAGE,
            source_ip=self.client_address[0],
        )
        request_id = event["requestContext"]["requestId"]
        try:
            status, headers, data = self.front_door.invoke(event)
        except Exception:  # noqa: BLE001 - the caller gets API Gateway's answer, the log the cause
            self.log_error("invoke failed for %s %s (request id %s)", self.command, self.path, request_id)
            status, headers, data = _gateway_error(502, "Internal server error")
        self._send(status, headers, data, request_id=request_id)

    def _send(
        self, status: int, headers: list[tuple[str, str]], data: bytes, request_id: str | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "x-amzn-requestid"):
                self.send_header(name, value)
        if request_id is not None:
            self.send_header(names.REQUEST_ID_HEADER, request_id)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        pass  # requests are logged by the api function itself
