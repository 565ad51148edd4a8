"""The API and the training container accept exactly the same hyperparameters: every value the
API lets through (and hands the container as SageMaker's strings) trains, every value it refuses
the container refuses too, and both fill in the contract's defaults."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts import hyperparameters
from contracts.hyperparameters import Hyperparameter
from gan.train import Hyperparameters as ContainerHyperparameters
from lambdas.common.models import CreateJobRequest


def _candidates(spec: Hyperparameter) -> list[int | float]:
    """Values of the type a JSON body carries, at and around each bound."""
    if spec.kind is int:
        low, high = int(spec.minimum), int(spec.maximum)
        return [low - 1, low, low + 1, int(spec.default), high - 1, high, high + 1]
    step = (spec.maximum - spec.minimum) / 1000
    return [spec.minimum - step, spec.minimum, spec.minimum + step, float(spec.default),
            spec.maximum - step, spec.maximum, spec.maximum + step]


def _api_accepts(name: str, value: int | float) -> bool:
    try:
        CreateJobRequest.model_validate_json(json.dumps({"hyperparameters": {name: value}}))
    except ValidationError:
        return False
    return True


def _container_accepts(name: str, value: int | float) -> bool:
    try:
        ContainerHyperparameters.parse(hyperparameters.as_sagemaker({name: value}))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("spec", hyperparameters.HYPERPARAMETERS, ids=lambda s: s.name)
def test_the_api_and_the_container_accept_the_same_values(spec: Hyperparameter) -> None:
    verdicts = [(value, _api_accepts(spec.name, value), _container_accepts(spec.name, value))
                for value in _candidates(spec)]

    assert all(api == container for _, api, container in verdicts), verdicts
    # Both bounds were reached: the candidates straddle a refused and an accepted value on each side.
    assert [api for _, api, _ in verdicts] == [False, not spec.exclusive, True, True, True,
                                               not spec.exclusive, False]


def test_both_sides_fill_in_the_contracts_defaults() -> None:
    api = CreateJobRequest.model_validate_json("{}").hyperparameters.model_dump()
    container = vars(ContainerHyperparameters.parse({}))

    assert api == container == hyperparameters.DEFAULTS
