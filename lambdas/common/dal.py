"""Data access: the Jobs table and its stream, the artifacts bucket, Step Functions and SageMaker.

The only module of the Lambda code that talks to boto3. Clients come from one cached factory
(created on first use, reused while the Lambda environment is warm); ClientError codes become
domain errors here, so the layers above never inspect botocore responses.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NoReturn

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from contracts import statuses, storage
from contracts.statuses import JobStatus
from contracts.timestamps import utc_timestamp
from lambdas.common.errors import (
    ConditionFailedError,
    ExecutionRefusedError,
    ExecutionUnavailableError,
    InvalidFieldError,
    JobNotFoundError,
    RecordsGone,
    ServiceUnavailableError,
)

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "SlowDown",
    }
)
PRESIGNED_URL_SECONDS = 3600


@cache
def client(service: str) -> Any:
    return boto3.client(service)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb").Table(name)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _raise_common(error: ClientError) -> NoReturn:
    if _code(error) in THROTTLING_CODES:
        raise ServiceUnavailableError(f"AWS is busy ({_code(error)}); retry the request") from error
    raise error


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


class JobsRepository:
    def __init__(self, table_name: str) -> None:
        self._table = table(table_name)

    # --- jobs --------------------------------------------------------------------------------
    def get_job(self, job_id: str, owner: str) -> dict[str, Any]:
        """The caller's job; another caller's job is as absent as a missing one."""
        try:
            item = self._table.get_item(Key=storage.job_key(job_id), ConsistentRead=True).get("Item")
        except ClientError as e:
            _raise_common(e)
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
                _raise_common(e)
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
            if _code(e) == "TransactionCanceledException":
                return False
            _raise_common(e)
        return True

    def get_idempotency(self, owner: str, key: str) -> dict[str, Any] | None:
        marker = storage.idempotency_key(owner, key)
        try:
            return self._table.get_item(Key=marker, ConsistentRead=True).get("Item")
        except ClientError as e:
            _raise_common(e)

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
                _raise_common(e)
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
                _raise_common(e)
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
            if _code(e) == "ConditionalCheckFailedException":
                raise ConditionFailedError("the job cannot be stopped in its current status") from e
            _raise_common(e)

    def fail_unstarted(self, job_id: str, reason: str) -> str | None:
        """Ends a job whose execution can never start: SUBMITTED → FAILED with the reason, or
        STOPPING → STOPPED (stopped before it started). Returns the status written, or None when
        the job had already moved on (nothing to do)."""
        for expected, final in _END_UNSTARTED:
            values = {":expected": expected.value, ":final": final.value, ":now": utc_timestamp()}
            update = "SET #s = :final, updated_at = :now"
            if final == statuses.FAILED:
                update += ", failure_reason = :reason"
                values[":reason"] = reason
            try:
                self._table.update_item(
                    Key=storage.job_key(job_id),
                    UpdateExpression=update,
                    ConditionExpression="#s = :expected",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=values,
                )
                return final.value
            except ClientError as e:
                if _code(e) != "ConditionalCheckFailedException":
                    _raise_common(e)
        return None

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
            _raise_common(e)

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
                _raise_common(e)
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


class ArtifactsStore:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._s3 = client("s3")

    def put(self, key: str, body: bytes, content_type: str = storage.MIDI_CONTENT_TYPE) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as e:
            _raise_common(e)

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as e:
            _raise_common(e)

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
            for page in pages:
                found.extend(obj["Key"] for obj in page.get("Contents", []))
        except ClientError as e:
            _raise_common(e)
        return found

    def delete_prefix(self, prefix: str) -> None:
        keys = self.keys(prefix)
        try:
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                chunk = [{"Key": key} for key in keys[start : start + 1000]]
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True})
        except ClientError as e:
            _raise_common(e)

    def presigned_get(self, key: str) -> tuple[str, str]:
        """A GET URL for one object and when it expires (ISO-8601 UTC)."""
        url = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
        )
        expires = datetime.now(UTC) + timedelta(seconds=PRESIGNED_URL_SECONDS)
        return url, utc_timestamp(expires)


class Training:
    """SageMaker training jobs, as far as the api acts on them."""

    # Answers meaning "nothing (left) to stop": the job has not been created yet or has ended.
    _NOTHING_TO_STOP = frozenset({"ValidationException", "ResourceNotFound", "ResourceNotFoundException"})

    def stop(self, training_job_name: str) -> bool:
        """Asks SageMaker to stop the job; False when there was nothing running to stop."""
        try:
            client("sagemaker").stop_training_job(TrainingJobName=training_job_name)
        except ClientError as e:
            if _code(e) in self._NOTHING_TO_STOP:
                return False
            _raise_common(e)
        return True


class Executions:
    """Step Functions executions of the training state machine."""

    # StartExecution answers that no retry changes.
    PERMANENT_ERRORS = frozenset(
        {
            "ValidationException",
            "InvalidArn",
            "InvalidName",
            "InvalidExecutionInput",
            "StateMachineDoesNotExist",
            "StateMachineDeleting",
            "AccessDeniedException",
        }
    )

    def __init__(self, state_machine_arn: str) -> None:
        self._arn = state_machine_arn

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Starts the execution `name`: True; False when an execution of that name exists already
        (started before). ExecutionRefusedError for an answer in PERMANENT_ERRORS,
        ExecutionUnavailableError for any other."""
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except ClientError as e:
            code = _code(e)
            if code == "ExecutionAlreadyExists":
                return False
            error = ExecutionRefusedError if code in self.PERMANENT_ERRORS else ExecutionUnavailableError
            raise error(code, _message(e)) from e
        return True


class StreamRecords:
    """The Jobs table's stream, read back by sequence number."""

    # Answers that mean the records can no longer be read: older than the stream's 24 hours, or
    # the stream itself is gone (disabled, table deleted).
    GONE_ERRORS = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})
    # GetRecords may answer empty pages before it reaches a shard's later records (DynamoDB
    # Streams API reference, GetRecords); bounded so that a read never spins until the timeout.
    MAX_EMPTY_PAGES = 10

    def read(self, stream_arn: str, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
        """The shard's records from sequence number `start` to `end` (both included), as GetRecords
        answers them; fewer when the shard was closed before `end`. RecordsGone when they are no
        longer in the stream."""
        streams = client("dynamodbstreams")
        last = int(end)
        records: list[dict[str, Any]] = []
        empty_pages = 0
        try:
            iterator = streams.get_shard_iterator(
                StreamArn=stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=start,
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator)
                for record in page["Records"]:
                    sequence = int(record["dynamodb"]["SequenceNumber"])
                    if sequence > last:
                        return records
                    records.append(record)
                    if sequence == last:
                        return records
                empty_pages = 0 if page["Records"] else empty_pages + 1
                if empty_pages > self.MAX_EMPTY_PAGES:
                    raise RuntimeError(
                        f"the stream gave no records up to {end} after {empty_pages} empty reads"
                    )
                iterator = page.get("NextShardIterator")
        except ClientError as e:
            if _code(e) in self.GONE_ERRORS:
                raise RecordsGone(f"{_code(e)}: {_message(e)}") from e
            _raise_common(e)
        return records
