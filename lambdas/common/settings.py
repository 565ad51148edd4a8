"""Resource settings shared by the handlers, the CDK stack (`infra/`) and the local stack
(`opencomposer/local/`): one place for every name both sides must agree on.

Pure constants and tiny functions, no imports beyond the standard library, so the CDK app,
the local stack and a Lambda cold start can all import it for free.
"""

from __future__ import annotations

from urllib.parse import urlencode

# --- Jobs table -----------------------------------------------------------------------------
# One table holds every item of a job under the same partition key (single-table design), so
# DELETE /jobs/{id} is one Query plus a batch delete, and the metrics route is one Query.
PARTITION_KEY = "pk"
SORT_KEY = "sk"
# Lists a caller's jobs newest first: GET /jobs.
OWNER_INDEX = "by-owner"
OWNER_INDEX_PARTITION_KEY = "owner"
OWNER_INDEX_SORT_KEY = "created_at"
# The stream carries new images only: the stream handler needs the inserted job, nothing else.
STREAM_VIEW_TYPE = "NEW_IMAGE"

# Item types (attribute ITEM_TYPE): the stream filter passes only the INSERT of a "job".
ITEM_TYPE = "item_type"
JOB_ITEM = "job"
EPOCH_ITEM = "epoch"
JOB_SORT_KEY_VALUE = "JOB"


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def epoch_sk(epoch: int) -> str:
    """Zero-padded so a Query returns epochs in order."""
    return f"EPOCH#{epoch:06d}"


# The DynamoDB stream filter of the stream Lambda's event source (and what the handler
# re-checks locally, where moto stores filters but does not apply them).
STREAM_FILTER_PATTERN = {
    "eventName": ["INSERT"],
    "dynamodb": {"NewImage": {ITEM_TYPE: {"S": [JOB_ITEM]}}},
}

# --- Artifacts bucket layout ----------------------------------------------------------------
JOBS_PREFIX = "jobs/"


def job_prefix(job_id: str) -> str:
    return f"{JOBS_PREFIX}{job_id}/"


def melody_key(job_id: str) -> str:
    """The job's melody as MIDI: the training job's `melody` input channel."""
    return f"{job_prefix(job_id)}input/melody.mid"


def sample_key(job_id: str, epoch: int) -> str:
    """A per-epoch sample (lifecycle rules expire these)."""
    return f"{job_prefix(job_id)}samples/epoch-{epoch:04d}.mid"


def composition_key(job_id: str, name: str) -> str:
    return f"{job_prefix(job_id)}compositions/{name}.mid"


def model_output_prefix(job_id: str) -> str:
    """SageMaker's S3OutputPath: it writes <training job name>/output/model.tar.gz below it."""
    return f"{job_prefix(job_id)}model/"


def checkpoint_prefix(job_id: str) -> str:
    return f"{job_prefix(job_id)}checkpoints/"


SAMPLES_PREFIX_PATTERN = "jobs/*/samples/"  # documentation of the lifecycle rule's scope
# S3 lifecycle filters take a literal prefix, so `jobs/*/samples/` cannot be one: each per-epoch
# sample object carries this tag instead, and the bucket's lifecycle rule expires what has it.
SAMPLE_TAG_KEY = "opencomposer-object"
SAMPLE_TAG_VALUE = "sample"


def sample_tagging() -> str:
    """The sample tag as S3's `Tagging` argument (URL query form): put_object(..., Tagging=...)."""
    return urlencode({SAMPLE_TAG_KEY: SAMPLE_TAG_VALUE})


MELODY_CHANNEL = "melody"  # SageMaker input channel name: SM_CHANNEL_MELODY in the container

# --- Environment variable names -------------------------------------------------------------
# Lambda handlers
ENV_TABLE = "JOBS_TABLE_NAME"
ENV_BUCKET = "ARTIFACTS_BUCKET_NAME"
ENV_STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
ENV_TRAINING_JOB_PREFIX = "TRAINING_JOB_PREFIX"
# Training container (set through CreateTrainingJob's Environment in the state machine)
ENV_TRAINING_TABLE = "OPENCOMPOSER_JOBS_TABLE"
ENV_TRAINING_BUCKET = "OPENCOMPOSER_BUCKET"
ENV_TRAINING_JOB_ID = "OPENCOMPOSER_JOB_ID"

# --- Training jobs --------------------------------------------------------------------------
# SageMaker training job names: [a-zA-Z0-9-], at most 63 characters. The prefix scopes the
# state machine's IAM permissions; the job id (32 hex digits) follows it.
TRAINING_JOB_NAME_MAX = 63


def training_job_name(prefix: str, job_id: str) -> str:
    return f"{prefix}-{job_id}"


# --- Names of the handlers, as Lambda's `handler` setting --------------------------------------
API_HANDLER = "lambdas.api.handler.lambda_handler"
STREAM_HANDLER = "lambdas.stream.handler.lambda_handler"
# On AWS only: the stream trigger's dead-letter queue (failed stream batches) → one more start.
REDRIVE_HANDLER = "lambdas.redrive.handler.lambda_handler"

# --- Stack outputs (`cdk deploy` prints them; the CLI's `--api` takes the API URL) ---------------
OUTPUT_API_URL = "ApiUrl"
OUTPUT_BUCKET = "ArtifactsBucketName"
OUTPUT_TABLE = "JobsTableName"

# --- Local stack defaults -------------------------------------------------------------------
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
LOCAL_OWNER = "local-user"  # the one fixed caller identity of the local stack
DEFAULT_LOCAL_PORT = 8000
