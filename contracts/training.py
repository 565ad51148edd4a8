"""The training container's side of the contract: what the state machine's CreateTrainingJob
gives it beyond SageMaker's own variables, and its input channel."""

from __future__ import annotations

# The job's table, bucket and id, set through CreateTrainingJob's `Environment`: with all three
# the container reports progress to DynamoDB and writes its MIDI to S3.
ENV_TABLE = "OPENCOMPOSER_JOBS_TABLE"
ENV_BUCKET = "OPENCOMPOSER_BUCKET"
ENV_JOB_ID = "OPENCOMPOSER_JOB_ID"
REPORTING_ENVIRONMENT = (ENV_TABLE, ENV_BUCKET, ENV_JOB_ID)

# SageMaker input channel of the job's melody: SM_CHANNEL_MELODY in the container.
MELODY_CHANNEL = "melody"
# SageMaker keeps at most this much of /opt/ml/output/failure as the job's FailureReason.
FAILURE_REASON_MAX = 1024
