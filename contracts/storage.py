"""Where a job's data lives: the jobs table's keys, items and stream, the artifacts bucket's
layout. The CDK stack and the local stack create both from these; the handlers and the training
container read and write through them."""

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
IDEMPOTENCY_ITEM = "idempotency"
COMPOSITION_ITEM = "composition"
JOB_SORT_KEY_VALUE = "JOB"
# A job item's note on what a STARTING job waits for (the local runner: training capacity);
# the API shows it while the job is STARTING only.
STATUS_MESSAGE = "status_message"
EPOCH_SORT_KEY_PREFIX = "EPOCH#"
# A user's composition lives under its job's partition, so deleting the job deletes it; its id
# starts with its creation time (`names.new_composition_id`), so a descending Query of this
# prefix lists a job's compositions newest first.
COMPOSITION_SORT_KEY_PREFIX = "COMPOSITION#"


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def job_key(job_id: str) -> dict[str, str]:
    """The job item's primary key."""
    return {PARTITION_KEY: job_pk(job_id), SORT_KEY: JOB_SORT_KEY_VALUE}


def epoch_sk(epoch: int) -> str:
    """Zero-padded so a Query returns epochs in order."""
    return f"{EPOCH_SORT_KEY_PREFIX}{epoch:06d}"


def composition_sk(composition_id: str) -> str:
    return f"{COMPOSITION_SORT_KEY_PREFIX}{composition_id}"


def composition_item_key(job_id: str, composition_id: str) -> dict[str, str]:
    """A user's composition item's primary key."""
    return {PARTITION_KEY: job_pk(job_id), SORT_KEY: composition_sk(composition_id)}


def idempotency_key(owner: str, key: str) -> dict[str, str]:
    """Not under JOB#: the item is no job, so neither the stream filter nor a job query sees it."""
    return {PARTITION_KEY: f"IDEMPOTENCY#{owner}#{key}", SORT_KEY: "IDEMPOTENCY"}


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


def samples_prefix(job_id: str) -> str:
    return f"{job_prefix(job_id)}samples/"


def sample_key(job_id: str, epoch: int) -> str:
    """A per-epoch sample (the lifecycle rule expires these)."""
    return f"{samples_prefix(job_id)}epoch-{epoch:04d}.mid"


def compositions_prefix(job_id: str) -> str:
    """The compositions the training wrote."""
    return f"{job_prefix(job_id)}compositions/"


def composition_key(job_id: str, name: str) -> str:
    """A composition the training wrote (`final`)."""
    return f"{compositions_prefix(job_id)}{name}.mid"


def composed_prefix(job_id: str) -> str:
    """The compositions users made with the job's model (POST /jobs/{id}/compositions)."""
    return f"{job_prefix(job_id)}composed/"


def composed_key(job_id: str, composition_id: str) -> str:
    return f"{composed_prefix(job_id)}{composition_id}.mid"


def model_output_prefix(job_id: str) -> str:
    """SageMaker's S3OutputPath: it writes <training job name>/output/model.tar.gz below it."""
    return f"{job_prefix(job_id)}model/"


def checkpoint_prefix(job_id: str) -> str:
    return f"{job_prefix(job_id)}checkpoints/"


# S3 lifecycle filters take a literal prefix, so `jobs/*/samples/` cannot be one: each per-epoch
# sample object carries this tag instead, and the bucket's lifecycle rule expires what has it.
SAMPLE_TAG_KEY = "opencomposer-object"
SAMPLE_TAG_VALUE = "sample"
MIDI_CONTENT_TYPE = "audio/midi"


def sample_tagging() -> str:
    """The sample tag as S3's `Tagging` argument (URL query form): put_object(..., Tagging=...)."""
    return urlencode({SAMPLE_TAG_KEY: SAMPLE_TAG_VALUE})
