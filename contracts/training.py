"""The training container's side of the contract: what the state machine's CreateTrainingJob
gives it beyond SageMaker's own variables, and its input channel."""

from __future__ import annotations

# The job's table, bucket and id, set through CreateTrainingJob's `Environment`: with all three
# the container reports progress to DynamoDB and writes its MIDI to S3.
ENV_TABLE = "OPENCOMPOSER_JOBS_TABLE"
ENV_BUCKET = "OPENCOMPOSER_BUCKET"
ENV_JOB_ID = "OPENCOMPOSER_JOB_ID"
REPORTING_ENVIRONMENT = (ENV_TABLE, ENV_BUCKET, ENV_JOB_ID)
# SageMaker sets no region variable in a training container (what it sets is its own: SM_*,
# TRAINING_JOB_NAME, TRAINING_JOB_ARN), and the AWS SDK needs one to reach DynamoDB and S3: the
# job's `Environment` gives the stack's region under both names SDKs read (botocore reads
# AWS_DEFAULT_REGION, most other SDKs AWS_REGION). The local runner sets neither itself.
ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"
REGION_ENVIRONMENT = (ENV_REGION, ENV_DEFAULT_REGION)
# Everything CreateTrainingJob's `Environment` sets.
JOB_ENVIRONMENT = REPORTING_ENVIRONMENT + REGION_ENVIRONMENT
# The definition's placeholder for the region: CloudFormation's definition substitutions fill no
# pseudo parameter by themselves (`${AWS::Region}` would stay text), so the stack fills this one.
REGION_PLACEHOLDER = "AwsRegion"

# SageMaker input channel of the job's melody: SM_CHANNEL_MELODY in the container.
MELODY_CHANNEL = "melody"
# SageMaker keeps at most this much of /opt/ml/output/failure as the job's FailureReason.
FAILURE_REASON_MAX = 1024
# What the container writes to SM_MODEL_DIR: SageMaker packs that folder into `model.tar.gz`
# under the job's `storage.model_output_prefix`; the compose function and `gan.generate` load
# the generator from this file in it.
MODEL_FILE = "model.pt"
