"""The jobs table: every item of a job under one partition key, a GSI for a caller's jobs (and
one for their datasets), and the stream that starts training (keys, indexes and stream view from
`contracts.storage` and `contracts.datasets`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from contracts import datasets, storage


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class JobsTable(Construct):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self, "Table",
            partition_key=_string_key(storage.PARTITION_KEY),
            sort_key=_string_key(storage.SORT_KEY),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType(storage.STREAM_VIEW_TYPE),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.table.add_global_secondary_index(
            index_name=storage.OWNER_INDEX,
            partition_key=_string_key(storage.OWNER_INDEX_PARTITION_KEY),
            sort_key=_string_key(storage.OWNER_INDEX_SORT_KEY),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # GET /datasets: sparse (only dataset items carry its partition key; contracts.datasets).
        self.table.add_global_secondary_index(
            index_name=datasets.DATASET_OWNER_INDEX,
            partition_key=_string_key(datasets.DATASET_OWNER_ATTRIBUTE),
            sort_key=_string_key(datasets.DATASET_OWNER_INDEX_SORT_KEY),
            projection_type=dynamodb.ProjectionType.ALL,
        )
