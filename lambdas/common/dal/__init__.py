"""Data access: the only code of the Lambda functions that talks to AWS.

One module per resource (the Jobs table, its stream, the artifacts bucket, Step Functions,
SageMaker), each turning the ClientError codes of its calls into domain errors
(`lambdas/common/errors.py`), so the layers above never inspect botocore responses; `aws`
holds the cached client factory and the handling every resource shares.
"""

from lambdas.common.dal.artifacts import ArtifactsStore
from lambdas.common.dal.aws import client, table
from lambdas.common.dal.compositions import CompositionsRepository
from lambdas.common.dal.executions import Executions
from lambdas.common.dal.jobs import JobsRepository
from lambdas.common.dal.stream_records import StreamRecords
from lambdas.common.dal.training import Training

__all__ = [
    "ArtifactsStore", "CompositionsRepository", "Executions", "JobsRepository", "StreamRecords", "Training",
    "client", "table",
]
