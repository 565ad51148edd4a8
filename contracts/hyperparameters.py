"""What a training job may set: each hyperparameter's name, type, range, default and meaning.

The API's request model (`lambdas/common/models.py`) and the container's parser
(`gan/train.py`) are both built from `HYPERPARAMETERS`, so a range or a default cannot differ
between what the API accepts and what the training runs. The defaults must train a useful model
quickly on a laptop's CPU; `bench/bench_training.py` measures how quickly and how well.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    kind: type[int] | type[float]
    default: int | float
    minimum: int | float
    maximum: int | float
    help: str
    # learning_rate lies strictly between its bounds; the others include theirs.
    exclusive: bool = False

    def bounds(self) -> dict[str, int | float]:
        """The range as pydantic's / JSON Schema's keywords (`ge`/`le` or `gt`/`lt`)."""
        if self.exclusive:
            return {"gt": self.minimum, "lt": self.maximum}
        return {"ge": self.minimum, "le": self.maximum}

    def range_text(self) -> str:
        low, high = ("(", ")") if self.exclusive else ("", "")
        sep = ", " if self.exclusive else "-"
        return f"{low}{self.minimum:g}{sep}{self.maximum:g}{high}" if self.kind is float else (
            f"{self.minimum}-{self.maximum}")

    def error(self, value: Any) -> str | None:
        """Why `value` (already a number) is not allowed, or None."""
        if not math.isfinite(value):
            return f"hyperparameter {self.name}: {value!r} is not a finite number"
        if self.kind is int and (isinstance(value, bool) or value != int(value)):
            return f"hyperparameter {self.name}: {value!r} is not a whole number"
        inside = (self.minimum < value < self.maximum) if self.exclusive else (
            self.minimum <= value <= self.maximum)
        if not inside:
            return f"hyperparameter {self.name}: {value!r} is outside {self.range_text()}"
        return None


LEARNING_RATE_FLOOR = 1e-10
HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter("epochs", int, 20, 1, 10_000,
                   "training length: each epoch is a fixed number of generator updates"),
    # Above 1e-10, not merely above 0: DynamoDB's numbers stop at 1e-130 (a job item could not
    # hold a smaller rate), and no smaller rate moves float32 weights anyway.
    Hyperparameter("learning_rate", float, 0.001, LEARNING_RATE_FLOOR, 1.0,
                   "Adam's step size at the start (it decays along a cosine to a tenth)",
                   exclusive=True),
    Hyperparameter("update_ratio", int, 5, 1, 20, "critic updates per generator update"),
    Hyperparameter("batch_size", int, 64, 1, 1024, "4-bar windows per update"),
    Hyperparameter("seed", int, 0, 0, 2**63, "the random seed: the same seed trains the same model"),
)
BY_NAME: dict[str, Hyperparameter] = {h.name: h for h in HYPERPARAMETERS}
DEFAULTS: dict[str, int | float] = {h.name: h.default for h in HYPERPARAMETERS}


def as_sagemaker(values: Mapping[str, Any]) -> dict[str, str]:
    """SageMaker passes every hyperparameter as a string."""
    return {name: str(values[name]) for name in BY_NAME if name in values}


def parse_sagemaker(values: Mapping[str, Any]) -> dict[str, int | float]:
    """From SageMaker's strings (or numbers) to checked values, defaults filled; names that are
    not ours are ignored (SageMaker adds its own). ValueError names the hyperparameter."""
    parsed: dict[str, int | float] = dict(DEFAULTS)
    for spec in HYPERPARAMETERS:
        raw = values.get(spec.name)
        if raw is None:
            continue
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
            if isinstance(value, str):  # the Python SDK JSON-encodes strings once more
                value = json.loads(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(type(value).__name__)
        except (TypeError, ValueError) as e:
            kind = "whole number" if spec.kind is int else "number"
            raise ValueError(f"hyperparameter {spec.name}: {raw!r} is not a {kind}") from e
        if (problem := spec.error(value)) is not None:
            raise ValueError(problem)
        parsed[spec.name] = spec.kind(value)
    return parsed
