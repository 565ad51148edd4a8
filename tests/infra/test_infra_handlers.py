"""The functions the template deploys: each is its `contracts.functions` spec (handler, runtime,
memory, timeout, environment) and runs a handler in lambdas/ that parses that environment; and
the local stack declares the same functions and resources. A container image function (the
compose function) has no Runtime or Handler in the template: its image command names the
handler, and its base image's Python is the contract's runtime (test_infra_compose)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from synthesized import Synth, as_list, handler_of

from contracts import functions, storage, training
from contracts.names import placeholders
from infra.components.paths import LAMBDAS_DIR, STATE_MACHINE_DEFINITION
from infra.components.workflow import task_resources
from lambdas.common import env

SHARED_ENV_NAMES = {name for spec in functions.FUNCTIONS for name in spec.environment}
# The resource each variable's value names (a Ref to it in the template).
ENV_RESOURCE_TYPES = {functions.ENV_TABLE: "AWS::DynamoDB::Table",
                      functions.ENV_BUCKET: "AWS::S3::Bucket",
                      functions.ENV_STATE_MACHINE_ARN: "AWS::StepFunctions::StateMachine"}
# The parsers that read each handler's environment (lambdas/common/env.py).
ENV_PARSERS: dict[str, Callable[[], Any]] = {functions.API.handler: env.api_env,
                                             functions.COMPOSE.handler: env.compose_env,
                                             functions.STREAM.handler: env.stream_env,
                                             # the redrive runs the stream handler's start_job
                                             functions.REDRIVE.handler: env.stream_env,
                                             functions.FINALISER.handler: env.finaliser_env,
                                             functions.DATASETS.handler: env.datasets_env}
HANDLERS = sorted(ENV_PARSERS)


def _key(spec: functions.FunctionSpec) -> str:
    return spec.key


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    """Handler → properties, for the functions built from lambdas/ (zip and image)."""
    return {handler_of(f): f for f in synth.lambda_functions().values()}


def _deployed(synth: Synth, spec: functions.FunctionSpec) -> dict[str, Any]:
    return synth.function_of(spec.handler)[1]


def test_the_template_deploys_every_function_of_the_contract_and_no_other(synth: Synth) -> None:
    assert sorted(_functions(synth)) == sorted(spec.handler for spec in functions.FUNCTIONS) == HANDLERS


@pytest.mark.parametrize("spec", functions.FUNCTIONS, ids=_key)
def test_each_deployed_function_is_its_contract_spec(synth: Synth, spec: functions.FunctionSpec) -> None:
    props = _deployed(synth, spec)
    if spec.image:
        assert props["PackageType"] == "Image" and "ImageUri" in props["Code"]
        assert "Runtime" not in props and "Handler" not in props
        assert props["ImageConfig"] == {"Command": [spec.handler]}
    else:
        assert props.get("PackageType", "Zip") == "Zip" and "S3Key" in props["Code"]
        assert props["Runtime"] == spec.runtime
        assert props["Handler"] == spec.handler
    assert props["Architectures"] == [functions.ARCHITECTURE]
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_s
    assert props["Description"] == spec.description
    variables = props["Environment"]["Variables"]
    assert set(variables) == {*spec.environment, *functions.POWERTOOLS_ENVIRONMENT}
    assert {name: variables[name] for name in functions.POWERTOOLS_ENVIRONMENT} == (
        functions.POWERTOOLS_ENVIRONMENT)
    for name in spec.environment:
        assert synth.type_of(variables[name]) == ENV_RESOURCE_TYPES[name], name


def test_the_api_timeout_fits_api_gateways_integration_timeout(synth: Synth) -> None:
    assert _deployed(synth, functions.API)["Timeout"] <= 29


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_handler_named_in_the_template_exists_in_lambdas(synth: Synth, handler: str) -> None:
    module_name, _, function_name = handler_of(_functions(synth)[handler]).rpartition(".")
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
    shared = {name for name in variables if name not in functions.POWERTOOLS_ENVIRONMENT}
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


def _local_functions() -> dict[str, dict[str, Any]]:
    """Handler → create_function arguments, for the functions the local stack declares."""
    return {spec["Handler"]: spec for spec in local.resource_specs()["functions"]}


def test_the_local_stack_declares_every_function_of_the_contract() -> None:
    assert sorted(_local_functions()) == sorted(spec.handler for spec in functions.FUNCTIONS)


@pytest.mark.parametrize("spec", functions.FUNCTIONS, ids=_key)
def test_each_local_function_is_declared_as_deployed(synth: Synth, spec: functions.FunctionSpec) -> None:
    deployed, declared = _deployed(synth, spec), _local_functions()[spec.handler]
    for key in ("MemorySize", "Timeout", "Description"):
        assert declared[key] == deployed[key], key
    # An image function's handler is its image command, its runtime the base image's Python
    # (the contract's, checked on the Dockerfile and the asset's build arguments).
    assert declared["Handler"] == handler_of(deployed) == spec.handler
    assert declared["Runtime"] == deployed.get("Runtime", functions.RUNTIME) == spec.runtime
    deployed_variables = deployed["Environment"]["Variables"]
    declared_variables = declared["Environment"]["Variables"]
    assert set(declared_variables) == set(deployed_variables)
    # The template's literal values (Powertools' settings) are the local values too.
    literals = {name: value for name, value in deployed_variables.items() if isinstance(value, str)}
    assert literals
    assert {name: declared_variables[name] for name in literals} == literals


def test_local_table_matches_the_template(synth: Synth) -> None:
    spec = local.resource_specs()["table"]
    (table,) = synth.resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == spec["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(spec["AttributeDefinitions"], key=str)
    indexes = [{k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
               for index in props["GlobalSecondaryIndexes"]]
    assert sorted(indexes, key=str) == sorted(spec["GlobalSecondaryIndexes"], key=str)
    assert len(indexes) == 2  # jobs by owner, datasets by owner
    assert props["StreamSpecification"]["StreamViewType"] == spec["StreamSpecification"]["StreamViewType"]
    assert props["BillingMode"] == spec["BillingMode"]


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
    # The container finds its table, bucket and job id under the contract's names.
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    environments = [parameters["Environment"] for resource, parameters
                    in task_resources(machine["Properties"]["DefinitionString"])
                    if resource.startswith("arn:aws:states:::sagemaker:createTrainingJob")]
    assert environments
    for environment in environments:
        assert {name.removesuffix(".$") for name in environment} == set(training.JOB_ENVIRONMENT)
        # The region (SageMaker sets none in a training container) is the stack's own.
        for name in training.REGION_ENVIRONMENT:
            assert environment[name] == f"${{{training.REGION_PLACEHOLDER}}}"
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    assert substitutions[training.REGION_PLACEHOLDER] == {"Ref": "AWS::Region"}
