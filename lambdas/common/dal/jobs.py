"""The Jobs table: jobs, their epochs and idempotency items, and the caller-bound page tokens."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from contracts import statuses, storage
from contracts.statuses import JobStatus
from contracts.timestamps import utc_timestamp
from lambdas.common.dal.aws import error_code, raise_common, table
from lambdas.common.errors import ConditionFailedError, InvalidFieldError, JobNotFoundError

# POST /jobs/{id}/stop: the statuses a job may move to STOPPING from, as the condition's values.
_STOP_SOURCES = {f":{s.lower()}": s for s in statuses.ordered(statuses.sources(statuses.STOPPING))}
# A job whose execution never started is SUBMITTED, or STOPPING when it was stopped meanwhile;
# each ends in the one final status the contract lets it reach (SUBMITTED → FAILED, STOPPING →
# STOPPED), found at import: a contract with none or several for one fails here.
_UNSTARTED = (statuses.SUBMITTED, statuses.STOPPING)


def _final_from(status: JobStatus) -> JobStatus:
    (final,) = (target for target in statuses.FINAL if statuses.may_move(status, target))
    return final


_END_UNSTARTED = tuple((status, _final_from(status)) for status in _UNSTARTED)
# A job whose execution has ended without finishing it: a stop the user asked for ends STOPPED
# (the only final status STOPPING may reach), any other unfinished job FAILED; in that order,
# since `sources(FAILED)` and `sources(STOPPED)` do not overlap, at most one of them can apply.
_END_ABANDONED = (statuses.STOPPED, statuses.FAILED)


class JobsRepository:
    def __init__(self, table_name: str) -> None:
        self._table = table(table_name)

    # --- jobs --------------------------------------------------------------------------------
    def get_job(self, job_id: str, owner: str) -> dict[str, Any]:
        """The caller's job; another caller's job is as absent as a missing one."""
        try:
            item = self._table.get_item(Key=storage.job_key(job_id), ConsistentRead=True).get("Item")
        except ClientError as e:
            raise_common(e)
        if item is None or item.get("owner") != owner:
            raise JobNotFoundError(job_id)
        return item

    def put_job(self, job: dict[str, Any], idempotency: dict[str, Any] | None) -> bool:
        """Writes a new job item, with its idempotency item in the same transaction if any.

        Returns False when the idempotency item appeared meanwhile (a concurrent POST with the
        same key won the race); the caller then answers with that job.
        """
        item = {**storage.job_key(job["job_id"]), storage.ITEM_TYPE: storage.JOB_ITEM, **job}
        if idempotency is None:
            try:
                self._table.put_item(Item=item, ConditionExpression=Attr(storage.PARTITION_KEY).not_exists())
            except ClientError as e:
                raise_common(e)
            return True
        marker = {
            **storage.idempotency_key(job["owner"], idempotency["key"]),
            storage.ITEM_TYPE: storage.IDEMPOTENCY_ITEM,
            "job_id": job["job_id"],
            "request_hash": idempotency["request_hash"],
            "created_at": job["created_at"],
        }
        # The resource's own client serialises Python values, as the Table methods do.
        new_item = f"attribute_not_exists({storage.PARTITION_KEY})"
        try:
            self._table.meta.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": written,
                            "ConditionExpression": new_item,
                        }
                    }
                    for written in (item, marker)
                ]
            )
        except ClientError as e:
            if error_code(e) == "TransactionCanceledException":
                return False
            raise_common(e)
        return True

    def get_idempotency(self, owner: str, key: str) -> dict[str, Any] | None:
        marker = storage.idempotency_key(owner, key)
        try:
            return self._table.get_item(Key=marker, ConsistentRead=True).get("Item")
        except ClientError as e:
            raise_common(e)

    def list_jobs(
        self, owner: str, status: str | None, limit: int, next_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The caller's jobs, newest first, at most `limit`, and a token for the next page."""
        start_key = _decode_token(next_token, owner) if next_token else None
        jobs: list[dict[str, Any]] = []
        while True:
            kwargs: dict[str, Any] = {
                "IndexName": storage.OWNER_INDEX,
                "KeyConditionExpression": Key(storage.OWNER_INDEX_PARTITION_KEY).eq(owner),
                "ScanIndexForward": False,
                # The filter applies after Limit, so asking for what is missing never overshoots.
                "Limit": limit - len(jobs),
            }
            if status:
                kwargs["FilterExpression"] = Attr("status").eq(status)
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            try:
                page = self._table.query(**kwargs)
            except ClientError as e:
                raise_common(e)
            jobs.extend(page["Items"])
            start_key = page.get("LastEvaluatedKey")
            if not start_key or len(jobs) >= limit:
                break
        return jobs, (_encode_token(start_key) if start_key else None)

    def list_epochs(self, job_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key(storage.PARTITION_KEY).eq(storage.job_pk(job_id))
            & Key(storage.SORT_KEY).begins_with(storage.EPOCH_SORT_KEY_PREFIX)
        }
        while True:
            try:
                page = self._table.query(**kwargs)
            except ClientError as e:
                raise_common(e)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def request_stop(self, job_id: str, owner: str) -> dict[str, Any]:
        """→ STOPPING from `statuses.sources(STOPPING)`; ConditionFailedError from any other status."""
        try:
            return self._table.update_item(
                Key=storage.job_key(job_id),
                UpdateExpression="SET #s = :stopping, updated_at = :now",
                ConditionExpression=f"#o = :owner AND #s IN ({', '.join(_STOP_SOURCES)})",
                ExpressionAttributeNames={"#s": "status", "#o": "owner"},
                ExpressionAttributeValues={
                    ":stopping": statuses.STOPPING.value,
                    ":now": utc_timestamp(),
                    ":owner": owner,
                    **_STOP_SOURCES,
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                raise ConditionFailedError("the job cannot be stopped in its current status") from e
            raise_common(e)

    def fail_unstarted(self, job_id: str, reason: str) -> str | None:
        """Ends a job whose execution can never start: SUBMITTED → FAILED with the reason, or
        STOPPING → STOPPED (stopped before it started). Returns the status written, or None when
        the job had already moved on (nothing to do)."""
        for expected, final in _END_UNSTARTED:
            if self._end(job_id, final, "#s = :expected", {":expected": expected.value}, reason):
                return final.value
        return None

    def end_abandoned(self, job_id: str, reason: str) -> str | None:
        """Ends a job whose execution has ended while the job is not final: STOPPING → STOPPED,
        SUBMITTED/STARTING/TRAINING → FAILED with the reason, each a conditional update from the
        contract's sources (`statuses.sources`). Returns the status written, or None when the job
        is already final or gone (nothing to do: the update creates no item)."""
        for final in _END_ABANDONED:
            expected = {f":{s.lower()}": s for s in statuses.ordered(statuses.sources(final))}
            if self._end(job_id, final, f"#s IN ({', '.join(expected)})", expected, reason):
                return final.value
        return None

    def _end(
        self, job_id: str, final: statuses.JobStatus, condition: str, expected: dict[str, str], reason: str
    ) -> bool:
        """The job set to `final` (FAILED with `reason`) if its status meets `condition`; False
        when it does not."""
        values = {":final": final.value, ":now": utc_timestamp(), **expected}
        update = "SET #s = :final, updated_at = :now"
        if final == statuses.FAILED:
            update += ", failure_reason = :reason"
            values[":reason"] = reason
        try:
            self._table.update_item(
                Key=storage.job_key(job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise_common(e)
            return False
        return True

    def delete_job(self, job: dict[str, Any]) -> None:
        """Every item of the job (job, epochs) and its idempotency item; the job item last, so
        a failure half-way leaves a job that can be deleted again."""
        job_id = job["job_id"]
        keys = [
            {storage.PARTITION_KEY: item[storage.PARTITION_KEY], storage.SORT_KEY: item[storage.SORT_KEY]}
            for item in self._query_all_keys(job_id)
            if item[storage.SORT_KEY] != storage.JOB_SORT_KEY_VALUE
        ]
        if job.get("idempotency_key"):
            keys.append(storage.idempotency_key(job["owner"], job["idempotency_key"]))
        try:
            with self._table.batch_writer() as batch:
                for key in keys:
                    batch.delete_item(Key=key)
            self._table.delete_item(Key=storage.job_key(job_id))
        except ClientError as e:
            raise_common(e)

    def _query_all_keys(self, job_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key(storage.PARTITION_KEY).eq(storage.job_pk(job_id)),
            "ProjectionExpression": "#pk, #sk",
            "ExpressionAttributeNames": {"#pk": storage.PARTITION_KEY, "#sk": storage.SORT_KEY},
        }
        while True:
            try:
                page = self._table.query(**kwargs)
            except ClientError as e:
                raise_common(e)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


_TOKEN_KEYS = {
    storage.PARTITION_KEY,
    storage.SORT_KEY,
    storage.OWNER_INDEX_PARTITION_KEY,
    storage.OWNER_INDEX_SORT_KEY,
}


def _decode_token(token: str, owner: str) -> dict[str, Any]:
    """A token is only accepted back by the caller it was given to, and only in its own shape,
    so it cannot be forged to page through another caller's jobs."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise InvalidFieldError("next_token", "not a token this API returned") from e
    if (
        not isinstance(key, dict)
        or set(key) != _TOKEN_KEYS
        or not all(isinstance(v, str) for v in key.values())
        or key[storage.OWNER_INDEX_PARTITION_KEY] != owner
    ):
        raise InvalidFieldError("next_token", "not a token this API returned")
    return key
