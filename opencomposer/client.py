"""A small client of the opencomposer HTTP API, for the local stack or a deployed API.

Requests to a deployed API (any host but this machine) are signed with the caller's AWS
credentials (SigV4, service `execute-api`), as the API's IAM authorization requires; the local
stack needs no signature.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from contracts import deployment, names, statuses

ENV_API_URL = "OPENCOMPOSER_API_URL"
DEFAULT_LOCAL_URL = "http://127.0.0.1:{port}"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_api_url() -> str:
    """`OPENCOMPOSER_API_URL`, else the local stack's URL (`OPENCOMPOSER_PORT`, default 8000)."""
    return os.environ.get(ENV_API_URL) or DEFAULT_LOCAL_URL.format(
        port=os.environ.get(deployment.ENV_LOCAL_PORT) or deployment.DEFAULT_LOCAL_PORT
    )


class ApiError(Exception):
    """An error answer of the API (`{"error": {code, message, field}}`) or no answer at all."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status, self.code, self.message, self.field = status, code, message, field
        where = f" (field: {field})" if field else ""
        super().__init__(f"{status} {code}: {message}{where}")


class Client:
    def __init__(self, api_url: str | None = None, sign: bool | None = None, timeout: float = 30.0) -> None:
        self.api_url = (api_url or default_api_url()).rstrip("/")
        host = urlsplit(self.api_url).hostname or ""
        self.sign = (host not in _LOCAL_HOSTS) if sign is None else sign
        self.timeout = timeout
        self._credentials: Any = None
        self._region = _region_of(host)

    # --- the API ----------------------------------------------------------------------------------
    def submit(
        self, body: Mapping[str, Any] | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {names.IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        return self._json("POST", "/jobs", body or {}, headers)

    def get(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{_id(job_id)}")

    def list(
        self, status: str | None = None, limit: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        query = {
            k: v
            for k, v in {"status": status, "limit": limit, "next_token": next_token}.items()
            if v is not None
        }
        return self._json("GET", "/jobs" + (f"?{urlencode(query)}" if query else ""))

    def metrics(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{_id(job_id)}/metrics")

    def compositions(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{_id(job_id)}/compositions")

    def stop(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/jobs/{_id(job_id)}/stop")

    def delete(self, job_id: str) -> None:
        self._request("DELETE", f"/jobs/{_id(job_id)}")

    def openapi(self) -> dict[str, Any]:
        """The API's OpenAPI 3.1 document."""
        return self._json("GET", "/openapi.json")

    # --- conveniences -------------------------------------------------------------------------------
    def wait(
        self,
        job_id: str,
        interval: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is final; `on_update` sees every poll's job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in statuses.FINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(interval)

    def download(self, job_id: str, destination: Path | str) -> builtins.list[Path]:
        """Every composition of the job (final and per-epoch samples) into `destination`."""
        target = Path(destination)
        target.mkdir(parents=True, exist_ok=True)
        paths = []
        for composition in self.compositions(job_id)["compositions"]:
            name = composition["name"].replace("/", "-")
            if not _SAFE_NAME.match(name):
                raise ApiError(502, "bad_composition_name", f"refusing to write a file named {name!r}")
            path = target / (name if name.endswith(".mid") else f"{name}.mid")
            # Presigned S3 URLs carry their own authorization: no signature, no API headers.
            with urllib.request.urlopen(composition["url"], timeout=self.timeout) as reply:
                path.write_bytes(reply.read())
            paths.append(path)
        return paths

    # --- HTTP -----------------------------------------------------------------------------------------
    def _json(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        data = self._request(method, path, body, headers)
        return json.loads(data) if data else {}

    def _request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        url = self.api_url + path
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        if self.sign:
            all_headers = self._signed_headers(method, url, payload, all_headers)
        request = urllib.request.Request(url, data=payload, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return reply.read()  # type: ignore[no-any-return]
        except urllib.error.HTTPError as e:
            raise _api_error(e.code, e.read()) from None
        except urllib.error.URLError as e:
            raise ApiError(0, "unreachable", f"cannot reach {self.api_url}: {e.reason}") from None

    def _signed_headers(
        self, method: str, url: str, payload: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.session import Session

        if self._credentials is None:
            session = Session()
            credentials = session.get_credentials()
            if credentials is None:
                raise ApiError(0, "no_credentials", "signing requests needs AWS credentials (aws configure)")
            self._credentials = credentials
            self._region = self._region or session.get_config_variable("region") or "us-east-1"
        request = AWSRequest(method=method, url=url, data=payload or b"", headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(request)
        return dict(request.headers.items())


def _region_of(host: str) -> str | None:
    m = _EXECUTE_API_HOST.search(host)
    return m.group(1) if m else None


def _id(job_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", job_id):
        raise ApiError(400, "invalid_job_id", f"not a job id: {job_id!r}", "job_id")
    return job_id


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ApiError(
            status, str(error.get("code", "error")), str(error.get("message", "")), error.get("field")
        )
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers
        return ApiError(status, "gateway", str(body["message"]))
    return ApiError(status, "http_error", raw.decode(errors="replace")[:500] or f"HTTP {status}")
