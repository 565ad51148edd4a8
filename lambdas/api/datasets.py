"""What the /datasets routes do, between the HTTP layer (handler.py) and data access: a dataset
item and a presigned upload in, the caller's datasets out, a dataset and its files deleted.

The zip never passes through the API: the caller POSTs it to S3 with the presigned form, whose
policy carries the size limit (`contracts.datasets.MAX_UPLOAD_BYTES`) and the exact key, so S3
refuses anything larger or elsewhere and stores nothing of it; the upload's ObjectCreated event
starts the build (`lambdas/datasets/handler.py`).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import datasets
from contracts.timestamps import iso_utc, utc_timestamp
from lambdas.common.dal import ArtifactsStore
from lambdas.common.dal.datasets import DatasetsRepository, presigned_upload
from lambdas.common.errors import DatasetNotFoundError, DatasetStateConflictError
from lambdas.common.models import CreateDatasetRequest, ListDatasetsQuery

_DATASET_ID = re.compile(datasets.DATASET_ID_PATTERN)


def upload_conditions(key: str) -> list[Any]:
    """The presigned POST's policy conditions: the one key, and the size S3 enforces (a larger
    body is refused with EntityTooLarge, nothing stored)."""
    return [["content-length-range", 1, datasets.MAX_UPLOAD_BYTES], {"key": key}]


def dataset_to_api(item: dict[str, Any], report: dict[str, str] | None = None) -> dict[str, Any]:
    """The dataset as the API shows it; the owner stays inside."""
    return {
        "dataset_id": item["dataset_id"],
        "name": item.get("name"),
        "status": item["status"],
        "builtin": bool(item.get("builtin", False)),
        "created_at": iso_utc(item["created_at"]) if item.get("created_at") else None,
        "updated_at": iso_utc(item["updated_at"]) if item.get("updated_at") else None,
        "summary": item.get("summary"),
        "failure_reason": item.get("failure_reason"),
        "report": report,
    }


class DatasetService:
    def __init__(self, repository: DatasetsRepository, artifacts: ArtifactsStore) -> None:
        self._datasets = repository
        self._artifacts = artifacts

    def _dataset(self, owner: str, dataset_id: str) -> dict[str, Any]:
        if dataset_id != datasets.BACH_DATASET_ID and not _DATASET_ID.match(dataset_id):
            raise DatasetNotFoundError(dataset_id)
        return self._datasets.get(owner, dataset_id)

    # --- POST /datasets ------------------------------------------------------------------------
    def create(self, owner: str, request: CreateDatasetRequest) -> dict[str, Any]:
        dataset_id = uuid.uuid4().hex
        key = datasets.upload_key(dataset_id)
        # The item first: the upload's event finds it WAITING_FOR_UPLOAD (an upload with no item
        # is deleted unread).
        self._datasets.put_new(dataset_id, owner, request.name)
        form = presigned_upload(self._artifacts.bucket, key, upload_conditions(key),
                                datasets.UPLOAD_EXPIRES_S)
        expires = datetime.now(UTC) + timedelta(seconds=datasets.UPLOAD_EXPIRES_S)
        return {
            "dataset_id": dataset_id,
            "status": datasets.WAITING_FOR_UPLOAD,
            "upload": {"url": form["url"], "fields": form["fields"], "expires_at": utc_timestamp(expires),
                       "max_bytes": datasets.MAX_UPLOAD_BYTES},
        }

    # --- GET /datasets -------------------------------------------------------------------------
    def list(self, owner: str, query: ListDatasetsQuery) -> dict[str, Any]:
        items, token = self._datasets.page(owner, query.limit, query.next_token)
        return {"datasets": [dataset_to_api(item) for item in items], "next_token": token}

    # --- GET /datasets/{id} --------------------------------------------------------------------
    def get(self, owner: str, dataset_id: str) -> dict[str, Any]:
        item = self._dataset(owner, dataset_id)
        report = None
        if item["status"] == datasets.READY and not item.get("builtin"):
            url, expires_at = self._artifacts.presigned_get(datasets.report_key(dataset_id))
            report = {"url": url, "expires_at": expires_at}
        return dataset_to_api(item, report)

    # --- DELETE /datasets/{id} -----------------------------------------------------------------
    def delete(self, owner: str, dataset_id: str) -> None:
        """Every object under its prefix, then its item (conditionally: not while BUILDING, so a
        build that started meanwhile answers 409 and ends FAILED without its zip). A failure
        half-way leaves the item, so the DELETE can be repeated."""
        item = self._dataset(owner, dataset_id)
        if item.get("builtin"):
            raise DatasetStateConflictError(f"{dataset_id} is the built-in dataset: it cannot be deleted")
        if item["status"] == datasets.BUILDING:
            raise DatasetStateConflictError(
                f"dataset {dataset_id} is BUILDING: delete it once its build has ended")
        self._artifacts.delete_prefix(datasets.dataset_prefix(dataset_id))
        self._datasets.delete(owner, dataset_id)
