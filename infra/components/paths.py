"""Where the deployed code lives in the repository: one place for the paths the stack reads."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
LAMBDA_REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"
STATE_MACHINE_DEFINITION = REPO_ROOT / "statemachine" / "training.asl.json"
TRAINING_CONTAINER_DIR = REPO_ROOT / "training_container"
