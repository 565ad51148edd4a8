"""The trained generators this warm function holds: each job's model downloaded and loaded once
per container (on AWS) or worker (locally), so only a container's first composition with a
job pays for fetching and loading it."""

from __future__ import annotations

import io
import tarfile
import threading
from collections import OrderedDict

from contracts import training
from gan.generate import load_generator
from gan.model import Generator
from lambdas.common.dal import ArtifactsStore
from lambdas.common.errors import JobStateConflictError

# A default generator's weights are a few MB; the function's memory (contracts.functions.COMPOSE)
# holds far more, but a handful covers a user moving between their models.
CACHED_MODELS = 8


def unpack(archive: bytes) -> Generator:
    """model.tar.gz (SageMaker's packing of SM_MODEL_DIR) → the generator in it, in eval mode."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = next(
            (m for m in tar.getmembers() if m.isfile() and m.name.lstrip("./") == training.MODEL_FILE), None
        )
        if member is None:
            raise JobStateConflictError(f"the job's model.tar.gz holds no {training.MODEL_FILE}")
        data = tar.extractfile(member)
        assert data is not None  # a regular file always has a body
        return load_generator(io.BytesIO(data.read()))  # type: ignore[arg-type]  # torch.load reads a file object too


class ModelStore:
    """Least recently used generators by model key (a key names one training's one model)."""

    def __init__(self, artifacts: ArtifactsStore, size: int = CACHED_MODELS) -> None:
        self._artifacts = artifacts
        self._size = size
        self._models: OrderedDict[str, Generator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Generator:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        archive = self._artifacts.get(key, denied_is_missing=True)
        if archive is None:
            raise JobStateConflictError("the job's model is not in the bucket (deleted, or not readable)")
        generator = unpack(archive)
        with self._lock:
            self._models[key] = generator
            while len(self._models) > self._size:
                self._models.popitem(last=False)
        return generator
