"""The Lambda functions, as the CDK stack deploys them and the local stack declares them: one
spec each, so runtime, memory, timeout and environment cannot drift between the two."""

from __future__ import annotations

from dataclasses import dataclass

# Environment variable names the handlers read (`lambdas/common/env.py`).
ENV_TABLE = "JOBS_TABLE_NAME"
ENV_BUCKET = "ARTIFACTS_BUCKET_NAME"
ENV_STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
# Set on every function, read by Powertools.
POWERTOOLS_ENVIRONMENT = {"POWERTOOLS_SERVICE_NAME": "opencomposer", "POWERTOOLS_LOG_LEVEL": "INFO"}

RUNTIME = "python3.12"
# The Lambda asset (one for every zip function): these top-level packages, plus the wheels of
# lambdas/requirements.txt on AWS (the local stack's workers take those from the venv).
ASSET_PACKAGES = ("lambdas", "contracts")
ARCHITECTURE = "x86_64"
# The compose function runs the trained generator, so it needs PyTorch: far over a zip
# function's 250 MB, hence a container image (Lambda's own Python base image). The image holds
# the asset's packages and the training's `gan` package (repository path → import name), with
# the wheels of `lambdas/compose/requirements.txt` (CPU PyTorch). Locally the worker's code is a
# zip of the same packages, the wheels coming from the venv.
IMAGE_PACKAGES = {"lambdas": "lambdas", "contracts": "contracts", "training_container/gan": "gan"}
COMPOSE_DOCKERFILE = "lambdas/compose/Dockerfile"
COMPOSE_REQUIREMENTS = "lambdas/compose/requirements.txt"


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # a short name: the CDK construct and the local function name end with it
    handler: str  # Lambda's `handler` setting
    memory_mb: int
    timeout_s: int
    environment: tuple[str, ...]  # the variable names it needs (Powertools' come with all)
    description: str
    runtime: str = RUNTIME
    image: bool = False  # a container image (IMAGE_PACKAGES, COMPOSE_DOCKERFILE), not the zip asset
    ephemeral_storage_mb: int = 512  # Lambda's /tmp (512 MB is its default)

    def packages(self) -> dict[str, str]:
        """The code it runs: repository path → import name."""
        return dict(IMAGE_PACKAGES) if self.image else {p: p for p in ASSET_PACKAGES}


API = FunctionSpec(
    "api", "lambdas.api.handler.lambda_handler", memory_mb=512,
    timeout_s=29,  # API Gateway's integration timeout
    environment=(ENV_TABLE, ENV_BUCKET),
    description="opencomposer api: the REST routes of the jobs API",
)
# POST /jobs/{job_id}/compositions (`contracts.routes`: the routes whose `function` is "compose").
# Memory buys CPU on Lambda (1,769 MB is one vCPU): 3,008 MB gives ~1.7 vCPUs for PyTorch and
# room for a few cached models. API Gateway's timeout again.
COMPOSE = FunctionSpec(
    "compose", "lambdas.compose.handler.lambda_handler", memory_mb=3008, timeout_s=29,
    environment=(ENV_TABLE, ENV_BUCKET),
    description="opencomposer compose: a finished job's model accompanies a melody",
    image=True,
)
# Both the stream and the redrive functions start executions (`start_job`), so they read the
# same environment; the bucket names the training job's input channels (S3 URIs).
STREAM = FunctionSpec(
    "stream", "lambdas.stream.handler.lambda_handler", memory_mb=256, timeout_s=60,
    environment=(ENV_STATE_MACHINE_ARN, ENV_TABLE, ENV_BUCKET),
    description="opencomposer stream: starts a training execution per new job",
)
# The stream trigger's dead-letter queue (failed stream batches) → one more start. Locally no
# batch fails for good (the local delivery retries), so only a hand-made message invokes it.
REDRIVE = FunctionSpec(
    "redrive", "lambdas.redrive.handler.lambda_handler", memory_mb=256, timeout_s=60,
    environment=(ENV_STATE_MACHINE_ARN, ENV_TABLE, ENV_BUCKET),
    description="opencomposer redrive: starts the jobs of failed stream batches once more, "
                "or ends them FAILED",
)
# An execution that ends outside the state machine's own Catch (stopped from the console, a
# States.Runtime error, a timeout, a recording task out of retries) leaves its job unfinished:
# EventBridge's "Step Functions Execution Status Change" events for FAILED, TIMED_OUT and
# ABORTED run this function, which ends such a job (conditionally) saying why. Locally the stack
# watches its executions and sends it the same events (`opencomposer/local/execution_events.py`).
# The events it acts on: the rule's pattern on AWS, the local watcher's choice of executions.
EXECUTION_EVENT_SOURCE = "aws.states"
EXECUTION_EVENT_DETAIL_TYPE = "Step Functions Execution Status Change"
EXECUTION_ENDED_OUTSIDE = ("FAILED", "TIMED_OUT", "ABORTED")
FINALISER = FunctionSpec(
    "finaliser", "lambdas.finaliser.handler.lambda_handler", memory_mb=256, timeout_s=30,
    environment=(ENV_TABLE,),
    description="opencomposer finaliser: ends the job of an execution that ended outside its "
                "state machine's error handling",
)
# A dataset's build (contracts/datasets.py), started by the S3 ObjectCreated event of its upload
# (`datasets.upload_key`): reads every MIDI file of the zip with the training's own reader, so it
# needs numpy, mido and the `gan` package: the compose image, with this handler as its command.
# Sized for the largest collection the contract allows (20,000 small files; 10,000 measured by
# `make bench`): Lambda's longest timeout (15 min) and 4,096 MB (~2.3 vCPUs for the parallel
# per-file reads); /tmp holds the zip (256 MB at most) and the built pieces beside it.
DATASETS = FunctionSpec(
    "datasets", "lambdas.datasets.handler.lambda_handler", memory_mb=4096, timeout_s=900,
    environment=(ENV_TABLE, ENV_BUCKET),
    description="opencomposer datasets: builds an uploaded zip of MIDI files into training pieces",
    image=True,
    ephemeral_storage_mb=2048,
)
FUNCTIONS: tuple[FunctionSpec, ...] = (API, COMPOSE, STREAM, REDRIVE, FINALISER, DATASETS)


def environment(spec: FunctionSpec, values: dict[str, str]) -> dict[str, str]:
    """The function's whole environment: its variables from `values` (a KeyError names one the
    caller has no value for), plus Powertools'."""
    return {**{name: values[name] for name in spec.environment}, **POWERTOOLS_ENVIRONMENT}
