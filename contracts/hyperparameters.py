"""What a training job may set: each hyperparameter's name, type, range (or choices), default and
meaning.

The API's request model (`lambdas/common/models.py`) and the container's parser
(`gan/train.py`) are both built from `HYPERPARAMETERS`, so a range or a default cannot differ
between what the API accepts and what the training runs. The defaults must train a useful model
quickly on a laptop's CPU; `bench/bench_training.py` measures how quickly and how well.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Value = int | float | str


@dataclass(frozen=True)
class Hyperparameter:
    """A number in a range (`kind` int or float, `minimum`..`maximum`), or one of a few names
    (`kind` str, `choices`; no range)."""

    name: str
    kind: type[int] | type[float] | type[str]
    default: Value
    minimum: int | float | None
    maximum: int | float | None
    help: str
    # learning_rate lies strictly between its bounds; the others include theirs.
    exclusive: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind is str) != bool(self.choices) or (self.kind is str) != (self.minimum is None):
            raise ValueError(f"hyperparameter {self.name}: a str has choices and no range, "
                             "a number a range and no choices")

    def bounds(self) -> dict[str, Any]:
        """The constraint as pydantic Field keywords: the range (`ge`/`le` or `gt`/`lt`), or for
        a choice a pattern that admits exactly the choices, and the choices as the JSON Schema's
        `enum` (so the field stays a plain `str`, and a request model built from `kind` and
        `bounds()` alone refuses any other name)."""
        if self.choices:
            alternatives = "|".join(re.escape(choice) for choice in self.choices)
            return {"pattern": f"^(?:{alternatives})$", "json_schema_extra": {"enum": list(self.choices)}}
        if self.exclusive:
            return {"gt": self.minimum, "lt": self.maximum}
        return {"ge": self.minimum, "le": self.maximum}

    def range_text(self) -> str:
        if self.choices:
            return " or ".join(self.choices)
        low, high = ("(", ")") if self.exclusive else ("", "")
        sep = ", " if self.exclusive else "-"
        return f"{low}{self.minimum:g}{sep}{self.maximum:g}{high}" if self.kind is float else (
            f"{self.minimum}-{self.maximum}")

    def error(self, value: Any) -> str | None:
        """Why `value` (already a number, or a str for a choice) is not allowed, or None."""
        if self.choices:
            if value not in self.choices:
                return f"hyperparameter {self.name}: {value!r} is not one of {', '.join(self.choices)}"
            return None
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
    # A choice, not a number: the presets' shapes are gan.model.MODEL_SIZES'. Last, so the
    # fields before it keep their order (the API's request model, the CLI's flags).
    Hyperparameter("model_size", str, "small", None, None,
                   "the networks' size: small trains in minutes on a CPU, large is sized for a GPU",
                   choices=("small", "large")),
)
BY_NAME: dict[str, Hyperparameter] = {h.name: h for h in HYPERPARAMETERS}
DEFAULTS: dict[str, Value] = {h.name: h.default for h in HYPERPARAMETERS}


def as_sagemaker(values: Mapping[str, Any]) -> dict[str, str]:
    """SageMaker passes every hyperparameter as a string."""
    return {name: str(values[name]) for name in BY_NAME if name in values}


def _choice(spec: Hyperparameter, raw: Any) -> str:
    """A choice as SageMaker passes it: the name itself, or the name JSON-encoded (the Python SDK's
    form, '"large"')."""
    if isinstance(raw, str) and raw.startswith('"'):
        with contextlib.suppress(ValueError):  # a name that merely starts with a quote
            raw = json.loads(raw)
    if not isinstance(raw, str):
        raise ValueError(f"hyperparameter {spec.name}: {raw!r} is not one of {', '.join(spec.choices)}")
    return raw


def parse_sagemaker(values: Mapping[str, Any]) -> dict[str, Value]:
    """From SageMaker's strings (or numbers) to checked values, defaults filled; names that are
    not ours are ignored (SageMaker adds its own). ValueError names the hyperparameter."""
    parsed: dict[str, Value] = dict(DEFAULTS)
    for spec in HYPERPARAMETERS:
        raw = values.get(spec.name)
        if raw is None:
            continue
        if spec.choices:
            choice = _choice(spec, raw)
            if (problem := spec.error(choice)) is not None:
                raise ValueError(problem)
            parsed[spec.name] = choice
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
