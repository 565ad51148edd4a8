"""The Jobs table's stream, read back by sequence number (the redrive's failed batches)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.dal.aws import client, error_code, error_message, raise_common
from lambdas.common.errors import RecordsGone


class StreamRecords:
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
            if error_code(e) in self.GONE_ERRORS:
                raise RecordsGone(f"{error_code(e)}: {error_message(e)}") from e
            raise_common(e)
        return records
