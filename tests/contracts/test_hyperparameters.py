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


NUMBERS = [spec for spec in hyperparameters.HYPERPARAMETERS if not spec.choices]
CHOICES = [spec for spec in hyperparameters.HYPERPARAMETERS if spec.choices]


def _api_accepts(name: str, value: object) -> bool:
    try:
        CreateJobRequest.model_validate_json(json.dumps({"hyperparameters": {name: value}}))
    except ValidationError:
        return False
    return True


def _container_accepts(name: str, value: object) -> bool:
    try:
        ContainerHyperparameters.parse(hyperparameters.as_sagemaker({name: value}))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.name)
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


def test_model_size_is_a_choice_of_presets_with_the_cpu_model_as_default() -> None:
    spec = hyperparameters.BY_NAME["model_size"]

    assert [spec] == CHOICES
    assert (spec.kind, spec.choices, spec.default) == (str, ("small", "large"), "small")
    assert spec.range_text() == "small or large"


@pytest.mark.parametrize("spec", CHOICES, ids=lambda s: s.name)
def test_the_api_and_the_container_accept_the_same_choices(spec: Hyperparameter) -> None:
    near_misses = ["", "huge", spec.choices[0].upper(), f" {spec.choices[0]}", f"{spec.choices[0]}\n",
                   f"{spec.choices[0]}|{spec.choices[1]}", 1, None]
    for value in spec.choices:
        assert _api_accepts(spec.name, value) and _container_accepts(spec.name, value), value
    for value in near_misses:
        assert not _api_accepts(spec.name, value), value
        if value is not None:  # the container reads a missing value (None) as "not given"
            assert not _container_accepts(spec.name, value), value


@pytest.mark.parametrize("raw", ["large", '"large"'])
def test_a_choice_arrives_as_sagemaker_passes_it_plain_or_json_encoded(raw: str) -> None:
    # The API's state machine passes the name itself; the SageMaker Python SDK JSON-encodes it.
    assert hyperparameters.parse_sagemaker({"model_size": raw})["model_size"] == "large"


def test_a_choice_outside_the_presets_is_refused_naming_the_hyperparameter_and_the_choices() -> None:
    with pytest.raises(ValueError, match="hyperparameter model_size: 'huge' is not one of small, large"):
        hyperparameters.parse_sagemaker({"model_size": "huge"})


def test_the_api_schema_lists_the_choices() -> None:
    schema = CreateJobRequest.model_json_schema(mode="validation")
    field = schema["$defs"]["Hyperparameters"]["properties"]["model_size"]

    assert field["enum"] == ["small", "large"]
    assert field["default"] == "small" and field["type"] == "string"


def test_a_hyperparameter_is_either_a_number_with_a_range_or_a_str_with_choices() -> None:
    with pytest.raises(ValueError, match="choices"):
        Hyperparameter("x", str, "a", 0, 1, "help")
    with pytest.raises(ValueError, match="choices"):
        Hyperparameter("x", int, 1, 0, 2, "help", choices=("a",))
