"""The local stack's snapshot: the table and the bucket back exactly, objects copied once per
version, deleted ones dropped, the previous snapshot whole until a new one is complete."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from contracts import storage
from opencomposer.local.resources import LocalNames, table_spec
from opencomposer.local.snapshot import ITEMS, OBJECTS, Snapshot


@pytest.fixture()
def aws() -> Iterator[tuple[Any, Any]]:
    from moto import mock_aws

    with mock_aws():
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        dynamodb.create_table(**table_spec(LocalNames()))
        s3.create_bucket(Bucket="art")
        yield dynamodb, s3


def _fresh(dynamodb: Any, s3: Any) -> None:
    dynamodb.delete_table(TableName=LocalNames().table)
    dynamodb.create_table(**table_spec(LocalNames()))
    for entry in s3.list_objects_v2(Bucket="art").get("Contents", []):
        s3.delete_object(Bucket="art", Key=entry["Key"])


def test_items_and_objects_come_back_exactly(aws: tuple[Any, Any], tmp_path: Path) -> None:
    dynamodb, s3 = aws
    table = boto3.resource("dynamodb").Table(LocalNames().table)
    item = {**storage.job_key("j1"), storage.ITEM_TYPE: storage.JOB_ITEM, "status": "COMPLETED",
            "progress": {"epoch": 3, "metrics": {"similarity": Decimal("0.781234567890123")}},
            "compositions": ["final"], "flag": True}  # fmt: skip
    table.put_item(Item=item)
    s3.put_object(Bucket="art", Key="jobs/j1/final.mid", Body=b"MThd...", ContentType="audio/midi")
    snapshot = Snapshot(tmp_path, LocalNames().table, "art")

    snapshot.save(dynamodb, s3)
    _fresh(dynamodb, s3)
    items, objects, jobs = snapshot.restore(dynamodb, s3)

    assert (items, objects, len(jobs)) == (1, 1, 1)
    assert table.get_item(Key=storage.job_key("j1"))["Item"] == item
    reply = s3.get_object(Bucket="art", Key="jobs/j1/final.mid")
    assert reply["Body"].read() == b"MThd..." and reply["ContentType"] == "audio/midi"


def test_objects_are_copied_once_per_version_and_deleted_ones_dropped(
    aws: tuple[Any, Any], tmp_path: Path
) -> None:
    dynamodb, s3 = aws
    snapshot = Snapshot(tmp_path, LocalNames().table, "art")
    s3.put_object(Bucket="art", Key="a", Body=b"1")
    s3.put_object(Bucket="art", Key="b", Body=b"2")
    snapshot.save(dynamodb, s3)
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "objects").iterdir()}

    s3.delete_object(Bucket="art", Key="b")
    s3.put_object(Bucket="art", Key="c", Body=b"3")
    snapshot.save(dynamodb, s3)

    now = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "objects").iterdir()}
    assert len(now) == 2
    kept = set(files) & set(now)
    assert len(kept) == 1 and all(files[n] == now[n] for n in kept), "an unchanged object was copied again"
    assert (tmp_path / ITEMS).exists() and (tmp_path / OBJECTS).exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_no_snapshot_restores_nothing(aws: tuple[Any, Any], tmp_path: Path) -> None:
    assert Snapshot(tmp_path / "none", LocalNames().table, "art").restore(*aws) == (0, 0, [])
