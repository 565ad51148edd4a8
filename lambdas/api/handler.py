"""The REST API (API Gateway REST proxy events): the routes `contracts.routes` gives to "api",
registered from the contract (a route without a function, or a function without a route, fails
at import), in front of `jobs.JobService`. The caller's identity, the body checks and the error
shape are `lambdas.common.http`'s, shared with the compose function.

Every body it sends is checked against its model in `lambdas.common.schemas` (each success
status comes from `contracts.routes`), the models the OpenAPI document (`lambdas.api.openapi`,
served at `GET /openapi.json`) is built from.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts import functions, names
from lambdas.api import openapi
from lambdas.api.datasets import DatasetService
from lambdas.api.jobs import JobService
from lambdas.common import http, melodies, parsing
from lambdas.common.dal import ArtifactsStore, CompositionsRepository, JobsRepository, Training
from lambdas.common.dal.datasets import DatasetsRepository
from lambdas.common.env import api_env
from lambdas.common.models import (
    CreateDatasetRequest,
    CreateJobRequest,
    ListCompositionsQuery,
    ListDatasetsQuery,
    ListJobsQuery,
)

logger = Logger(service="opencomposer-api")
app = APIGatewayRestResolver()


def _service() -> JobService:
    env = api_env()
    return JobService(JobsRepository(env.table_name), CompositionsRepository(env.table_name),
                      ArtifactsStore(env.bucket_name), Training())


def _datasets() -> DatasetService:
    env = api_env()
    return DatasetService(DatasetsRepository(env.table_name), ArtifactsStore(env.bucket_name))


def _owner() -> str:
    return http.owner(app)


# --- the routes ----------------------------------------------------------------------------------
def create_job() -> Response:
    event = app.current_event
    raw = parsing.body_bytes(event.body, bool(event.is_base64_encoded))
    request = parsing.parse_body(CreateJobRequest, raw, event.headers.get("content-type"))
    key = parsing.idempotency_key(event.headers.get(names.IDEMPOTENCY_HEADER))
    return http.answer("POST", "/jobs", _service().create(_owner(), request, key))


def list_jobs() -> Response:
    query = parsing.parse_query(ListJobsQuery, app.current_event.query_string_parameters)
    return http.answer("GET", "/jobs", _service().list(_owner(), query))


def get_job(job_id: str) -> Response:
    return http.answer("GET", "/jobs/{job_id}", _service().get(_owner(), job_id))


def get_metrics(job_id: str) -> Response:
    return http.answer("GET", "/jobs/{job_id}/metrics", _service().metrics(_owner(), job_id))


def get_model(job_id: str) -> Response:
    return http.answer("GET", "/jobs/{job_id}/model", _service().model(_owner(), job_id))


def list_compositions(job_id: str) -> Response:
    query = parsing.parse_query(ListCompositionsQuery, app.current_event.query_string_parameters)
    return http.answer("GET", "/jobs/{job_id}/compositions", _service().compositions(_owner(), job_id, query))


def delete_composition(job_id: str, composition_id: str) -> Response:
    _service().delete_composition(_owner(), job_id, composition_id)
    return http.answer("DELETE", "/jobs/{job_id}/compositions/{composition_id}")


def stop_job(job_id: str) -> Response:
    return http.answer("POST", "/jobs/{job_id}/stop", _service().stop(_owner(), job_id))


def delete_job(job_id: str) -> Response:
    _service().delete(_owner(), job_id)
    return http.answer("DELETE", "/jobs/{job_id}")


def create_dataset() -> Response:
    event = app.current_event
    raw = parsing.body_bytes(event.body, bool(event.is_base64_encoded))
    request = parsing.parse_body(CreateDatasetRequest, raw, event.headers.get("content-type"))
    return http.answer("POST", "/datasets", _datasets().create(_owner(), request))


def list_datasets() -> Response:
    query = parsing.parse_query(ListDatasetsQuery, app.current_event.query_string_parameters)
    return http.answer("GET", "/datasets", _datasets().list(_owner(), query))


def get_dataset(dataset_id: str) -> Response:
    return http.answer("GET", "/datasets/{dataset_id}", _datasets().get(_owner(), dataset_id))


def delete_dataset(dataset_id: str) -> Response:
    _datasets().delete(_owner(), dataset_id)
    return http.answer("DELETE", "/datasets/{dataset_id}")


def list_melodies() -> Response:
    # Anyone's: the shipped samples name no job (API Gateway's IAM authorization still applies).
    return http.answer("GET", "/melodies", {"melodies": melodies.catalogue()})


def get_openapi() -> Response:
    # Anyone's: the document names no job (API Gateway's IAM authorization still applies on AWS).
    return http.answer("GET", "/openapi.json", openapi.document())


ROUTE_FUNCTIONS: http.RouteFunctions = {
    ("POST", "/jobs"): create_job,
    ("GET", "/jobs"): list_jobs,
    ("GET", "/jobs/{job_id}"): get_job,
    ("GET", "/jobs/{job_id}/metrics"): get_metrics,
    ("GET", "/jobs/{job_id}/model"): get_model,
    ("GET", "/jobs/{job_id}/compositions"): list_compositions,
    ("DELETE", "/jobs/{job_id}/compositions/{composition_id}"): delete_composition,
    ("POST", "/jobs/{job_id}/stop"): stop_job,
    ("DELETE", "/jobs/{job_id}"): delete_job,
    ("POST", "/datasets"): create_dataset,
    ("GET", "/datasets"): list_datasets,
    ("GET", "/datasets/{dataset_id}"): get_dataset,
    ("DELETE", "/datasets/{dataset_id}"): delete_dataset,
    ("GET", "/melodies"): list_melodies,
    ("GET", "/openapi.json"): get_openapi,
}
http.register(app, functions.API.key, ROUTE_FUNCTIONS)
http.handle_errors(app, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("request", method=event.get("httpMethod"), path=event.get("path"))
    return app.resolve(event, context)
