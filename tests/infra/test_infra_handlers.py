"""The functions the template deploys are the handlers in lambdas/, with the environment they read,
and the local stack declares the same settings."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from synthesized import Synth, as_list

from contracts import functions, storage, training
from infra.components.paths import LAMBDAS_DIR, STATE_MACHINE_DEFINITION
from infra.components.workflow import placeholders, task_resources
from lambdas.common import env

SHARED_ENV_NAMES = {name for spec in functions.FUNCTIONS for name in spec.environment}
# The parsers that read each handler's environment (lambdas/common/env.py).
ENV_PARSERS: dict[str, Callable[[], Any]] = {functions.API.handler: env.api_env,
                                             functions.STREAM.handler: env.stream_env,
                                             # the redrive runs the stream handler's start_job
                                             functions.REDRIVE.handler: env.stream_env}
HANDLERS = sorted(ENV_PARSERS)


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    """Handler → properties, for the functions built from lambdas/."""
    functions = [f["Properties"] for f in synth.resources("AWS::Lambda::Function").values()]
    return {f["Handler"]: f for f in functions if f.get("Handler", "").startswith("lambdas.")}


def test_the_template_deploys_every_handler(synth: Synth) -> None:
    assert set(_functions(synth)) == set(HANDLERS)


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_handler_named_in_the_template_exists_in_lambdas(synth: Synth, handler: str) -> None:
    module_name, _, function_name = _functions(synth)[handler]["Handler"].rpartition(".")
    # The asset's root is the folder holding lambdas/, as Lambda resolves the handler.
    path = LAMBDAS_DIR.parent / f"{module_name.replace('.', '/')}.py"
    assert path.is_file(), f"{module_name} is not in the Lambda asset"
    module = importlib.import_module(module_name)
    assert module.__file__ == str(path)
    assert callable(getattr(module, function_name, None)), f"{module_name} has no {function_name}"


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_handler_gets_the_environment_it_reads(synth: Synth, handler: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    variables = _functions(synth)[handler]["Environment"]["Variables"]
    shared = {name for name in variables if not name.startswith("POWERTOOLS_")}
    assert shared <= SHARED_ENV_NAMES, "an environment variable name that contracts.functions does not define"
    # Given exactly the template's variables (any value), the handler's settings parse.
    for name in SHARED_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name in shared:
        monkeypatch.setenv(name, "value-from-the-template")
    parse = ENV_PARSERS[handler]
    parse.cache_clear()  # type: ignore[attr-defined]
    try:
        parse()
    finally:
        parse.cache_clear()  # type: ignore[attr-defined]


# --- the local stack against the template -----------------------------------------------------

local = pytest.importorskip("opencomposer.local.resources")


def test_local_table_matches_the_template(synth: Synth) -> None:
    spec = local.resource_specs()["table"]
    (table,) = synth.resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == spec["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(spec["AttributeDefinitions"], key=str)
    (index,) = props["GlobalSecondaryIndexes"]
    (local_index,) = spec["GlobalSecondaryIndexes"]
    assert {k: index[k] for k in ("IndexName", "KeySchema", "Projection")} == local_index
    assert props["StreamSpecification"]["StreamViewType"] == spec["StreamSpecification"]["StreamViewType"]
    assert props["BillingMode"] == spec["BillingMode"]


def test_local_functions_match_the_template(synth: Synth) -> None:
    deployed = _functions(synth)
    for spec in local.resource_specs()["functions"]:
        props = deployed[spec["Handler"]]
        assert props["Timeout"] == spec["Timeout"]
        # Locally both functions get every variable; on AWS each gets what it reads.
        assert set(props["Environment"]["Variables"]) <= set(spec["Environment"]["Variables"])


def test_local_event_source_mapping_matches_the_template(synth: Synth) -> None:
    spec = local.resource_specs()["event_source_mapping"]
    # The stream's mapping; the redrive's (an SQS queue, AWS only) has no local counterpart.
    (mapping,) = [m for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
                  if synth.type_of(m["Properties"]["EventSourceArn"]) == "AWS::DynamoDB::Table"]
    props = mapping["Properties"]
    for key in ("StartingPosition", "BatchSize", "FunctionResponseTypes"):
        assert props[key] == spec[key], key
    patterns = [[json.loads(f["Pattern"]) for f in as_list(m["FilterCriteria"]["Filters"])]
                for m in (props, spec)]
    assert patterns[0] == patterns[1] == [storage.STREAM_FILTER_PATTERN]


def test_local_definition_substitutions_fill_the_same_placeholders(synth: Synth) -> None:
    local_names = set(local.resource_specs()["state_machine"]["definition_substitutions"])
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    used = placeholders(STATE_MACHINE_DEFINITION.read_text())  # those outside Comments
    assert local_names == used <= set(machine["Properties"]["DefinitionSubstitutions"])


def test_training_jobs_get_the_shared_environment_variable_names(synth: Synth) -> None:
    # The container finds its table, bucket and job id under settings' names (docs/contracts.md).
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    environments = [parameters["Environment"] for resource, parameters
                    in task_resources(machine["Properties"]["DefinitionString"])
                    if resource.startswith("arn:aws:states:::sagemaker:createTrainingJob")]
    assert environments
    expected = {training.ENV_TABLE, training.ENV_BUCKET, training.ENV_JOB_ID}
    for environment in environments:
        assert {name.removesuffix(".$") for name in environment} == expected
