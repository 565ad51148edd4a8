"""The datasets in the Jobs table: one item per dataset under its own partition
(`contracts.datasets.dataset_key`), listed per owner by the sparse `DATASET_OWNER_INDEX`, moved
through its statuses by conditional updates only (a duplicate upload event builds once, a
dataset being built cannot be deleted)."""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from contracts import datasets, storage
from contracts.timestamps import utc_timestamp
from lambdas.common.dal.aws import client, error_code, raise_common, table
from lambdas.common.errors import DatasetNotFoundError, DatasetStateConflictError, InvalidFieldError
from lambdas.common.models import plain

# The item's attributes that are the table's business, not the dataset's.
_KEY_ATTRIBUTES = (storage.PARTITION_KEY, storage.SORT_KEY, storage.ITEM_TYPE)
BACH_NAME = "Bach chorales"


def _dataset(item: dict[str, Any]) -> dict[str, Any]:
    """The item as a plain dict: `dataset_id`, `owner`, `name`, `status`, `created_at`,
    `updated_at`, and once built `summary` (the report with `rejected` cut, `rejected_count`)
    or `failure_reason`."""
    found = {k: plain(v) for k, v in item.items() if k not in _KEY_ATTRIBUTES}
    found["owner"] = found.pop(datasets.DATASET_OWNER_ATTRIBUTE)
    return found


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The summary an item holds of a build report: `rejected` cut to ITEM_REJECTED_MAX (a
    DynamoDB item has 400 KB), with how many there were in all."""
    summary = {field: report[field] for field in datasets.REPORT_FIELDS}
    summary["rejected_count"] = len(report["rejected"])
    summary["rejected"] = list(report["rejected"][: datasets.ITEM_REJECTED_MAX])
    return summary


def index_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What an index (one entry per piece, `contracts.datasets.index_key`) sums to."""
    tags: dict[str, int] = {}
    for entry in entries:
        for tag in entry["tags"]:
            tags[tag] = tags.get(tag, 0) + 1
    return {
        "pieces": len(entries),
        "bars": sum(int(entry["bars"]) for entry in entries),
        "windows": sum(int(entry["windows"]) for entry in entries),
        "tags": dict(sorted(tags.items())),
    }


def index_entries(document: Any) -> list[dict[str, Any]]:
    """The entries of an index document: a list, or an object holding it under `pieces`."""
    if isinstance(document, dict):
        document = document.get("pieces", document.get("index"))
    if not isinstance(document, list):
        raise ValueError("a dataset index is a list of pieces")
    return document


@cache
def bach_dataset() -> dict[str, Any]:
    """The built-in dataset, every caller's, READY; its summary from the index that ships in
    `contracts` (absent: no summary, the training still has the chorales baked in)."""
    found: dict[str, Any] = {
        "dataset_id": datasets.BACH_DATASET_ID,
        "owner": None,
        "name": BACH_NAME,
        "status": datasets.READY,
        "builtin": True,
    }
    if datasets.BACH_INDEX_FILE.is_file():
        entries = index_entries(json.loads(datasets.BACH_INDEX_FILE.read_text()))
        found["summary"] = {"files": len(entries), "accepted": len(entries), "rejected": [],
                            "rejected_count": 0, **index_summary(entries)}
    return found


class DatasetsRepository:
    def __init__(self, table_name: str) -> None:
        self._table = table(table_name)

    def put_new(self, dataset_id: str, owner: str, name: str | None) -> dict[str, Any]:
        now = utc_timestamp()
        item: dict[str, Any] = {
            **datasets.dataset_key(dataset_id),
            storage.ITEM_TYPE: datasets.DATASET_ITEM,
            "dataset_id": dataset_id,
            datasets.DATASET_OWNER_ATTRIBUTE: owner,
            "status": datasets.WAITING_FOR_UPLOAD,
            "created_at": now,
            "updated_at": now,
        }
        if name:
            item["name"] = name
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr(storage.PARTITION_KEY).not_exists())
        except ClientError as e:
            raise_common(e)
        return _dataset(item)

    def find(self, dataset_id: str) -> dict[str, Any] | None:
        """Anyone's dataset (the build function's view), None when there is none."""
        try:
            item = self._table.get_item(Key=datasets.dataset_key(dataset_id), ConsistentRead=True).get("Item")
        except ClientError as e:
            raise_common(e)
        return _dataset(item) if item else None

    def get(self, owner: str, dataset_id: str, field: str | None = None) -> dict[str, Any]:
        """The caller's dataset, or the built-in one; another caller's is as absent as a missing
        one (DatasetNotFoundError, naming `field` when the id came in a request field)."""
        if dataset_id == datasets.BACH_DATASET_ID:
            return dict(bach_dataset())
        found = self.find(dataset_id)
        if found is None or found["owner"] != owner:
            raise DatasetNotFoundError(dataset_id, field)
        return found

    def page(self, owner: str, limit: int, next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The caller's datasets newest first (the sparse index holds datasets only), at most
        `limit`, and a token for the next page."""
        kwargs: dict[str, Any] = {
            "IndexName": datasets.DATASET_OWNER_INDEX,
            "KeyConditionExpression": Key(datasets.DATASET_OWNER_ATTRIBUTE).eq(owner),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token:
            kwargs["ExclusiveStartKey"] = _decode_token(next_token, owner)
        try:
            page = self._table.query(**kwargs)
        except ClientError as e:
            raise_common(e)
        last = page.get("LastEvaluatedKey")
        return [_dataset(item) for item in page["Items"]], (_encode_token(last) if last else None)

    def start_build(self, dataset_id: str) -> bool:
        """WAITING_FOR_UPLOAD → BUILDING; False when the dataset is not waiting (a duplicate
        event, a deleted dataset): the caller builds only on True."""
        return self._move(dataset_id, datasets.WAITING_FOR_UPLOAD, datasets.BUILDING, {})

    def end_build(self, dataset_id: str, report: dict[str, Any] | None, failure_reason: str | None) -> bool:
        """BUILDING → READY with the report's summary, or FAILED with the reason."""
        if report is not None:
            return self._move(dataset_id, datasets.BUILDING, datasets.READY, {"summary": summarise(report)})
        return self._move(dataset_id, datasets.BUILDING, datasets.FAILED, {"failure_reason": failure_reason})

    def _move(self, dataset_id: str, source: str, target: str, extra: dict[str, Any]) -> bool:
        names = {"#s": "status", **{f"#{k}": k for k in extra}}
        values = {":source": source, ":target": target, ":now": utc_timestamp(),
                  **{f":{k}": v for k, v in extra.items()}}
        update = "SET #s = :target, updated_at = :now" + "".join(f", #{k} = :{k}" for k in extra)
        try:
            self._table.update_item(
                Key=datasets.dataset_key(dataset_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(#pk) AND #s = :source",
                ExpressionAttributeNames={**names, "#pk": storage.PARTITION_KEY},
                ExpressionAttributeValues=values,
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise_common(e)
        return True

    def delete(self, owner: str, dataset_id: str) -> None:
        """The caller's dataset's item, unless it is being built (DatasetStateConflictError):
        the condition holds at the moment of the delete, so a build cannot start in between."""
        try:
            self._table.delete_item(
                Key=datasets.dataset_key(dataset_id),
                ConditionExpression="#o = :owner AND #s <> :building",
                ExpressionAttributeNames={"#o": datasets.DATASET_OWNER_ATTRIBUTE, "#s": "status"},
                ExpressionAttributeValues={":owner": owner, ":building": datasets.BUILDING},
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                current = self.find(dataset_id)
                if current is None or current["owner"] != owner:
                    raise DatasetNotFoundError(dataset_id) from e
                raise DatasetStateConflictError(
                    f"dataset {dataset_id} is {current['status']}: delete it once its build has ended"
                ) from e
            raise_common(e)


def presigned_upload(bucket: str, key: str, conditions: list[Any], expires_s: int) -> dict[str, Any]:
    """A presigned S3 POST (`{"url", "fields"}`) for one key under these policy conditions.
    Signing is local: no request is made, so no AWS error can come of it."""
    form: dict[str, Any] = client("s3").generate_presigned_post(
        Bucket=bucket, Key=key, Conditions=conditions, ExpiresIn=expires_s)
    return form


def get_dataset(owner: str, dataset_id: str) -> dict[str, Any]:
    """The caller's dataset (or the built-in Bach chorales, `builtin: True`) as a plain dict;
    DatasetNotFoundError naming `dataset` for a missing id or another owner's. Reads the api's
    table (`contracts.functions.ENV_TABLE`)."""
    from lambdas.common.env import api_env  # the env module parses the process's variables

    return DatasetsRepository(api_env().table_name).get(owner, dataset_id, field="dataset")


# --- GET /datasets page tokens: bound to the caller, as GET /jobs's ---------------------------
_TOKEN_KEYS = {
    storage.PARTITION_KEY,
    storage.SORT_KEY,
    datasets.DATASET_OWNER_ATTRIBUTE,
    datasets.DATASET_OWNER_INDEX_SORT_KEY,
}


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain(key), sort_keys=True).encode()).decode()


def _decode_token(token: str, owner: str) -> dict[str, Any]:
    invalid = InvalidFieldError("next_token", "not a token this API returned")
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise invalid from e
    if (
        not isinstance(key, dict)
        or set(key) != _TOKEN_KEYS
        or not all(isinstance(v, str) for v in key.values())
        or key[datasets.DATASET_OWNER_ATTRIBUTE] != owner
    ):
        raise invalid
    return key
