"""What the schemathesis fuzz (`tests/fuzz/`) found, pinned as plain tests: each was a 5xx or
an error without its field before its fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import deployment, events, functions, routes
from lambdas.common import parsing
from lambdas.common.errors import InvalidFieldError, InvalidJsonError
from lambdas.common.models import CreateCompositionRequest, CreateJobRequest, ListJobsQuery
from tests.unit.conftest import FakeContext, call_api


def _raw_post(path: str, body: bytes, content_type: str) -> dict[str, Any]:
    """A POST whose body is any bytes: API Gateway base64-encodes a body that is not UTF-8."""
    event = events.api_gateway_event("POST", path, {"Content-Type": content_type}, body, stage="v1",
                                     owner=deployment.LOCAL_OWNER)
    assert event["isBase64Encoded"]
    if routes.function_for("POST", event["resource"]) == functions.COMPOSE.key:
        from lambdas.compose.handler import lambda_handler
    else:
        from lambdas.api.handler import lambda_handler

    return lambda_handler(event, FakeContext())


@pytest.mark.parametrize("path", ["/jobs", f"/jobs/{'a' * 32}/compositions"])
@pytest.mark.parametrize(("content_type", "status"), [("application/json", 400), ("text/plain", 415)])
def test_a_body_that_is_not_utf8_is_refused_not_a_crash(
    aws: None, path: str, content_type: str, status: int
) -> None:
    # Powertools' decoded_body decodes a base64 body as UTF-8, which raised: a 500.
    response = _raw_post(path, b"\xff\xfe\xfd", content_type)
    assert response["statusCode"] == status


def test_body_bytes_keeps_a_binary_body_binary() -> None:
    assert parsing.body_bytes(None, False) == b""
    assert parsing.body_bytes("{}", False) == b"{}"
    assert parsing.body_bytes("//79", True) == b"\xff\xfe\xfd"
    with pytest.raises(InvalidJsonError):
        parsing.body_bytes("abc", True)  # not base64 at all


def test_a_learning_rate_no_job_item_can_hold_is_a_400(aws: None) -> None:
    # DynamoDB's numbers stop at 1e-130: a smaller rate was accepted, then failed to store (500).
    for rate in (5e-324, 1e-131, 1e-10):
        response = call_api("POST", "/jobs", body={"hyperparameters": {"learning_rate": rate}})
        assert response.status == 400, rate
        assert response.body["error"]["field"] == "hyperparameters.learning_rate"
    assert call_api("POST", "/jobs", body={"hyperparameters": {"learning_rate": 2e-10}}).status == 202


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (CreateJobRequest, {"": 1}, '""'),
        (CreateJobRequest, {"hyperparameters": {"": 1}}, 'hyperparameters.""'),
        (CreateJobRequest, {"a.b": 1}, '"a.b"'),
        # `make bench`'s 1,200 fuzz cases sent a key that began with a quote: named bare, it read
        # as the start of an unterminated JSON string.
        (CreateJobRequest, {'"a': 1}, '"\\"a"'),
        (CreateJobRequest, {"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs"),
    ],
)
def test_an_unknown_field_with_an_empty_dotted_or_quoted_name_is_still_named(
    model: type[CreateJobRequest], data: dict[str, Any], field: str
) -> None:
    # An empty key used to give no `field` at all.
    with pytest.raises(InvalidFieldError) as raised:
        parsing.parse_body(model, json.dumps(data).encode(), "application/json")
    assert raised.value.field == field


def test_an_empty_query_parameter_name_is_named(aws: None) -> None:
    with pytest.raises(InvalidFieldError) as raised:
        parsing.parse_query(ListJobsQuery, {"": "x"})
    assert raised.value.field == '""'
    response = call_api("GET", "/jobs", query={"": "x"})
    assert response.status == 400 and response.body["error"]["field"] == '""'


@pytest.mark.parametrize(("temperature", "ok"), [(0, True), (5e-324, False), (2e-182, False), (1e-11, False),
                                                 (1e-10, True), (0.3, True), (1, True)])
def test_a_temperature_no_composition_item_can_hold_is_refused(temperature: float, ok: bool) -> None:
    # The composition's item records its temperature; a positive one below DynamoDB's 1e-130
    # passed the 0-1 range, then failed to store (500).
    body = json.dumps({"melody": {"sample": "ode-to-joy"}, "temperature": temperature}).encode()
    if ok:
        parsed = parsing.parse_body(CreateCompositionRequest, body, "application/json")
        assert parsed.temperature == temperature
        return
    with pytest.raises(InvalidFieldError) as raised:
        parsing.parse_body(CreateCompositionRequest, body, "application/json")
    assert raised.value.field == "temperature"
