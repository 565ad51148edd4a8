"""The POST /jobs request schema with its defaults, the GET /jobs query, and the job's JSON.

Request models forbid unknown fields and are strict about types (a string "20" is not an
epoch count), so every malformed request is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from contracts import hyperparameters, names
from contracts.statuses import JobStatus
from contracts.timestamps import iso_utc
from lambdas.common import melodies

_STRICT = ConfigDict(extra="forbid", strict=True)
Model = TypeVar("Model", bound=BaseModel)


def not_null(schema: dict[str, Any]) -> None:
    """The schema of an optional field without its null (and its default, None): "not given"."""
    options = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    if schema.get("default", ...) is None:
        del schema["default"]


class _HyperparametersBase(BaseModel):
    model_config = _STRICT

    def as_sagemaker(self) -> dict[str, str]:
        return hyperparameters.as_sagemaker(self.model_dump())


def _field(spec: hyperparameters.Hyperparameter) -> Any:
    bounds: dict[str, Any] = dict(spec.bounds())
    return spec.kind, Field(default=spec.default, description=spec.help, **bounds)


def hyperparameters_model(
    name: str, base: type[Model], doc: str, field: Callable[[hyperparameters.Hyperparameter], Any]
) -> type[Model]:
    """A model with one field per `contracts.hyperparameters.HYPERPARAMETERS`, in its order (the
    request's hash for Idempotency-Key follows it), each made by `field`."""
    return create_model(
        name, __base__=base, __doc__=doc, __module__=base.__module__,
        **{spec.name: field(spec) for spec in hyperparameters.HYPERPARAMETERS},
    )


# Type, range, default, and help as the field's description.
_Hyperparameters = hyperparameters_model(
    "Hyperparameters", _HyperparametersBase,
    "What a training job may set; each one left out takes its default.", _field,
)
if TYPE_CHECKING:  # to mypy, a model built at run time is a variable, not a type
    Hyperparameters = _HyperparametersBase
else:
    Hyperparameters = _Hyperparameters


class MelodyRequest(BaseModel):
    """Exactly one of a shipped sample or a user's MIDI file (base64)."""

    # The schema says "exactly one" too (the OpenAPI document); a null is accepted as "not
    # given" but left out of the schema, so that its `oneOf` holds.
    model_config = ConfigDict(
        **_STRICT, json_schema_extra={"oneOf": [{"required": ["sample"]}, {"required": ["midi_base64"]}]}
    )

    sample: Literal[tuple(melodies.SAMPLES)] | None = Field(  # type: ignore[valid-type]
        default=None, description="a shipped melody", json_schema_extra=not_null
    )
    midi_base64: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="your MIDI file, base64: its first track with notes is the melody",
        json_schema_extra=not_null,
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> MelodyRequest:
        if (self.sample is None) == (self.midi_base64 is None):
            raise ValueError("give exactly one of 'sample' or 'midi_base64'")
        return self


class CreateJobRequest(BaseModel):
    model_config = _STRICT

    name: Annotated[
        str, Field(min_length=1, max_length=names.JOB_NAME_MAX, pattern=names.JOB_NAME_PATTERN)
    ] | None = None
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


def job_to_api(item: dict[str, Any]) -> dict[str, Any]:
    """The job as the API shows it; internal attributes (keys, owner) stay inside."""
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
