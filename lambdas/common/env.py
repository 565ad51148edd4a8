"""The handlers' environment, parsed once into typed models (names from settings.py)."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field

from contracts import functions


class ApiEnv(BaseModel):
    table_name: str = Field(min_length=1)
    bucket_name: str = Field(min_length=1)


class StreamEnv(BaseModel):
    state_machine_arn: str = Field(min_length=1)
    # To end a job FAILED when its execution can never start.
    table_name: str = Field(min_length=1)


@cache
def api_env() -> ApiEnv:
    return ApiEnv(
        table_name=os.environ.get(functions.ENV_TABLE, ""),
        bucket_name=os.environ.get(functions.ENV_BUCKET, ""),
    )


@cache
def stream_env() -> StreamEnv:
    return StreamEnv(
        state_machine_arn=os.environ.get(functions.ENV_STATE_MACHINE_ARN, ""),
        table_name=os.environ.get(functions.ENV_TABLE, ""),
    )
