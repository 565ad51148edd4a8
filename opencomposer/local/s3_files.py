"""S3 prefixes to folders and back, as SageMaker copies input channels, checkpoints and the model."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def download_prefix(s3: Any, uri: str, target: Path) -> int:
    """S3Prefix semantics: every object under the prefix, keeping the path below it."""
    bucket, prefix = split_s3(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(destination))
            count += 1
    return count


def upload_prefix(s3: Any, source: Path, uri: str) -> None:
    bucket, prefix = split_s3(uri)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        key = prefix.rstrip("/") + "/" + path.relative_to(source).as_posix()
        s3.upload_file(str(path), bucket, key.lstrip("/"))


def upload_tar(s3: Any, source: Path, uri: str) -> None:
    archive = source.parent / (Path(urlparse(uri).path).name)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    bucket, key = split_s3(uri)
    s3.upload_file(str(archive), bucket, key)
