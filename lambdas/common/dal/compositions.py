"""A job's compositions in the Jobs table: items under the job's partition (`COMPOSITION#<id>`),
so a job's deletion takes them along, and ids that start with their creation time, so a
descending Query lists them newest first."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from contracts import names, statuses, storage
from lambdas.common.dal.aws import error_code, raise_common, table
from lambdas.common.errors import InvalidFieldError, JobStateConflictError


class CompositionsRepository:
    def __init__(self, table_name: str) -> None:
        self._table = table(table_name)

    def _query(self, job_id: str) -> dict[str, Any]:
        return {
            "KeyConditionExpression": Key(storage.PARTITION_KEY).eq(storage.job_pk(job_id))
            & Key(storage.SORT_KEY).begins_with(storage.COMPOSITION_SORT_KEY_PREFIX),
        }

    def count(self, job_id: str) -> int:
        kwargs: dict[str, Any] = {**self._query(job_id), "Select": "COUNT"}
        total = 0
        while True:
            try:
                page = self._table.query(**kwargs)
            except ClientError as e:
                raise_common(e)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put(self, job: dict[str, Any], composition: dict[str, Any]) -> None:
        """Writes the composition item if, at that moment, the job is still the owner's and
        COMPLETED: one transaction, so a job deleted meanwhile never gains an orphan item.
        JobStateConflictError when it is not."""
        job_id = job["job_id"]
        item = {
            **storage.composition_item_key(job_id, composition["composition_id"]),
            storage.ITEM_TYPE: storage.COMPOSITION_ITEM,
            **composition,
        }
        try:
            self._table.meta.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self._table.name,
                            "Key": storage.job_key(job_id),
                            "ConditionExpression": "#o = :owner AND #s = :completed",
                            "ExpressionAttributeNames": {"#o": "owner", "#s": "status"},
                            "ExpressionAttributeValues": {
                                ":owner": job["owner"],
                                ":completed": statuses.COMPLETED.value,
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": item,
                            "ConditionExpression": f"attribute_not_exists({storage.PARTITION_KEY})",
                        }
                    },
                ]
            )
        except ClientError as e:
            if error_code(e) == "TransactionCanceledException":
                raise JobStateConflictError(
                    f"job {job_id} changed while the composition was made (deleted?); nothing was kept"
                ) from e
            raise_common(e)

    def page(self, job_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` compositions newest first, after the one whose id is `after`; and the
        id to continue after, if more may follow."""
        kwargs: dict[str, Any] = {**self._query(job_id), "ScanIndexForward": False, "Limit": limit}
        if after is not None:
            kwargs["ExclusiveStartKey"] = storage.composition_item_key(job_id, after)
        try:
            page = self._table.query(**kwargs)
        except ClientError as e:
            raise_common(e)
        last = page.get("LastEvaluatedKey")
        return page["Items"], (
            last[storage.SORT_KEY].removeprefix(storage.COMPOSITION_SORT_KEY_PREFIX) if last else None
        )

    def delete(self, job_id: str, composition_id: str) -> bool:
        """False when there was no such composition."""
        try:
            old = self._table.delete_item(
                Key=storage.composition_item_key(job_id, composition_id), ReturnValues="ALL_OLD"
            )
        except ClientError as e:
            raise_common(e)
        return "Attributes" in old


# --- GET /jobs/{id}/compositions page tokens -------------------------------------------------------
# A page ends inside the caller's compositions (`after`: the last id shown) or inside the
# training's outputs (`skip`: how many of them were shown). The token names its job, so it is
# accepted back for that job only (whose ownership the route checks first).
PHASE_COMPOSED = "composed"
PHASE_TRAINING = "training"


def encode_token(job_id: str, phase: str, position: str | int) -> str:
    data = {"job_id": job_id, "phase": phase, "at": position}
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode()


def decode_token(token: str, job_id: str) -> tuple[str, str | int]:
    """(phase, position); InvalidFieldError naming `next_token` for anything this API did not give."""
    invalid = InvalidFieldError("next_token", "not a token this API returned for this job")
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise invalid from e
    if not isinstance(data, dict) or set(data) != {"job_id", "phase", "at"} or data["job_id"] != job_id:
        raise invalid
    phase, at = data["phase"], data["at"]
    if phase == PHASE_COMPOSED and isinstance(at, str) and names.is_composition_id(at):
        return phase, at
    if phase == PHASE_TRAINING and isinstance(at, int) and not isinstance(at, bool) and at >= 0:
        return phase, at
    raise invalid
