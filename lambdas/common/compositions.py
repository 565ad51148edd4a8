"""What the api and the compose function both say of a job's compositions: the JSON of one of
the caller's compositions, and where the job's model is (the api presigns it; the compose
function loads it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from contracts import storage
from contracts.timestamps import iso_utc
from lambdas.common.errors import JobStateConflictError
from lambdas.common.models import plain


def model_key(job: dict[str, object], bucket: str) -> str:
    """The S3 key of the job's model.tar.gz, from the URI the state machine recorded; only a key
    under this job's own model prefix in this bucket is accepted, so no item can point the
    function at another job's model."""
    uri = str(job.get("model_artifact") or "")
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    job_id = str(job["job_id"])
    if (
        parsed.scheme != "s3"
        or parsed.netloc != bucket
        or not key.startswith(storage.model_output_prefix(job_id))
    ):
        raise JobStateConflictError(f"job {job_id} has no model in this stack's bucket ({uri or 'none'})")
    return key


def composition_to_api(item: dict[str, Any], url: str, expires_at: str) -> dict[str, Any]:
    item = plain(item)
    return {
        "composition_id": item["composition_id"],
        "job_id": item["job_id"],
        "kind": "composition",
        "name": item["name"],
        "url": url,
        "expires_at": expires_at,
        "created_at": iso_utc(item["created_at"]),
        "melody": item["melody"],
        "seed": item["seed"],
        "temperature": float(item["temperature"]),
        "instruments": item["instruments"],
        "bars": item["bars"],
        "metrics": item["metrics"],
        "reference": item["reference"],
    }
