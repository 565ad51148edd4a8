"""The handlers' environment, parsed once into typed models: each parser reads exactly the
variables its function's `contracts.functions` spec names, into a model with one field for each
(aliased to the variable), so a variable the spec adds or drops fails the parse, naming it."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts import functions

# The redrive starts executions as the stream does (`lambdas/common/starting.py`): STREAM's parser.
if functions.REDRIVE.environment != functions.STREAM.environment:
    raise RuntimeError("contracts.functions: REDRIVE no longer reads STREAM's environment; give it a parser")

# The compose function reads the api's table and bucket: ApiEnv's parser.
if functions.COMPOSE.environment != functions.API.environment:
    raise RuntimeError("contracts.functions: COMPOSE no longer reads API's environment; give it a parser")

# The datasets function reads the api's table and bucket too: ApiEnv's parser.
if functions.DATASETS.environment != functions.API.environment:
    raise RuntimeError("contracts.functions: DATASETS no longer reads API's environment; give it a parser")

_Env = TypeVar("_Env", bound=BaseModel)


class ApiEnv(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table_name: str = Field(validation_alias=functions.ENV_TABLE, min_length=1)
    bucket_name: str = Field(validation_alias=functions.ENV_BUCKET, min_length=1)


class StreamEnv(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state_machine_arn: str = Field(validation_alias=functions.ENV_STATE_MACHINE_ARN, min_length=1)
    # To end a job FAILED when its execution can never start.
    table_name: str = Field(validation_alias=functions.ENV_TABLE, min_length=1)
    # Where the job's input channels are (`starting.execution_input`).
    bucket_name: str = Field(validation_alias=functions.ENV_BUCKET, min_length=1)


class FinaliserEnv(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table_name: str = Field(validation_alias=functions.ENV_TABLE, min_length=1)


def _parse(model: type[_Env], spec: functions.FunctionSpec) -> _Env:
    """The spec's variables ('' for an unset one, which the model refuses by name)."""
    return model.model_validate({name: os.environ.get(name, "") for name in spec.environment})


@cache
def api_env() -> ApiEnv:
    return _parse(ApiEnv, functions.API)


@cache
def compose_env() -> ApiEnv:
    return _parse(ApiEnv, functions.COMPOSE)


@cache
def datasets_env() -> ApiEnv:
    return _parse(ApiEnv, functions.DATASETS)


@cache
def stream_env() -> StreamEnv:
    """The stream's and the redrive's."""
    return _parse(StreamEnv, functions.STREAM)


@cache
def finaliser_env() -> FinaliserEnv:
    return _parse(FinaliserEnv, functions.FINALISER)
