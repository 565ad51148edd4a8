"""The API's response bodies as pydantic models: the job, a page of jobs, metrics, compositions,
the stop answer and the error. The api handler checks every body it sends against its route's
model (`lambdas/api/handler.py`), and the OpenAPI document (`lambdas/api/openapi.py`) takes its
response schemas from them, so the document describes what the handler sends.

Strict, and validated in JSON mode: a body passes only if its JSON is what the schema says (an
integer is a number, a string is no integer). A job is exactly the fields `models.job_to_api`
writes; metric maps take any metric name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import datasets as datasets_contract
from contracts import hyperparameters, names
from contracts.statuses import JobStatus
from lambdas.common.models import hyperparameters_model, not_null

_EXACT = ConfigDict(extra="forbid", strict=True)
_OPEN = ConfigDict(extra="allow", strict=True)

JobId = Annotated[str, Field(pattern=names.JOB_ID_PATTERN, description="32 lower-case hex digits")]
Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
        description="ISO-8601 in UTC with milliseconds (contracts/timestamps.py)",
        examples=["2026-11-27T15:00:00.000Z"],
    ),
]
# A metric's value; null where training produced no finite number.
MetricValue = float | None
Metrics = dict[str, MetricValue]


# A job's hyperparameters as they were stored: today's names and types, without today's ranges
# or the request's strictness, so a job stays readable whatever it was submitted with (a job
# from before a range changed; a malformed item that ended FAILED for exactly that reason).
class _StoredHyperparametersBase(BaseModel):
    model_config = ConfigDict(extra="allow")


def _stored(spec: hyperparameters.Hyperparameter) -> Any:
    return (spec.kind | None, Field(None, description=spec.help))


_StoredHyperparameters = hyperparameters_model(
    "StoredHyperparameters", _StoredHyperparametersBase,
    "The hyperparameters the job was submitted with, every default filled in.", _stored,
)
if TYPE_CHECKING:  # to mypy, a model built at run time is a variable, not a type
    StoredHyperparameters = _StoredHyperparametersBase
else:
    StoredHyperparameters = _StoredHyperparameters


class SampleMelody(BaseModel):
    """The job's melody is a shipped sample."""

    model_config = _EXACT
    sample: str


class UploadedMelody(BaseModel):
    """The job's melody is the caller's MIDI file (never echoed back): how many notes it has."""

    model_config = _EXACT
    upload: Literal[True]
    notes: Annotated[int, Field(ge=0)]


class Progress(BaseModel):
    """The latest epoch the training reported, of how many, with that epoch's metrics."""

    model_config = _EXACT
    epoch: Annotated[int, Field(ge=0)]
    epochs: Annotated[int, Field(ge=1)]
    metrics: Metrics


class Outputs(BaseModel):
    model_config = _EXACT
    model: str | None = Field(
        description="once the job completed: the API path that gives the trained model's URL "
                    "(`/jobs/{job_id}/model`)"
    )
    compositions: list[str] = Field(description="names of the final compositions")


class TrainingData(BaseModel):
    """What the job trains on: the dataset, its filter, and how many pieces and 4-bar windows
    the filter keeps. Counted from the dataset's index at submit; the training then writes what
    it actually trains on (its training split, the validation pieces held out)."""

    model_config = _EXACT
    dataset: str = Field(description=f"the dataset's id, or `{datasets_contract.BACH_DATASET_ID}`")
    tags: list[str] = Field(description="the filter: the pieces kept carry every one of these tags")
    pieces: Annotated[int, Field(ge=0)] | None = Field(description="pieces kept (null: not counted yet)")
    windows: Annotated[int, Field(ge=0)] | None = Field(description="4-bar training windows in them")


class Job(BaseModel):
    """A training job as the API shows it."""

    model_config = _EXACT
    job_id: JobId
    name: str | None
    status: JobStatus
    created_at: Timestamp
    updated_at: Timestamp
    hyperparameters: StoredHyperparameters
    melody: SampleMelody | UploadedMelody
    training_data: TrainingData | None = Field(
        description="what it trains on; null for a job submitted before datasets (the Bach chorales)"
    )
    progress: Progress | None
    status_message: str | None = Field(
        description="while STARTING, what the job waits for (training capacity: the local machine's "
        "training slots, or SageMaker's quota on AWS); else null"
    )
    failure_reason: str | None
    outputs: Outputs


class JobPage(BaseModel):
    """One page of the caller's jobs, newest first; `next_token` fetches the next (null: last page)."""

    model_config = _EXACT
    jobs: list[Job]
    next_token: str | None


class EpochMetrics(BaseModel):
    """One epoch's metrics: `epoch`, then each metric by name."""

    model_config = _OPEN
    __pydantic_extra__: dict[str, MetricValue]
    epoch: Annotated[int, Field(ge=0)]


class JobMetrics(BaseModel):
    model_config = _EXACT
    job_id: JobId
    epochs: list[EpochMetrics] = Field(description="every epoch reported so far, in order")
    reference: Metrics = Field(description="Bach's own value of each music metric (empty until known)")


CompositionId = Annotated[
    str,
    Field(
        pattern=f"({names.COMPOSITION_ID_PATTERN})|({names.TRAINING_OUTPUT_PATTERN})",
        description="20 hex digits for yours; `final` or `epoch-NNNN` for what the training wrote",
    ),
]


class _Listed(BaseModel):
    model_config = _EXACT
    composition_id: CompositionId
    job_id: JobId
    name: str
    url: str = Field(description="a presigned GET URL of the MIDI file")
    expires_at: Timestamp
    created_at: Timestamp


class TrainingOutput(_Listed):
    """A MIDI file the training wrote: its `final` composition, or an epoch's sample."""

    kind: Literal["training"]
    name: str = Field(description="`final`, or `epoch-NNNN` for a per-epoch sample")


class Voice(BaseModel):
    model_config = _EXACT
    program: Annotated[int, Field(ge=0, le=127, description="General MIDI program, 0-based")]
    name: str = Field(description="the track's name")


class Composition(_Listed):
    """A melody you had the job's model accompany (POST /jobs/{job_id}/compositions)."""

    kind: Literal["composition"]
    melody: SampleMelody | UploadedMelody
    seed: Annotated[int, Field(ge=0)]
    temperature: Annotated[float, Field(ge=0)]
    instruments: Annotated[list[Voice], Field(min_length=4, max_length=4)] = Field(
        description="melody, alto, tenor, bass"
    )
    bars: Annotated[int, Field(ge=1)]
    metrics: Metrics = Field(description="the training's music metrics on this composition")
    reference: Metrics = Field(description="Bach's own value of each metric, as the job's metrics show")


class CompositionPage(BaseModel):
    """One page of a job's MIDI, newest first: your compositions, then the training's final
    composition and its epoch samples. `next_token` fetches the next page (null: last page)."""

    model_config = _EXACT
    compositions: list[Annotated[Composition | TrainingOutput, Field(discriminator="kind")]]
    next_token: str | None


class ModelLink(BaseModel):
    """Where to fetch the job's trained model: `model.tar.gz`, holding `model.pt`
    (`python -m gan.generate model.pt melody.mid out.mid` composes with it offline)."""

    model_config = _EXACT
    job_id: JobId
    url: str = Field(description="a presigned GET URL of model.tar.gz")
    expires_at: Timestamp


class SampleMelodyInfo(BaseModel):
    model_config = _EXACT
    name: str = Field(description="what `melody.sample` takes")
    title: str
    bars: Annotated[int, Field(ge=1)] = Field(description="whole bars, a pickup counted as one")
    meter: str = Field(description="the time signature, e.g. `3/4`")
    key: str = Field(description="e.g. `C major`, `G minor`")
    tempo_bpm: Annotated[int, Field(ge=1)]


class Melodies(BaseModel):
    model_config = _EXACT
    melodies: list[SampleMelodyInfo]


class StopAnswer(BaseModel):
    model_config = _EXACT
    job_id: JobId
    status: Literal[JobStatus.STOPPING]


class ErrorDetail(BaseModel):
    model_config = _EXACT
    code: str = Field(description="a stable machine-readable code, e.g. `invalid_field`, `job_not_found`")
    message: str = Field(description="what went wrong, for a person")
    # Absent (never null) unless one field is at fault.
    field: str | None = Field(
        default=None,
        description="the field at fault, dotted (`hyperparameters.epochs`), or a header's name",
        json_schema_extra=not_null,
    )


class Error(BaseModel):
    """Every error answer: `{"error": {"code", "message", "field"}}`."""

    model_config = _EXACT
    error: ErrorDetail


class OpenApiDocument(BaseModel):
    """This document (GET /openapi.json)."""

    model_config = _OPEN
    openapi: Literal["3.1.0"]
    info: dict[str, object]
    paths: dict[str, object]


# Each route's success body, by (method, path) as in `contracts.routes`; None: no body (204).
RESPONSE_BODIES: dict[tuple[str, str], type[BaseModel] | None] = {
    ("POST", "/jobs"): Job,
    ("GET", "/jobs"): JobPage,
    ("GET", "/jobs/{job_id}"): Job,
    ("GET", "/jobs/{job_id}/metrics"): JobMetrics,
    ("GET", "/jobs/{job_id}/model"): ModelLink,
    ("GET", "/jobs/{job_id}/compositions"): CompositionPage,
    ("POST", "/jobs/{job_id}/compositions"): Composition,
    ("DELETE", "/jobs/{job_id}/compositions/{composition_id}"): None,
    ("POST", "/jobs/{job_id}/stop"): StopAnswer,
    ("DELETE", "/jobs/{job_id}"): None,
    ("GET", "/melodies"): Melodies,
    ("GET", "/openapi.json"): OpenApiDocument,
}


# --- datasets (contracts/datasets.py) ---------------------------------------------------------
DatasetId = Annotated[
    str,
    Field(pattern=f"({datasets_contract.DATASET_ID_PATTERN})|(^{datasets_contract.BACH_DATASET_ID}$)",
          description=f"32 lower-case hex digits, or `{datasets_contract.BACH_DATASET_ID}` "
                      "(the built-in one)"),
]


class DatasetUploadForm(BaseModel):
    """A presigned S3 POST: send the zip as the `file` field of a multipart/form-data POST to
    `url`, after every one of `fields`. S3 refuses a zip over `max_bytes` (and stores nothing)."""

    model_config = _EXACT
    url: str
    fields: dict[str, str]
    expires_at: Timestamp
    max_bytes: Annotated[int, Field(ge=1)]


class CreatedDataset(BaseModel):
    model_config = _EXACT
    dataset_id: DatasetId
    status: Literal["WAITING_FOR_UPLOAD"]
    upload: DatasetUploadForm


class RejectedFile(BaseModel):
    model_config = _EXACT
    file: str = Field(description="the member's path in the zip")
    reason: str = Field(description="why it cannot serve, for a person to act on")


class DatasetSummary(BaseModel):
    """What the build made of the zip (the full report's numbers; `rejected` cut to its first
    entries, `rejected_count` saying how many there were)."""

    model_config = _EXACT
    files: Annotated[int, Field(ge=0)] = Field(description="members of the zip that are files")
    accepted: Annotated[int, Field(ge=0)] = Field(description="files that became pieces")
    rejected: list[RejectedFile]
    rejected_count: Annotated[int, Field(ge=0)]
    pieces: Annotated[int, Field(ge=0)]
    bars: Annotated[int, Field(ge=0)]
    windows: Annotated[int, Field(ge=0)] = Field(description="4-bar training windows")
    tags: dict[str, Annotated[int, Field(ge=0)]] = Field(description="each tag with the pieces carrying it")


class ReportLink(BaseModel):
    model_config = _EXACT
    url: str = Field(description="a presigned GET URL of the full build report (JSON)")
    expires_at: Timestamp


class Dataset(BaseModel):
    """A dataset as the API shows it."""

    model_config = _EXACT
    dataset_id: DatasetId
    name: str | None
    status: Literal[datasets_contract.DATASET_STATUSES]  # type: ignore[valid-type]
    builtin: bool = Field(description=f"the built-in `{datasets_contract.BACH_DATASET_ID}` (read-only)")
    created_at: Timestamp | None
    updated_at: Timestamp | None
    summary: DatasetSummary | None = Field(description="once READY (or for the built-in one)")
    failure_reason: str | None
    report: ReportLink | None = Field(description="once READY: the full report, every file")


class DatasetPage(BaseModel):
    """One page of the caller's datasets, newest first; `next_token` fetches the next (null: last page)."""

    model_config = _EXACT
    datasets: list[Dataset]
    next_token: str | None


RESPONSE_BODIES.update({
    ("POST", "/datasets"): CreatedDataset,
    ("GET", "/datasets"): DatasetPage,
    ("GET", "/datasets/{dataset_id}"): Dataset,
    ("DELETE", "/datasets/{dataset_id}"): None,
})
