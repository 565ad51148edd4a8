"""The front door: HTTP requests in as API Gateway REST proxy events (`contracts.events`), the
function's proxy responses out."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from contracts import deployment, names, routes
from contracts.events import api_gateway_event, match_resource
from opencomposer.local.front_door import STAGE, FrontDoor, proxy_response


def test_event_has_the_rest_proxy_shape_with_path_parameters_query_and_local_identity() -> None:
    event = api_gateway_event(
        "GET",
        "/jobs/abc123/metrics?limit=5&tag=a&tag=b",
        [("Host", "127.0.0.1:8000"), ("Accept", "application/json"), ("X-Multi", "1"), ("X-Multi", "2")],
        b"",
        stage=STAGE,
        source_ip="127.0.0.9",
    )

    assert event["resource"] == "/jobs/{job_id}/metrics"
    assert event["path"] == "/jobs/abc123/metrics"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"job_id": "abc123"}
    assert event["queryStringParameters"] == {"limit": "5", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"], "tag": ["a", "b"]}
    assert event["headers"]["Accept"] == "application/json"
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] == deployment.LOCAL_OWNER and identity["caller"] == deployment.LOCAL_OWNER
    assert identity["sourceIp"] == "127.0.0.9"
    assert event["requestContext"]["resourcePath"] == "/jobs/{job_id}/metrics"
    assert event["requestContext"]["httpMethod"] == "GET"
    assert event["requestContext"]["stage"] == STAGE
    assert event["requestContext"]["path"] == f"/{STAGE}/jobs/abc123/metrics"


def test_event_bodies_json_as_text_binary_as_base64() -> None:
    json_type, midi_type = {"Content-Type": "application/json"}, {"Content-Type": "audio/midi"}
    text = api_gateway_event("POST", "/jobs", json_type, b'{"name": "x"}', stage=STAGE)
    binary = api_gateway_event("POST", "/jobs", midi_type, b"MThd\x00\xff", stage=STAGE)

    assert text["body"] == '{"name": "x"}' and text["isBase64Encoded"] is False
    assert text["pathParameters"] is None and text["queryStringParameters"] is None
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"MThd\x00\xff"


@pytest.mark.parametrize(
    ("path", "resource", "params"),
    [
        ("/jobs", "/jobs", None),
        ("/jobs/j1", "/jobs/{job_id}", {"job_id": "j1"}),
        ("/jobs/j1/stop", "/jobs/{job_id}/stop", {"job_id": "j1"}),
        ("/jobs/j1/compositions", "/jobs/{job_id}/compositions", {"job_id": "j1"}),
        ("/jobs/j1/metrics", "/jobs/{job_id}/metrics", {"job_id": "j1"}),
        ("/elsewhere/x", "/{proxy+}", {"proxy": "elsewhere/x"}),
    ],
)
def test_paths_match_the_api_resources(path: str, resource: str, params: dict[str, str] | None) -> None:
    assert match_resource(path) == (resource, params)


def test_every_route_of_the_api_is_a_resource_of_its_own() -> None:
    for route in routes.ROUTES:
        path = route.path.replace("{job_id}", "j1")
        assert match_resource(path)[0] == route.path


def test_proxy_response_keeps_status_headers_and_decodes_base64() -> None:
    status, headers, body = proxy_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "audio/midi"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert ("Content-Type", "audio/midi") in headers
    assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert body == b"\x00\x01"


class _Lambda:
    """Stands in for moto's Lambda client: records the event, answers like a proxy function."""

    def __init__(self, reply: dict[str, Any], function_error: str | None = None) -> None:
        self.reply, self.function_error, self.events = reply, function_error, []  # type: ignore[var-annotated]

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.events.append((FunctionName, json.loads(Payload)))
        answer: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.reply).encode())}
        if self.function_error:
            answer["FunctionError"] = self.function_error
        return answer


def _serve(lam: _Lambda) -> FrontDoor:
    door = FrontDoor(lam, {"api": "api-fn"}, port=0)
    door.start()
    return door


def test_http_requests_reach_the_function_and_its_answer_comes_back() -> None:
    lam = _Lambda(
        {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}
    )
    door = _serve(lam)
    try:
        request = urllib.request.Request(
            door.url + "/jobs?x=1",
            data=b'{"name": "n"}',
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "k1"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, body, content_type = reply.status, reply.read(), reply.headers["Content-Type"]
            request_id = reply.headers[names.REQUEST_ID_HEADER]
    finally:
        door.stop()

    assert (status, body, content_type) == (202, b'{"ok": true}', "application/json")
    name, event = lam.events[0]
    assert name == "api-fn"
    assert event["httpMethod"] == "POST" and event["path"] == "/jobs" and event["body"] == '{"name": "n"}'
    assert event["headers"]["Idempotency-Key"] == "k1"
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["stage"] == STAGE
    assert event["requestContext"]["identity"]["userArn"] == deployment.LOCAL_OWNER
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert request_id == event["requestContext"]["requestId"]  # the id the function logs


def test_a_function_error_is_a_502_without_the_stack_trace() -> None:
    lam = _Lambda({"errorMessage": "secret detail", "errorType": "KeyError"}, function_error="Unhandled")
    door = _serve(lam)
    try:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(door.url + "/jobs", timeout=10)
    finally:
        door.stop()
    assert caught.value.code == 502
    assert json.loads(caught.value.read()) == {"message": "Internal server error"}
    # API Gateway's headers: the request id to look up in the function's log, the error type
    assert caught.value.headers[names.REQUEST_ID_HEADER] == lam.events[0][1]["requestContext"]["requestId"]
    assert caught.value.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
