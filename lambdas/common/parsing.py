"""From the raw API Gateway request to validated models, or a domain error naming the field."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts import names
from lambdas.common.errors import (
    BodyTooLargeError,
    InvalidFieldError,
    InvalidJsonError,
    UnsupportedMediaTypeError,
)

MAX_BODY_BYTES = 1024 * 1024
_IDEMPOTENCY_KEY = re.compile(names.IDEMPOTENCY_KEY_PATTERN)
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)

Model = TypeVar("Model", bound=BaseModel)


def field_path(loc: tuple[int | str, ...]) -> str | None:
    """pydantic's error location as the dotted field name a user sees (`hyperparameters.epochs`);
    None for no location (the model as a whole). A key that is empty, holds a dot or starts with
    a quote is written as its JSON string (`""`, `hyperparameters."a.b"`, `"\\"a"`), so the name
    still points at one field, and a name that starts with a quote is always a whole JSON string."""
    if not loc:
        return None
    return ".".join(json.dumps(part) if _quoted(str(part)) else str(part) for part in loc)


def _quoted(key: str) -> bool:
    return key == "" or "." in key or key.startswith('"')


def _first_error(error: ValidationError, prefix: str = "") -> InvalidFieldError:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    # A model-level check (e.g. "exactly one of") has no field of its own: name the object.
    field = field_path(loc)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return InvalidFieldError(f"{prefix}{field}" if field else (prefix.rstrip(".") or None), message)


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """The request's body as sent. A binary body arrives base64-encoded (`isBase64Encoded`); it is
    decoded here to bytes, never to text (Powertools' `decoded_body` decodes it as UTF-8, which
    raises on a body that is not: that is a 415 or a 400 to answer, not a crash)."""
    if body is None:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError) as e:
            raise InvalidJsonError("the body is not valid base64 as its isBase64Encoded says") from e
    return body.encode("utf-8", "surrogatepass")


def parse_body(model: type[Model], raw: bytes, content_type: str | None) -> Model:
    """Size first (413), then media type (415), then JSON (400), then the schema (400)."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLargeError(f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES} (1 MiB)")
    if not raw.strip():
        raw = b"{}"  # no body: every default, or a 400 naming the first required field
    elif not content_type or not _JSON_TYPE.match(content_type):
        raise UnsupportedMediaTypeError(f"send JSON (Content-Type: application/json), not {content_type!r}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidJsonError(f"the body is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise InvalidJsonError("the body must be a JSON object")
    try:
        # JSON mode keeps strictness meaningful: 7 is an int, "7" is not.
        return model.model_validate_json(json.dumps(data))
    except ValidationError as e:
        raise _first_error(e) from e


def parse_query(model: type[Model], params: dict[str, Any] | None) -> Model:
    try:
        return model.model_validate(params or {})
    except ValidationError as e:
        raise _first_error(e) from e


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.match(value):
        raise InvalidFieldError(
            names.IDEMPOTENCY_HEADER, "1 to 128 printable ASCII characters without spaces"
        )
    return value
