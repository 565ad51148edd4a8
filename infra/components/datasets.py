"""A dataset's build (contracts/datasets.py): the datasets function (the compose image, its own
command) started by the artifacts bucket's ObjectCreated notifications for the upload keys, with
exactly the grants its code uses."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from contracts import datasets, functions
from infra.components.functions import ImageFunction

# `contracts.datasets.upload_key` as a notification filter and as IAM resources: every upload
# key is `datasets/<id>/upload/collection.zip`, and no other object ends so under `datasets/`.
UPLOAD_SUFFIX = datasets.upload_key("{id}").rsplit("/", 1)[-1]


def every_dataset(key_of: str) -> str:
    """One object of every dataset as an IAM resource pattern: `key_of` is a
    `contracts.datasets` key function's name (`upload_key`), given `*` for the id."""
    return str(getattr(datasets, key_of)("*"))


class DatasetBuilder(Construct):
    def __init__(self, scope: Construct, id: str, *, table: dynamodb.ITable, bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        environment = {functions.ENV_TABLE: table.table_name, functions.ENV_BUCKET: bucket.bucket_name}
        self.builder = ImageFunction(self, "Builder", spec=functions.DATASETS, environment=environment)
        fn = self.builder.function
        self._grant(fn, table, bucket)
        # S3 invokes the function asynchronously (Lambda then retries a failed build twice; the
        # handler's conditional start makes a retry of a finished build a no-op).
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(fn),
            s3.NotificationKeyFilter(prefix=datasets.DATASETS_PREFIX, suffix=UPLOAD_SUFFIX))

    @staticmethod
    def _grant(fn: iam.IGrantable, table: dynamodb.ITable, bucket: s3.IBucket) -> None:
        """Exactly what lambdas/datasets/handler.py calls: the dataset item read and moved
        through its statuses; the upload read then deleted; the built pieces, index and report
        written. Nothing of any job."""
        iam.Grant.add_to_principal(grantee=fn, actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                                   resource_arns=[table.table_arn])
        upload = bucket.arn_for_objects(every_dataset("upload_key"))
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:GetObject", "s3:DeleteObject"],
                                   resource_arns=[upload])
        iam.Grant.add_to_principal(
            grantee=fn, actions=["s3:PutObject"],
            resource_arns=[bucket.arn_for_objects(f"{every_dataset('built_prefix')}*"),
                           bucket.arn_for_objects(every_dataset("report_key"))])
