"""What the local stack keeps across a restart: its jobs table and its bucket, on disk.

moto keeps everything in memory, and has no persistence of its own. So `make serve` snapshots
the two resources that hold a user's work, the jobs table (every item: jobs, epochs,
compositions, idempotency keys) and the artifacts bucket (melodies, samples, compositions,
models), into `<home>/snapshot/`: every few seconds while it runs (so a `kill -9` loses at
most that much) and once more at its stop. The next start restores them before the stream's
event-source mapping exists, so the restored job items start no workflow.

What does not survive is what ran: executions and training processes. A job that was not final
when the stack went away ends as its status allows (`JobsRepository.end_interrupted`): FAILED
with a reason saying what happened and what to do, or STOPPED if the user had asked it to stop.
Nothing stays STARTING or TRAINING.

On disk: `items.jsonl` (one item a line, DynamoDB's typed JSON, so every number and type comes
back exact), `objects.json` (key → file, ETag, content type) and `objects/` (one file per
object, written once per ETag). Each of the two indexes is replaced atomically (a temporary file
renamed over it), so a snapshot killed half-way leaves the previous one whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from contracts import statuses, storage
from contracts.statuses import JobStatus
from contracts.timestamps import utc_timestamp

log = logging.getLogger(__name__)

ITEMS = "items.jsonl"
OBJECTS = "objects.json"
INTERVAL_S = 5.0


def interrupted_end(status: str) -> JobStatus | None:
    """The status a job left `status` by a restart ends in: FAILED where the contract allows it,
    else STOPPED (a job the user had asked to stop); None for a final status."""
    if JobStatus(status) in statuses.FINAL:
        return None
    return statuses.FAILED if statuses.may_move(status, statuses.FAILED) else statuses.STOPPED


def interrupted_reason(status: str) -> str:
    return (
        f"the local stack stopped while this job was {status} (its training does not survive a "
        "restart of `make serve`): submit it again with the same melody and hyperparameters"
    )


def end_interrupted(dynamodb: Any, table: str, job: dict[str, Any]) -> str | None:
    """End one restored job that was not final, conditionally on the status it was restored with
    (so nothing final is ever changed); returns the status written."""
    status = job["status"]["S"]
    final = interrupted_end(status)
    if final is None:
        return None
    update = "SET #s = :final, updated_at = :now"
    values = {":expected": {"S": status}, ":final": {"S": final.value}, ":now": {"S": utc_timestamp()}}
    if final == statuses.FAILED:
        update += ", failure_reason = :reason"
        values[":reason"] = {"S": interrupted_reason(status)}
    try:
        dynamodb.update_item(
            TableName=table,
            Key={storage.PARTITION_KEY: job[storage.PARTITION_KEY], storage.SORT_KEY: job[storage.SORT_KEY]},
            UpdateExpression=update,
            ConditionExpression="#s = :expected",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return None
    return final.value


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Snapshot:
    def __init__(self, directory: Path, table: str, bucket: str) -> None:
        self.directory = directory
        self.table = table
        self.bucket = bucket
        self._lock = threading.Lock()  # one save at a time (the timer's and the stop's)

    def save(self, dynamodb: Any, s3: Any) -> None:
        with self._lock:
            objects_dir = self.directory / "objects"
            objects_dir.mkdir(parents=True, exist_ok=True)
            items = [
                item
                for page in dynamodb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
                for item in page["Items"]
            ]
            before = self._objects()
            objects: dict[str, dict[str, str]] = {}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for entry in page.get("Contents", []):
                    key, etag = entry["Key"], entry["ETag"]
                    kept = before.get(key)
                    if kept and kept["etag"] == etag and (objects_dir / kept["file"]).exists():
                        objects[key] = kept
                        continue
                    with contextlib.suppress(s3.exceptions.NoSuchKey):  # deleted since the listing
                        reply = s3.get_object(Bucket=self.bucket, Key=key)
                        name = hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()
                        (objects_dir / name).write_bytes(reply["Body"].read())
                        content_type = reply.get("ContentType", "")
                        objects[key] = {"file": name, "etag": etag, "content_type": content_type}
            _replace(self.directory / ITEMS, "".join(json.dumps(item) + "\n" for item in items))
            _replace(self.directory / OBJECTS, json.dumps(objects))
            kept_files = {entry["file"] for entry in objects.values()}
            for path in objects_dir.iterdir():
                if path.name not in kept_files:
                    path.unlink(missing_ok=True)

    def restore(self, dynamodb: Any, s3: Any) -> tuple[int, int, list[dict[str, Any]]]:
        """Put the snapshot's items and objects back; returns the counts and the job items."""
        items_path = self.directory / ITEMS
        lines = items_path.read_text().splitlines() if items_path.exists() else []
        items = [json.loads(line) for line in lines]
        for start in range(0, len(items), 25):
            request = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            while request:
                reply = dynamodb.batch_write_item(RequestItems={self.table: request})
                request = reply.get("UnprocessedItems", {}).get(self.table, [])
        objects = self._objects()
        for key, entry in objects.items():
            path = self.directory / "objects" / entry["file"]
            if path.exists():
                extra = {"ContentType": entry["content_type"]} if entry["content_type"] else {}
                s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes(), **extra)
        jobs = [item for item in items if item.get(storage.ITEM_TYPE, {}).get("S") == storage.JOB_ITEM]
        return len(items), len(objects), jobs

    def _objects(self) -> dict[str, dict[str, str]]:
        path = self.directory / OBJECTS
        return json.loads(path.read_text()) if path.exists() else {}


class Saver:
    """Saves the snapshot every `interval_s` on a thread of its own until stopped."""

    def __init__(self, snapshot: Snapshot, clients: Any, interval_s: float = INTERVAL_S) -> None:
        self.snapshot = snapshot
        self.clients = clients  # () -> (dynamodb, s3)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.snapshot.save(*self.clients())
            except Exception as e:  # noqa: BLE001 - the next round tries again; the stop saves too
                log.warning("snapshot not saved: %s", e)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
