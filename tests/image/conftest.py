"""The training image's tests: they need a Docker daemon and the image built, which
`make image-test` provides (it starts dockerd where it can, builds the image, and sets
OPENCOMPOSER_IMAGE_TESTS=required, so a missing daemon or image fails them there). Anywhere
else (`make test`, a machine without Docker) they are skipped, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_job import DOCKER, ENV_REQUESTED

from opencomposer.local.docker_runtime import DEFAULT_IMAGE, ENV_IMAGE
from opencomposer.local.stack import LocalStack, LocalStackOptions


def _unavailable(image: str) -> str | None:
    """Why the image tests cannot run here, or None."""
    if shutil.which(DOCKER) is None:
        return f"no '{DOCKER}' command (apt-get install docker.io)"
    info = subprocess.run([DOCKER, "info"], capture_output=True, text=True)
    if info.returncode != 0:
        return "no Docker daemon answers (`make image-test` starts one as root)"
    if subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode != 0:
        return f"image {image} not built (`make image-test` builds it: training_container/image/build.sh)"
    return None


@pytest.fixture(scope="session")
def image() -> str:
    """The training image's tag; skips, or under `make image-test` fails, where it cannot run."""
    requested = os.environ.get(ENV_REQUESTED, "")
    if not requested:
        pytest.skip(f"the image tests run under `make image-test` (it starts Docker and builds the "
                    f"image; {ENV_REQUESTED}=1 runs them against a running daemon and a built image)")
    tag = os.environ.get(ENV_IMAGE) or DEFAULT_IMAGE
    reason = _unavailable(tag)
    if reason is not None:
        if requested == "required":
            pytest.fail(f"make image-test: {reason}")
        pytest.skip(reason)
    return tag


@pytest.fixture(scope="module")
def stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack whose trainings run in the image (as SageMaker local mode runs them)."""
    home = Path(tmp_path_factory.mktemp("opencomposer-image-home"))
    saved = {name: os.environ.get(name) for name in ("OPENCOMPOSER_TRAINING_RUNTIME", ENV_IMAGE)}
    os.environ.update({"OPENCOMPOSER_TRAINING_RUNTIME": "docker", ENV_IMAGE: image})
    try:
        with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=30, max_trainings=1)) as running:
            yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
