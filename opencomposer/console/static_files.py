"""The console's own routes, for the local front door and `opencomposer console` alike.

    GET /                      index.html
    GET /console/<path>        a file under static/ (never outside it)
    GET /console/fetch?url=U   U fetched by the server and returned: a presigned S3 URL of the
                               stack (moto's endpoint locally, S3 on AWS), so the page reads MIDI
                               from the same origin (no CORS rules needed on moto or the bucket)

`console_response` answers those (GET and HEAD) and returns None for everything else, which
goes to the API. Answers are `(status, headers, body)`, as the front door's; errors have the
API's shape, `{"error": {"code", "message", "field"?}}`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

Response = tuple[int, list[tuple[str, str]], bytes]

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
PREFIX = "/console/"
FETCH_PATH = "/console/fetch"
# What /console/fetch returns at most (a composition is kilobytes; a model tarball megabytes).
MAX_FETCH_BYTES = 64 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".license": "text/plain; charset=utf-8",
    ".mid": "audio/midi",
    ".midi": "audio/midi",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".sf2": "application/octet-stream",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_STATIC_HEADERS = [("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]

# S3's hosts: bucket.s3.amazonaws.com, bucket.s3.eu-west-1.amazonaws.com, s3.eu-west-1.amazonaws.com,
# s3-eu-west-1.amazonaws.com, the dualstack and accelerate endpoints, and the China partition.
_S3_HOST = re.compile(
    r"^(?:[a-z0-9][a-z0-9.-]*\.)?s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$", re.IGNORECASE
)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def error(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict[str, str] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return status, [("Content-Type", "application/json")], json.dumps({"error": body}).encode()


def content_type(path: Path | str) -> str:
    return CONTENT_TYPES.get(Path(path).suffix.lower(), DEFAULT_CONTENT_TYPE)


def is_console_path(path: str) -> bool:
    """Whether a request target (path and query) is one of the console's routes."""
    path = path.split("?", 1)[0]
    return path == "/" or path == "/console" or path.startswith(PREFIX)


def resolve(relative: str, root: Path = STATIC_DIR) -> Path | None:
    """The file `relative` (URL-encoded, `/`-separated) names under `root`, or None: no `..`, no
    `.` or empty segment, no absolute path or drive, no dotfile, no backslash or NUL, and a
    symbolic link must land inside `root` too."""
    name = unquote(relative)
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return None
    parts = name.split("/")
    if any(not part or part.startswith(".") or ":" in part for part in parts):
        return None
    base = root.resolve()
    try:
        candidate = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def static_response(target: str, root: Path = STATIC_DIR) -> Response:
    """`/` or `/console/<path>` (a query is ignored): the file, or a 404 in the API's shape."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    relative = INDEX if path in ("/", "/console", PREFIX) else path[len(PREFIX) :]
    file = resolve(relative, root)
    if file is None:
        return error(404, "not_found", f"no console file {unquote(relative)!r}")
    try:
        data = file.read_bytes()
    except OSError:
        return error(404, "not_found", f"no console file {unquote(relative)!r}")
    return 200, [("Content-Type", content_type(file)), *_STATIC_HEADERS], data


class FetchAllowList:
    """Which URLs /console/fetch may fetch: the given origins exactly (`http://127.0.0.1:5000`,
    moto's endpoint), S3's hosts over HTTPS (`s3`), any port of this machine over HTTP
    (`loopback`, for a console in front of the local stack, whose moto port it cannot know)."""

    def __init__(self, origins: Iterable[str] = (), s3: bool = False, loopback: bool = False) -> None:
        self.origins = frozenset(_origin(urlsplit(o)) for o in origins if o)
        self.s3 = s3
        self.loopback = loopback

    def __call__(self, url: SplitResult) -> bool:
        if url.username or url.password:
            return False
        try:
            origin = _origin(url)
        except ValueError:
            return False
        if origin in self.origins:
            return True
        host = (url.hostname or "").lower()
        if self.s3 and url.scheme == "https" and _S3_HOST.match(host):
            return True
        return self.loopback and url.scheme == "http" and host in _LOOPBACK

    def __repr__(self) -> str:
        return f"FetchAllowList(origins={sorted(self.origins)}, s3={self.s3}, loopback={self.loopback})"


def _origin(url: SplitResult) -> tuple[str, str, int]:
    default = {"http": 80, "https": 443}.get(url.scheme, 0)
    return url.scheme, (url.hostname or "").lower(), url.port or default


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is answered as it is, never followed to another host


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch_response(target: str, allowed: FetchAllowList) -> Response:
    """`/console/fetch?url=U`: U's body and content type, when `allowed` takes U; else a 400."""
    query = target.split("?", 1)[1] if "?" in target else ""
    values = parse_qs(query, keep_blank_values=True).get("url") or []
    if len(values) != 1 or not values[0]:
        return error(400, "invalid_url", "give one url= query parameter", "url")
    url = values[0]
    parts = urlsplit(url)
    shown = url.split("?", 1)[0]  # never echo the signature
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return error(400, "invalid_url", f"not an http(s) URL: {shown!r}", "url")
    if not allowed(parts):
        return error(400, "invalid_url", f"not a URL of this stack's storage: {shown}", "url")
    request = urllib.request.Request(url, method="GET", headers={"Accept": "*/*"})
    try:
        with _OPENER.open(request, timeout=FETCH_TIMEOUT_S) as reply:
            data = reply.read(MAX_FETCH_BYTES + 1)
            kind = reply.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
    except urllib.error.HTTPError as e:
        status = e.code if 400 <= e.code < 500 else 502
        return error(status, "fetch_failed", f"{shown} answered {e.code} (an expired link is a 403)")
    except (urllib.error.URLError, OSError) as e:
        return error(502, "fetch_failed", f"cannot fetch {shown}: {getattr(e, 'reason', e)}")
    if len(data) > MAX_FETCH_BYTES:
        return error(502, "fetch_failed", f"{shown} is over {MAX_FETCH_BYTES // (1024 * 1024)} MiB")
    if kind.split(";", 1)[0].strip().lower() in ("binary/octet-stream", ""):
        kind = DEFAULT_CONTENT_TYPE
    if parts.path.lower().endswith((".mid", ".midi")) and kind == DEFAULT_CONTENT_TYPE:
        kind = "audio/midi"
    return 200, [("Content-Type", kind), ("Cache-Control", "no-store")], data


def console_response(method: str, target: str, allowed: FetchAllowList) -> Response | None:
    """The answer to a console route, or None when the request is the API's."""
    if method not in ("GET", "HEAD") or not is_console_path(target):
        return None
    if target.split("?", 1)[0] == FETCH_PATH:
        return fetch_response(target, allowed)
    return static_response(target)
