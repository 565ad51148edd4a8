"""The artifacts bucket: the job's melody and compositions in, its model read, presigned GETs of its
MIDI and model out, a job's prefix deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from contracts import storage
from contracts.timestamps import utc_timestamp
from lambdas.common.dal.aws import client, error_code, raise_common

PRESIGNED_URL_SECONDS = 3600


class ArtifactsStore:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._s3 = client("s3")

    @property
    def bucket(self) -> str:
        return self._bucket

    def put(self, key: str, body: bytes, content_type: str = storage.MIDI_CONTENT_TYPE) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as e:
            raise_common(e)

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as e:
            raise_common(e)

    def get(self, key: str, denied_is_missing: bool = False) -> bytes | None:
        """The object's bytes; None when there is none. A role without s3:ListBucket (the compose
        function's) hears AccessDenied for a missing key, never NoSuchKey: `denied_is_missing`."""
        missing = ("NoSuchKey", "404", *(("AccessDenied", "403") if denied_is_missing else ()))
        try:
            return bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())
        except ClientError as e:
            if error_code(e) in missing:
                return None
            raise_common(e)

    def objects(self, prefix: str) -> list[tuple[str, datetime]]:
        """Every object under the prefix: its key and when it was written."""
        found: list[tuple[str, datetime]] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
            for page in pages:
                found.extend((obj["Key"], obj["LastModified"]) for obj in page.get("Contents", []))
        except ClientError as e:
            raise_common(e)
        return found

    def keys(self, prefix: str) -> list[str]:
        return [key for key, _ in self.objects(prefix)]

    def delete_prefix(self, prefix: str) -> None:
        keys = self.keys(prefix)
        try:
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                chunk = [{"Key": key} for key in keys[start : start + 1000]]
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True})
        except ClientError as e:
            raise_common(e)

    def presigned_get(self, key: str) -> tuple[str, str]:
        """A GET URL for one object and when it expires (ISO-8601 UTC)."""
        url = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
        )
        expires = datetime.now(UTC) + timedelta(seconds=PRESIGNED_URL_SECONDS)
        return url, utc_timestamp(expires)
