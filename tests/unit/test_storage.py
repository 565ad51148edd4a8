"""The shared storage layout (contracts/storage.py), checked where it meets AWS."""

from __future__ import annotations

import boto3

from contracts import storage


def test_a_sample_written_with_the_sample_tagging_carries_the_tag_the_lifecycle_rule_expires() -> None:
    from moto import mock_aws  # here, so the other unit tests do not pay for importing moto

    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts")
        key = storage.sample_key("0" * 32, 5)

        # As the training container writes each per-epoch sample
        s3.put_object(Bucket="artifacts", Key=key, Body=b"MThd", Tagging=storage.sample_tagging())

        # The infra tests check that the bucket's lifecycle rule filters on exactly this tag.
        tags = s3.get_object_tagging(Bucket="artifacts", Key=key)["TagSet"]
        assert tags == [{"Key": storage.SAMPLE_TAG_KEY, "Value": storage.SAMPLE_TAG_VALUE}]
        assert storage.sample_tagging() == "opencomposer-object=sample"
