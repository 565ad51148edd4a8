"""The compose function (API Gateway REST proxy events): the routes `contracts.routes` gives to
"compose", in front of `composer.ComposeService`. It shares the api's HTTP plumbing
(`lambdas.common.http`): the caller's identity, the body checks, the error shape.

It imports PyTorch, so on AWS it is a container image (`lambdas/compose/Dockerfile`); the
models it loads stay cached for as long as the container (or the local worker) is warm.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts import functions
from lambdas.common import http, parsing
from lambdas.common.dal import ArtifactsStore, CompositionsRepository, JobsRepository
from lambdas.common.env import compose_env
from lambdas.common.models import CreateCompositionRequest
from lambdas.compose.composer import ComposeService
from lambdas.compose.model_store import ModelStore

logger = Logger(service="opencomposer-compose")
app = APIGatewayRestResolver()
_services: dict[str, ComposeService] = {}


def _service() -> ComposeService:
    """One per warm function: its model cache lives as long as the container."""
    env = compose_env()
    if env.bucket_name not in _services:
        artifacts = ArtifactsStore(env.bucket_name)
        _services[env.bucket_name] = ComposeService(
            JobsRepository(env.table_name),
            CompositionsRepository(env.table_name),
            artifacts,
            ModelStore(artifacts),
            env.bucket_name,
        )
    return _services[env.bucket_name]


def create_composition(job_id: str) -> Response:
    event = app.current_event
    raw = parsing.body_bytes(event.body, bool(event.is_base64_encoded))
    request = parsing.parse_body(CreateCompositionRequest, raw, event.headers.get("content-type"))
    return http.answer(
        "POST", "/jobs/{job_id}/compositions", _service().compose(http.owner(app), job_id, request)
    )


http.register(app, functions.COMPOSE.key, {("POST", "/jobs/{job_id}/compositions"): create_composition})
http.handle_errors(app, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("request", method=event.get("httpMethod"), path=event.get("path"))
    return app.resolve(event, context)
