"""The artifacts bucket: melodies, per-epoch samples, compositions, models and checkpoints, all
under `jobs/<job_id>/` (layout in `contracts.storage`)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts import storage

SAMPLE_EXPIRATION = Duration.days(30)


class ArtifactsBucket(Construct):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        # Server access logs for the artifacts bucket; it cannot log into itself.
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.bucket = s3.Bucket(
            self, "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # SSE-S3 rather than KMS: presigned GET URLs then need no kms:Decrypt by the signer.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-epoch-samples",
                    # The training container tags each sample object (storage.sample_tagging()).
                    tag_filters={storage.SAMPLE_TAG_KEY: storage.SAMPLE_TAG_VALUE},
                    expiration=SAMPLE_EXPIRATION,
                ),
                # Interrupted model uploads (model.tar.gz is multipart) otherwise cost forever.
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    prefix=storage.JOBS_PREFIX,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            # `make destroy` removes everything, jobs' MIDI included: download what you keep first.
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
