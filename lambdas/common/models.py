"""The POST /jobs request schema with its defaults, the GET /jobs query, and the job's JSON.

Request models forbid unknown fields and are strict about types (a string "20" is not an
epoch count), so every malformed request is a 400 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from contracts import compositions, hyperparameters, names, routes, statuses, storage
from contracts import datasets as datasets_contract
from contracts import instruments as instrument_presets
from contracts.statuses import JobStatus
from contracts.timestamps import iso_utc
from lambdas.common import melodies
from lambdas.common.errors import InvalidFieldError

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
    if spec.choices:  # a Literal: its refusal names the choices ("Input should be 'small' or 'large'")
        return Literal[spec.choices], Field(default=spec.default, description=spec.help)
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


# `dataset` in POST /jobs: a user's dataset id, or the built-in chorales'.
_DATASET_REFERENCE = (
    f"^(?:{datasets_contract.BACH_DATASET_ID}|{datasets_contract.DATASET_ID_PATTERN[1:-1]})$"
)


class CreateJobRequest(BaseModel):
    model_config = _STRICT

    name: Annotated[
        str, Field(min_length=1, max_length=names.JOB_NAME_MAX, pattern=names.JOB_NAME_PATTERN)
    ] | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    melody: MelodyRequest = Field(default_factory=lambda: MelodyRequest(sample=melodies.DEFAULT_SAMPLE))
    # What it trains on: a dataset (yours, READY, or the built-in chorales) filtered by tags;
    # whether the filter leaves enough is checked against the dataset's index
    # (`lambdas/common/datasets.py`), after this model.
    dataset: str = Field(
        default=datasets_contract.BACH_DATASET_ID,
        description=f"a dataset id of yours (POST /datasets), or `{datasets_contract.BACH_DATASET_ID}`",
        json_schema_extra={"pattern": _DATASET_REFERENCE},
    )
    # The pattern and uniqueness are the schema's word for what `_distinct_tags` checks.
    tags: Annotated[
        list[Annotated[str, Field(json_schema_extra={"pattern": datasets_contract.TAG_PATTERN})]],
        Field(max_length=datasets_contract.MAX_JOB_TAGS, json_schema_extra={"uniqueItems": True}),
    ] = Field(
        default_factory=list,
        description="train on the pieces that carry every one of these tags (`mode:minor`, "
                    "`meter:3/4`, `key:g-minor`, or a folder name of your zip); none: every piece",
    )

    @field_validator("dataset")
    @classmethod
    def _dataset_reference(cls, value: str) -> str:
        if not re.match(_DATASET_REFERENCE, value):
            raise ValueError(f"a dataset id (32 lower-case hex digits) or "
                             f"{datasets_contract.BACH_DATASET_ID!r}, not {value[:80]!r}")
        return value

    @field_validator("tags")
    @classmethod
    def _distinct_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not datasets_contract.is_tag(tag):
                raise ValueError(f"{tag[:80]!r} is not a tag: lower-case letters, digits and # : / _ . + - "
                                 "or spaces, at most 64, starting with a letter, a digit or #")
        if repeated := sorted({tag for tag in value if value.count(tag) > 1}):
            raise ValueError(f"{', '.join(map(repr, repeated))} given more than once")
        return value


def _instruments_schema(schema: dict[str, Any]) -> None:
    """What `contracts.instruments.resolve` takes, as JSON Schema: a preset, or four voices."""
    program = {"type": "integer", "minimum": 0, "maximum": 127}
    voice = {
        "type": "object",
        "properties": {"program": program, "name": {"type": "string", "minLength": 1,
                                                      "maxLength": instrument_presets.NAME_MAX}},
        "required": ["program"],
        "additionalProperties": False,
    }
    schema.clear()
    schema.update({
        "description": "a preset, or the four voices (melody, alto, tenor, bass), each a General MIDI "
                       "program (0-based) or {program, name}; default the choir",
        "anyOf": [
            {"type": "string", "enum": sorted(instrument_presets.PRESETS)},
            {"type": "array", "items": {"anyOf": [program, voice]},
             "minItems": instrument_presets.VOICES, "maxItems": instrument_presets.VOICES},
        ],
    })


def _temperature_schema(schema: dict[str, Any]) -> None:
    """0 to 1 (the range stays plain `minimum`/`maximum`, which forms read) without the gap
    above 0 that `_storable_temperature` refuses."""
    schema["not"] = {"exclusiveMinimum": compositions.TEMPERATURE_MIN,
                     "exclusiveMaximum": compositions.TEMPERATURE_SMALLEST}


class CreateCompositionRequest(BaseModel):
    """POST /jobs/{job_id}/compositions: a melody for the job's model to accompany, and how."""

    model_config = _STRICT

    melody: MelodyRequest = Field(description="the melody to accompany, as for a training job")
    seed: Annotated[int, Field(ge=compositions.SEED_MIN, le=compositions.SEED_MAX)] = Field(
        default=compositions.DEFAULT_SEED, description="the noise's seed: each seed its own accompaniment"
    )
    temperature: Annotated[
        float, Field(ge=compositions.TEMPERATURE_MIN, le=compositions.TEMPERATURE_MAX)
    ] = Field(
        default=compositions.DEFAULT_TEMPERATURE,
        description="how adventurous the voices are: 0 is the likeliest line, higher samples more "
                    f"freely; 0, or from {compositions.TEMPERATURE_SMALLEST:g} to 1",
        json_schema_extra=_temperature_schema,
    )
    instruments: Any = Field(default=None, validate_default=True, json_schema_extra=_instruments_schema)
    name: Annotated[
        str,
        Field(min_length=1, max_length=names.COMPOSITION_NAME_MAX, pattern=names.COMPOSITION_NAME_PATTERN),
    ] | None = Field(default=None, description="yours to choose; by default the melody and the seed",
                     json_schema_extra=not_null)

    @field_validator("temperature")
    @classmethod
    def _storable_temperature(cls, value: float) -> float:
        if 0 < value < compositions.TEMPERATURE_SMALLEST:
            raise ValueError(f"0, or from {compositions.TEMPERATURE_SMALLEST:g} to 1, not {value!r}")
        return value

    @field_validator("instruments", mode="before")
    @classmethod
    def _explicit_instruments(cls, value: Any) -> list[dict[str, Any]]:
        """Any form `contracts.instruments` takes → its explicit four voices. Its ValueError names
        the exact field (`instruments[2].program`), which pydantic's error would reduce to
        `instruments`: it is raised as the 400 itself (pydantic passes non-ValueErrors through)."""
        try:
            return instrument_presets.as_json(instrument_presets.resolve(value))
        except ValueError as e:
            field, _, problem = str(e).partition(": ")
            raise InvalidFieldError(field, problem) from e

    def voices(self) -> tuple[instrument_presets.Voice, ...]:
        return instrument_presets.resolve(self.instruments)


class ListCompositionsQuery(BaseModel):
    """GET /jobs/{job_id}/compositions query string, paged like GET /jobs."""

    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    next_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None


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


def _training_data(stored: Any) -> dict[str, Any] | None:
    """The job's `training_data` in its four fields. None for a job from before datasets; such a
    job's training writes only its counts (`gan.reporter`): it trained on all the chorales."""
    if not isinstance(stored, dict):
        return None
    return {"dataset": stored.get("dataset", datasets_contract.BACH_DATASET_ID),
            "tags": stored.get("tags", []), "pieces": stored.get("pieces"), "windows": stored.get("windows")}


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
        datasets_contract.JOB_TRAINING_DATA: _training_data(item.get(datasets_contract.JOB_TRAINING_DATA)),
        "progress": item.get("progress"),
        # a note left from STARTING never outlives it
        "status_message": item.get(storage.STATUS_MESSAGE) if item["status"] == statuses.STARTING else None,
        "failure_reason": item.get("failure_reason"),
        "outputs": {
            # The route that presigns the model: an s3:// address is of no use to a caller.
            "model": (routes.path_of("getJobModel", job_id=item["job_id"])
                      if item.get("model_artifact") else None),
            "compositions": item.get("compositions", []),
        },
    }


# --- datasets (contracts/datasets.py) ---------------------------------------------------------
class CreateDatasetRequest(BaseModel):
    """POST /datasets: a name of your choosing; the files come by the presigned upload it answers."""

    model_config = _STRICT

    name: Annotated[
        str, Field(min_length=1, max_length=datasets_contract.DATASET_NAME_MAX,
                   pattern=datasets_contract.DATASET_NAME_PATTERN)
    ] | None = Field(default=None, description="yours to choose", json_schema_extra=not_null)


class ListDatasetsQuery(BaseModel):
    """GET /datasets query string, paged like GET /jobs."""

    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    next_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
