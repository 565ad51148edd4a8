"""The job: its statuses, the POST /jobs request schema with its defaults, and the job's JSON.

Request models forbid unknown fields and are strict about types (a string "20" is not an
epoch count), so every malformed request is a 400 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lambdas.common import melodies


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    STARTING = "STARTING"
    TRAINING = "TRAINING"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED})
# POST /jobs/{id}/stop moves a job to STOPPING only from these (the state machine finishes it).
STOPPABLE_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.STARTING, JobStatus.TRAINING})

_STRICT = ConfigDict(extra="forbid", strict=True)


class Hyperparameters(BaseModel):
    """DESIGN.md's ranges. The defaults train a useful model in a few minutes on a laptop CPU;
    they mirror the training package's own defaults (tests/unit/test_api_models.py checks)."""

    model_config = _STRICT

    epochs: Annotated[int, Field(ge=1, le=10_000)] = 20
    learning_rate: Annotated[float, Field(gt=0, lt=1)] = 0.001
    update_ratio: Annotated[int, Field(ge=1, le=20)] = 5
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 64
    seed: Annotated[int, Field(ge=0, le=2**63)] = 0

    def as_sagemaker(self) -> dict[str, str]:
        """SageMaker passes every hyperparameter as a string."""
        return {name: str(value) for name, value in self.model_dump().items()}


class MelodyRequest(BaseModel):
    """Exactly one of a shipped sample or a user's MIDI file (base64)."""

    model_config = _STRICT

    sample: Literal[tuple(melodies.SAMPLES)] | None = None  # type: ignore[valid-type]
    midi_base64: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MelodyRequest:
        if (self.sample is None) == (self.midi_base64 is None):
            raise ValueError("give exactly one of 'sample' or 'midi_base64'")
        return self


class CreateJobRequest(BaseModel):
    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _-]+$")] | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    melody: MelodyRequest = Field(default_factory=lambda: MelodyRequest(sample=melodies.DEFAULT_SAMPLE))


class ListJobsQuery(BaseModel):
    """GET /jobs query string (values arrive as strings, hence lax parsing of `limit`)."""

    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    next_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to JSON numbers (int when whole)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def utc_timestamp(moment: datetime | None = None) -> str:
    """The API's one timestamp form: `2026-11-27T15:00:00.000Z` (now, unless given)."""
    moment = datetime.now(UTC) if moment is None else moment
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_utc(timestamp: str) -> str:
    """A stored timestamp in the API's form, whoever wrote it: the handlers, the container, or
    the state machine's `$$.State.EnteredTime` (which moto writes as `...+00:00` with
    microseconds)."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return utc_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def job_to_api(item: dict[str, Any]) -> dict[str, Any]:
    """The job as DESIGN.md shows it; internal attributes (keys, owner) stay inside."""
    item = plain(item)
    return {
        "job_id": item["job_id"],
        "name": item.get("name"),
        "status": item["status"],
        "created_at": iso_utc(item["created_at"]),
        "updated_at": iso_utc(item["updated_at"]),
        "hyperparameters": item["hyperparameters"],
        "melody": item["melody"],
        "progress": item.get("progress"),
        "failure_reason": item.get("failure_reason"),
        "outputs": {"model": item.get("model_artifact"), "compositions": item.get("compositions", [])},
    }
