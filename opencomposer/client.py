"""A small client of the opencomposer HTTP API, for the local stack or a deployed API.

Requests to a deployed API (any host but this machine) are signed with the caller's AWS
credentials (SigV4, service `execute-api`), as the API's IAM authorization requires; the local
stack needs no signature.
"""

from __future__ import annotations

import base64
import builtins
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from contracts import datasets as datasets_contract
from contracts import deployment, names, statuses
from contracts import instruments as instrument_presets

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
    """An error answer of the API (`{"error": {code, message, field}}`) or no answer at all.
    `request_id`: API Gateway's id of the request (`x-amzn-RequestId`), which the function's log
    names too; worth quoting in a bug report."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, request_id: str | None = None
    ) -> None:
        self.status, self.code, self.message, self.field = status, code, message, field
        self.request_id = request_id
        where = f" (field: {field})" if field else ""
        request = f" [request id {request_id}]" if request_id else ""
        super().__init__(f"{status} {code}: {message}{where}{request}")


# Answers worth another try: throttled, or the gateway or the function failed on the way (a
# Lambda environment that died mid-request is API Gateway's 502). A retry is sent only where it
# cannot do anything twice: a GET, or a POST /jobs with its Idempotency-Key.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_DELAYS_S = (0.5, 1.0, 2.0)


class Client:
    def __init__(
        self,
        api_url: str | None = None,
        sign: bool | None = None,
        timeout: float = 30.0,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        self.api_url = (api_url or default_api_url()).rstrip("/")
        self.retry_delays_s = tuple(retry_delays_s)
        host = urlsplit(self.api_url).hostname or ""
        self.sign = (host not in _LOCAL_HOSTS) if sign is None else sign
        self.timeout = timeout
        self._credentials: Any = None
        self._region = _region_of(host)

    # --- the API ----------------------------------------------------------------------------------
    def submit(
        self, body: Mapping[str, Any] | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit a job. Without `idempotency_key` the client makes one, so that a retry after a
        lost answer or a 5xx returns the one job instead of starting a second."""
        headers = {names.IDEMPOTENCY_HEADER: idempotency_key or uuid.uuid4().hex}
        return self._json("POST", "/jobs", body or {}, headers, retry=True)

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

    def model(self, job_id: str) -> dict[str, Any]:
        """`{job_id, url, expires_at}`: a presigned URL of the job's model.tar.gz (409 before the
        job COMPLETED). `fetch(link["url"], path)` downloads it."""
        return self._json("GET", f"/jobs/{_id(job_id)}/model")

    def compositions(
        self, job_id: str, limit: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        """One page of the job's MIDI, newest first: your compositions, then the training's."""
        query = {k: v for k, v in {"limit": limit, "next_token": next_token}.items() if v is not None}
        return self._json(
            "GET", f"/jobs/{_id(job_id)}/compositions" + (f"?{urlencode(query)}" if query else "")
        )

    def compose(
        self,
        job_id: str,
        *,
        sample: str | None = None,
        midi: str | os.PathLike[str] | bytes | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        instruments: str | Sequence[Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Have the job's model accompany a melody: a shipped `sample`, or `midi` (a file's path
        or its bytes). `instruments` is a preset name or four voices (`contracts.instruments`);
        what is left out takes the API's default. Returns the composition (its `url` is the MIDI)."""
        if (sample is None) == (midi is None):
            raise ValueError("give exactly one of sample or midi")
        melody: dict[str, str]
        if midi is not None:
            data = midi if isinstance(midi, bytes) else Path(midi).read_bytes()
            melody = {"midi_base64": base64.b64encode(data).decode()}
        else:
            melody = {"sample": str(sample)}
        body: dict[str, Any] = {"melody": melody}
        if seed is not None:
            body["seed"] = seed
        if temperature is not None:
            body["temperature"] = temperature
        if instruments is not None:
            body["instruments"] = (
                instruments
                if isinstance(instruments, str)
                else [v.as_json() if isinstance(v, instrument_presets.Voice) else v for v in instruments]
            )
        if name is not None:
            body["name"] = name
        return self._json("POST", f"/jobs/{_id(job_id)}/compositions", body)

    def delete_composition(self, job_id: str, composition_id: str) -> None:
        """Delete one of your compositions (a training output is a 409)."""
        self._request(
            "DELETE", f"/jobs/{_id(job_id)}/compositions/{_id(composition_id, 'composition_id')}"
        )

    def melodies(self) -> dict[str, Any]:
        """`{melodies: [{name, title, bars, meter, key, tempo_bpm}]}`: what `sample` takes."""
        return self._json("GET", "/melodies")

    def stop(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/jobs/{_id(job_id)}/stop")

    def delete(self, job_id: str) -> None:
        self._request("DELETE", f"/jobs/{_id(job_id)}")

    def openapi(self) -> dict[str, Any]:
        """The API's OpenAPI 3.1 document."""
        return self._json("GET", "/openapi.json")

    # --- datasets (contracts/datasets.py) ----------------------------------------------------------
    def create_dataset(self, name: str | None = None) -> dict[str, Any]:
        """`{dataset_id, status, upload: {url, fields, expires_at, max_bytes}}`: a dataset waiting
        for its zip, and the presigned S3 POST to send it with (`upload_dataset` does both)."""
        return self._json("POST", "/datasets", {"name": name} if name else {})

    def datasets(self, limit: int | None = None, next_token: str | None = None) -> dict[str, Any]:
        query = {k: v for k, v in {"limit": limit, "next_token": next_token}.items() if v is not None}
        return self._json("GET", "/datasets" + (f"?{urlencode(query)}" if query else ""))

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._json("GET", f"/datasets/{_id(dataset_id, 'dataset_id')}")

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/datasets/{_id(dataset_id, 'dataset_id')}")

    def upload_dataset(self, source: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
        """A folder of MIDI files (zipped here, its subfolders kept: they become tags) or a zip,
        sent with a new dataset's presigned POST. Returns the created dataset; its build starts
        on the upload (`wait_dataset`). A zip over the limit is refused before anything is sent."""
        from opencomposer import dataset_zip

        with dataset_zip.zipped(Path(source)) as archive:
            size = archive.stat().st_size
            if size > datasets_contract.MAX_UPLOAD_BYTES:
                raise ApiError(413, "upload_too_large", f"the zip is {size} bytes; the limit is "
                               f"{datasets_contract.MAX_UPLOAD_BYTES}", "file")
            created = self.create_dataset(name)
            self._post_form(created["upload"], archive)
        return created

    def wait_dataset(
        self, dataset_id: str, interval: float = 1.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll until the dataset is built (READY) or refused (FAILED)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            dataset = self.dataset(dataset_id)
            if dataset["status"] in datasets_contract.FINAL_DATASET_STATUSES:
                return dataset
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} still {dataset['status']} after {timeout:.0f} s")
            time.sleep(interval)

    def _post_form(self, upload: Mapping[str, Any], path: Path) -> None:
        """A presigned S3 POST: the policy's fields, then the file (S3 wants it last). The form
        carries its own authorization: no signature, no API headers."""
        from opencomposer import dataset_zip

        body, content_type = dataset_zip.multipart(upload["fields"], path)
        request = urllib.request.Request(upload["url"], data=body, method="POST",
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=max(self.timeout, 300)) as reply:
                reply.read()
        except urllib.error.HTTPError as e:
            code, message = dataset_zip.s3_error(e.read())
            raise ApiError(e.code, code, f"the upload was refused: {message}", "file") from None
        except urllib.error.URLError as e:
            raise ApiError(0, "unreachable", f"cannot upload to {_without_query(upload['url'])}: "
                           f"{e.reason}") from None

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

    def all_compositions(self, job_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every composition of the job, page after page (`limit` per page)."""
        next_token = None
        while True:
            page = self.compositions(job_id, limit=limit, next_token=next_token)
            yield from page.get("compositions") or []
            next_token = page.get("next_token")
            if not next_token:
                return

    def fetch(self, url: str, path: Path | str) -> Path:
        """Download a presigned URL (a composition's or the model's) into `path`, creating its
        folder; the file appears whole or not at all."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        # Presigned S3 URLs carry their own authorization: no signature, no API headers.
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as reply:
                partial.write_bytes(reply.read())
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, "download_failed", f"cannot fetch {_without_query(url)}") from None
        except urllib.error.URLError as e:
            raise ApiError(0, "unreachable", f"cannot fetch {_without_query(url)}: {e.reason}") from None
        partial.replace(target)
        return target

    def download(self, job_id: str, destination: Path | str) -> builtins.list[Path]:
        """Every MIDI file of the job into `destination`: the training's by name (`final.mid`,
        `epoch-0005.mid`), your compositions by id (`<composition_id>.mid`)."""
        target = Path(destination)
        target.mkdir(parents=True, exist_ok=True)
        paths = []
        for composition in self.all_compositions(job_id):
            path = target / file_name(composition)
            paths.append(self.fetch(composition["url"], path))
        return paths

    # --- HTTP -----------------------------------------------------------------------------------------
    def _json(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> dict[str, Any]:
        data = self._request(method, path, body, headers, retry=retry)
        return json.loads(data) if data else {}

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> bytes:
        """One request, tried again after each of `retry_delays_s` while its answer is worth
        another try (RETRY_STATUSES, or the connection dropped after the request went out), if
        `retry` or the method is GET. The last error is raised."""
        delays = self.retry_delays_s if retry or method == "GET" else ()
        for attempt in range(len(delays) + 1):
            try:
                return self._send_once(method, path, body, headers)
            except ApiError as e:
                if attempt == len(delays) or not (e.status in RETRY_STATUSES or e.code == "connection_lost"):
                    raise
                time.sleep(delays[attempt])
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send_once(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        url = self.api_url + path
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers = request_headers(self, method, url, payload, all_headers)
        request = urllib.request.Request(url, data=payload, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return reply.read()  # type: ignore[no-any-return]
        except urllib.error.HTTPError as e:
            raise _api_error(e.code, e.read(), e.headers.get(names.REQUEST_ID_HEADER)) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (ConnectionResetError, TimeoutError)):
                raise _connection_lost(self.api_url, e.reason) from None
            raise ApiError(0, "unreachable", f"cannot reach {self.api_url}: {e.reason}") from None
        except (ConnectionResetError, http.client.RemoteDisconnected, TimeoutError) as e:
            # The request went out and no answer came back: it may or may not have been served.
            raise _connection_lost(self.api_url, e) from None

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


def request_headers(
    client: Client, method: str, url: str, payload: bytes | None, headers: Mapping[str, str]
) -> dict[str, str]:
    """`headers` as `client` sends them with this request to its API: SigV4-signed
    (`Authorization`, `X-Amz-Date`, ...) when it signs, as they are otherwise. Every request of the
    client goes through it, and so does every request `opencomposer console` forwards."""
    if not client.sign:
        return dict(headers)
    return client._signed_headers(method, url, payload, dict(headers))


def file_name(composition: Mapping[str, Any]) -> str:
    """A composition's file name: its id for yours (`<composition_id>.mid`), its name for what
    the training wrote (`final.mid`). A name that could leave the folder is refused."""
    if composition.get("kind") == "composition" and composition.get("composition_id"):
        stem = str(composition["composition_id"])
    else:
        stem = str(composition.get("name") or composition.get("composition_id") or "").replace("/", "-")
    stem = stem.removesuffix(".mid")
    if not _SAFE_NAME.match(stem) or ".." in stem:
        raise ApiError(502, "bad_composition_name", f"refusing to write a file named {stem!r}")
    return f"{stem}.mid"


def _without_query(url: str) -> str:
    """A presigned URL without its signature, for messages."""
    return url.split("?", 1)[0]


def _region_of(host: str) -> str | None:
    m = _EXECUTE_API_HOST.search(host)
    return m.group(1) if m else None


def _id(value: str, field: str = "job_id") -> str:
    """A path segment: an id, never a path."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        what = field.replace("_", " ").removesuffix(" id")
        raise ApiError(400, f"invalid_{field}", f"not a {what} id: {value!r}", field)
    return value


def _connection_lost(api_url: str, reason: BaseException) -> ApiError:
    return ApiError(0, "connection_lost", f"no answer from {api_url}: {reason or type(reason).__name__}")


def _api_error(status: int, raw: bytes, request_id: str | None = None) -> ApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ApiError(
            status,
            str(error.get("code", "error")),
            str(error.get("message", "")),
            error.get("field"),
            request_id,
        )
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers
        return ApiError(status, "gateway", str(body["message"]), request_id=request_id)
    text = raw.decode(errors="replace")[:500] or f"HTTP {status}"
    return ApiError(status, "http_error", text, request_id=request_id)
