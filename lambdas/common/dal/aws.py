"""The AWS clients of the Lambda code, and what every data-access class does with an AWS error.

Clients come from one cached factory: created on first use, reused while the Lambda environment
is warm.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NoReturn

import boto3
from botocore.exceptions import ClientError

from lambdas.common.errors import ServiceUnavailableError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "SlowDown",
    }
)


@cache
def client(service: str) -> Any:
    return boto3.client(service)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb").Table(name)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def raise_common(error: ClientError) -> NoReturn:
    """Throttling and transient AWS answers become a 503 the caller may retry; anything else is
    a bug or an outage and propagates as it is."""
    if error_code(error) in THROTTLING_CODES:
        raise ServiceUnavailableError(f"AWS is busy ({error_code(error)}); retry the request") from error
    raise error
