"""The OpenAPI document: the committed `docs/openapi.json` is what the generator builds now, it
is valid OpenAPI 3.1, it has every route of the contract, and the handler's real answers (every
route, every status it can give) are what it says, checked with `jsonschema` against the
document itself, not against the pydantic models it comes from."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from contracts import routes, storage
from lambdas.api import openapi
from lambdas.api.jobs import JobService
from lambdas.common import melodies, schemas
from tests.unit.conftest import BUCKET, TABLE, ApiResponse, call_api, put_job_item, put_trained_job

DOCUMENT = openapi.document()
_URI = "urn:opencomposer:openapi"
_REGISTRY = Registry().with_resource(
    _URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _validator(*parts: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema at this place in the document (its `$ref`s resolve in it)."""
    return jsonschema.Draft202012Validator({"$ref": f"{_URI}#/{_pointer(*parts)}"}, registry=_REGISTRY)


def _route(method: str, path: str) -> routes.Route:
    [route] = [r for r in routes.ROUTES if (r.method, r.path) == (method, path)]
    return route


def check(method: str, resource: str, response: ApiResponse) -> ApiResponse:
    """The answer's status is one the document lists for the route, with a body of its schema."""
    documented = DOCUMENT["paths"][resource][method.lower()]["responses"]
    status = str(response.status)
    assert status in documented, f"{method} {resource} answered {status}, not in {sorted(documented)}"
    content = documented[status].get("content")
    if content is None:
        assert response.body is None
    else:
        parts = ("paths", resource, method.lower(), "responses", status, "content", "application/json",
                 "schema")
        _validator(*parts).validate(response.body)
    return response


# --- the document ---------------------------------------------------------------------------------
def test_the_committed_document_is_what_the_generator_builds() -> None:
    committed = Path(openapi.DOCUMENT_PATH).read_text()
    stale = "docs/openapi.json is stale: run .venv/bin/python -m lambdas.api.openapi"
    assert committed == openapi.text(), stale


def test_the_generator_writes_the_document(tmp_path: Path) -> None:
    assert openapi.main(["--output", str(tmp_path / "openapi.json")]) == 0
    assert json.loads((tmp_path / "openapi.json").read_text()) == DOCUMENT


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    assert DOCUMENT["openapi"] == "3.1.0"
    validate(DOCUMENT)


def test_the_document_has_every_route_with_its_statuses_and_parameters() -> None:
    operations = {(method.upper(), path): op for path, item in DOCUMENT["paths"].items()
                  for method, op in item.items()}
    assert set(operations) == {(r.method, r.path) for r in routes.ROUTES}
    assert set(schemas.RESPONSE_BODIES) == set(operations)
    assert len({op["operationId"] for op in operations.values()}) == len(operations)
    for route in routes.ROUTES:
        operation = operations[(route.method, route.path)]
        assert sorted(map(int, operation["responses"])) == sorted({route.success, *route.all_errors()})
        path_parameters = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert path_parameters == routes.parameters(route.path)
        for status in route.all_errors():
            schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}


def test_the_list_query_and_the_idempotency_header_are_parameters_with_their_ranges() -> None:
    listing = {p["name"]: p for p in DOCUMENT["paths"]["/jobs"]["get"]["parameters"]}
    assert set(listing) == {"status", "limit", "next_token"}
    assert all(p["in"] == "query" and not p["required"] for p in listing.values())
    assert listing["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert listing["next_token"]["schema"] == {"type": "string", "minLength": 1, "maxLength": 2048}
    statuses = DOCUMENT["components"]["schemas"]["JobStatus"]["enum"]
    assert listing["status"]["schema"] == {"$ref": "#/components/schemas/JobStatus"}
    assert "STOPPING" in statuses
    [header] = DOCUMENT["paths"]["/jobs"]["post"]["parameters"]
    assert (header["name"], header["in"], header["required"]) == ("Idempotency-Key", "header", False)


def test_the_error_shape_is_code_message_and_an_optional_field() -> None:
    errors = _validator("components", "schemas", "Error")
    errors.validate({"error": {"code": "invalid_field", "message": "m", "field": "name"}})
    errors.validate({"error": {"code": "job_not_found", "message": "m"}})
    for wrong in ({"error": {"code": "x"}}, {"error": {"code": "x", "message": "m", "field": None}},
                  {"code": "x", "message": "m"}):
        assert not errors.is_valid(wrong)


REQUEST = ("paths", "/jobs", "post", "requestBody", "content", "application/json", "schema")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "my-first-bach", "melody": {"sample": "twinkle-twinkle"},
         "hyperparameters": {"epochs": 20, "learning_rate": 0.001, "update_ratio": 5, "batch_size": 64,
                             "seed": 7}},
        {"hyperparameters": {"epochs": 1, "seed": 2**63}, "name": None},
    ],
)
def test_bodies_the_document_allows_are_accepted(aws: None, body: dict[str, Any]) -> None:
    _validator(*REQUEST).validate(body)
    assert check("POST", "/jobs", call_api("POST", "/jobs", body=body)).status == 202


@pytest.mark.parametrize(
    "body",
    [
        {"bogus": 1},
        {"hyperparameters": {"epochs": "20"}},
        {"hyperparameters": {"epochs": 0}},
        {"hyperparameters": {"learning_rate": 1}},
        {"hyperparameters": {"momentum": 0.9}},
        {"name": ""},
        {"name": "semi;colon"},
        {"melody": {}},
        {"melody": {"sample": "never-heard-of-it"}},
        {"melody": {"sample": "ode-to-joy", "midi_base64": "TVRoZA=="}},
        {"melody": {"midi_base64": ""}},
    ],
)
def test_bodies_the_document_refuses_are_400(aws: None, body: dict[str, Any]) -> None:
    assert not _validator(*REQUEST).is_valid(body)
    assert check("POST", "/jobs", call_api("POST", "/jobs", body=body)).status == 400


# --- the handler's answers against the document ---------------------------------------------------
COMPOSITIONS = "/jobs/{job_id}/compositions"
TEXT = {"Content-Type": "text/plain"}


def test_every_success_of_every_route_is_what_the_document_says(aws: None) -> None:
    job = check("POST", "/jobs", call_api("POST", "/jobs", headers={"Idempotency-Key": "k"})).body
    check("POST", "/jobs", call_api("POST", "/jobs", headers={"Idempotency-Key": "k"}))
    uploaded = {"melody": {"midi_base64": "TVRoZAAAAAYAAQABAeBNVHJrAAAADACQPFCDYIA8AAD/LwA="}}
    check("POST", "/jobs", call_api("POST", "/jobs", body=uploaded))
    done = "c" * 32
    put_job_item(
        done, "COMPLETED", name="bach", compositions=["final"], model_artifact="s3://b/m.tar.gz",
        progress={"epoch": 2, "epochs": 2, "metrics": {"generator_loss": -1, "similarity": Decimal("0.5"),
                                                      "consonance": None}},
        reference={"consonance": Decimal("0.918")}, created_at="2026-11-27T14:00:00.000Z",
    )
    put_job_item("f" * 32, "FAILED", failure_reason="out of memory", created_at="2026-11-27T13:00:00.000Z")
    table = boto3.resource("dynamodb").Table(TABLE)
    for epoch in (1, 2):
        table.put_item(Item={"pk": storage.job_pk(done), "sk": storage.epoch_sk(epoch), "item_type": "epoch",
                             "epoch": epoch, "metrics": {"generator_loss": -epoch, "critic_loss": None}})
    boto3.client("s3").put_object(Bucket=BUCKET, Key=storage.composition_key(done, "final"), Body=b"MThd")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=storage.sample_key(done, 1), Body=b"MThd")

    page = check("GET", "/jobs", call_api("GET", "/jobs", query={"limit": "2"})).body
    assert page["next_token"]
    following = {"next_token": page["next_token"], "status": "FAILED"}
    check("GET", "/jobs", call_api("GET", "/jobs", query=following))
    check("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{done}"))
    check("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{'f' * 32}"))
    assert check("GET", "/jobs/{job_id}/metrics", call_api("GET", f"/jobs/{done}/metrics")).body["epochs"]
    check("GET", "/jobs/{job_id}/metrics", call_api("GET", f"/jobs/{job['job_id']}/metrics"))
    check("GET", "/jobs/{job_id}/compositions", call_api("GET", f"/jobs/{done}/compositions"))
    trained = "e" * 32
    put_trained_job(trained)
    listing = f"/jobs/{trained}/compositions"
    ode = {"melody": {"sample": "ode-to-joy"}}
    made = check("POST", COMPOSITIONS, call_api("POST", listing, body=ode)).body
    assert made["kind"] == "composition"
    stille = base64.b64encode(melodies.render(melodies.SAMPLES["stille-nacht"])).decode()
    upload = {"melody": {"midi_base64": stille}}
    assert check("POST", COMPOSITIONS, call_api("POST", listing, body=upload)).status == 201
    page = check("GET", COMPOSITIONS, call_api("GET", listing, query={"limit": "1"})).body
    check("GET", COMPOSITIONS, call_api("GET", listing, query={"next_token": page["next_token"]}))
    check("GET", "/jobs/{job_id}/model", call_api("GET", f"/jobs/{trained}/model"))
    deleted = call_api("DELETE", f"{listing}/{made['composition_id']}")
    assert check("DELETE", f"{COMPOSITIONS}/{{composition_id}}", deleted).status == 204
    check("GET", "/melodies", call_api("GET", "/melodies"))
    check("POST", "/jobs/{job_id}/stop", call_api("POST", f"/jobs/{job['job_id']}/stop"))
    check("POST", "/jobs/{job_id}/stop", call_api("POST", f"/jobs/{job['job_id']}/stop"))
    assert check("DELETE", "/jobs/{job_id}", call_api("DELETE", f"/jobs/{done}")).status == 204
    assert check("GET", "/openapi.json", call_api("GET", "/openapi.json")).body == DOCUMENT


def test_every_error_of_every_route_is_what_the_document_says(aws: None) -> None:
    running = call_api("POST", "/jobs").body["job_id"]
    put_job_item("f" * 32, "FAILED")
    unknown = "0" * 32
    trained = "e" * 32
    put_trained_job(trained)
    listing = f"/jobs/{trained}/compositions"
    sample = {"melody": {"sample": "twinkle-twinkle"}}
    answers = [
        ("POST", "/jobs", call_api("POST", "/jobs", body={"hyperparameters": {"epochs": 0}}), 400),
        ("POST", "/jobs", call_api("POST", "/jobs", raw_body="{not json"), 400),
        ("POST", "/jobs", call_api("POST", "/jobs", headers={"Idempotency-Key": "has spaces"}), 400),
        ("POST", "/jobs", call_api("POST", "/jobs", body={"melody": {"midi_base64": "A" * 2**20}}), 413),
        ("POST", "/jobs", call_api("POST", "/jobs", body={}, headers={"Content-Type": "text/plain"}), 415),
        ("POST", "/jobs", call_api("POST", "/jobs", owner=None), 403),
        ("GET", "/jobs", call_api("GET", "/jobs", query={"limit": "0"}), 400),
        ("GET", "/jobs", call_api("GET", "/jobs", query={"colour": "blue"}), 400),
        ("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{unknown}"), 404),
        ("GET", "/jobs/{job_id}", call_api("GET", "/jobs/not-a-job-id"), 404),
        ("GET", "/jobs/{job_id}/metrics", call_api("GET", f"/jobs/{unknown}/metrics"), 404),
        ("GET", "/jobs/{job_id}/compositions", call_api("GET", f"/jobs/{unknown}/compositions"), 404),
        ("GET", "/jobs/{job_id}/compositions",
         call_api("GET", f"/jobs/{running}/compositions", query={"next_token": "x"}), 400),
        ("GET", "/jobs/{job_id}/model", call_api("GET", f"/jobs/{unknown}/model"), 404),
        ("GET", "/jobs/{job_id}/model", call_api("GET", f"/jobs/{running}/model"), 409),
        ("POST", COMPOSITIONS, call_api("POST", listing, body={}), 400),
        ("POST", COMPOSITIONS, call_api("POST", f"/jobs/{unknown}/compositions", body=sample), 404),
        ("POST", COMPOSITIONS, call_api("POST", f"/jobs/{running}/compositions", body=sample), 409),
        ("POST", COMPOSITIONS, call_api("POST", listing, body={"melody": {"midi_base64": "A" * 2**20}}), 413),
        ("POST", COMPOSITIONS, call_api("POST", listing, raw_body="{}", headers=TEXT), 415),
        ("POST", COMPOSITIONS, call_api("POST", listing, body=sample, owner=None), 403),
        ("DELETE", "/jobs/{job_id}/compositions/{composition_id}",
         call_api("DELETE", f"/jobs/{trained}/compositions/{'0' * 20}"), 404),
        ("DELETE", "/jobs/{job_id}/compositions/{composition_id}",
         call_api("DELETE", f"/jobs/{trained}/compositions/final"), 409),
        ("POST", "/jobs/{job_id}/stop", call_api("POST", f"/jobs/{unknown}/stop"), 404),
        ("POST", "/jobs/{job_id}/stop", call_api("POST", f"/jobs/{'f' * 32}/stop"), 409),
        ("DELETE", "/jobs/{job_id}", call_api("DELETE", f"/jobs/{unknown}"), 404),
        ("DELETE", "/jobs/{job_id}", call_api("DELETE", f"/jobs/{running}"), 409),
    ]
    with pytest.MonkeyPatch.context() as patch:
        def throttled(*args: Any) -> Any:
            from lambdas.common.errors import ServiceUnavailableError
            raise ServiceUnavailableError("throttled")

        patch.setattr(JobService, "get", throttled)
        answers.append(("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{unknown}"), 503))
    boto3.client("dynamodb").delete_table(TableName=TABLE)
    answers.append(("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{unknown}"), 500))

    for method, resource, response, status in answers:
        assert response.status == status, (method, resource, response.body)
        assert status in _route(method, resource).all_errors()
        check(method, resource, response)


def test_the_document_needs_no_caller_identity(aws: None) -> None:
    response = check("GET", "/openapi.json", call_api("GET", "/openapi.json", owner=None))

    assert response.status == 200 and response.body == DOCUMENT


def test_a_body_its_model_refuses_is_a_500_never_an_undocumented_answer(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = JobService.get
    monkeypatch.setattr(JobService, "get", lambda self, owner, job_id: {**real(self, owner, job_id), "x": 1})
    job_id = call_api("POST", "/jobs").body["job_id"]

    response = check("GET", "/jobs/{job_id}", call_api("GET", f"/jobs/{job_id}"))

    assert response.status == 500 and response.body["error"]["code"] == "internal_error"
