"""Where the deployed code lives in the repository: one place for the paths the stack reads."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
LAMBDA_REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"
STATE_MACHINE_DEFINITION = REPO_ROOT / "statemachine" / "training.asl.json"
# The training image builds from the repository root (it copies the contracts package next to
# the training package), with this Dockerfile...
TRAINING_DOCKERFILE = "training_container/Dockerfile"
# ...and a build context cut down to what that Dockerfile copies.
TRAINING_IMAGE_CONTEXT = (
    TRAINING_DOCKERFILE,
    "training_container/requirements.txt",
    "training_container/gan",
    "contracts",
)
# The compose function's image builds from the repository root too (contracts.functions.
# COMPOSE_DOCKERFILE, under lambdas/): what it copies.
COMPOSE_IMAGE_CONTEXT = (
    "lambdas",
    "training_container/gan",
    "contracts",
)
