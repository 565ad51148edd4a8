"""The local resources: created from the contracts, the state machine from the ASL file as CDK would."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from contracts import deployment, functions, names, storage
from opencomposer.local import resources
from opencomposer.local.resources import (
    ASL_PATH,
    LocalNames,
    create_all,
    definition_substitutions,
    lambda_package,
    resource_specs,
    state_machine_definition,
)


def test_the_asl_file_is_used_byte_for_byte_with_only_its_placeholders_filled() -> None:
    text = ASL_PATH.read_text()
    subs = definition_substitutions(LocalNames())

    rendered = state_machine_definition(LocalNames())  # raises if a state's placeholder is left

    # Everything outside the placeholders is the file itself, and each placeholder holds its value.
    pieces = names.PLACEHOLDER.split(text)
    literals, placeholders = pieces[0::2], pieces[1::2]
    pattern = "(.*?)".join(re.escape(literal) for literal in literals)
    match = re.fullmatch(pattern, rendered, flags=re.DOTALL)
    assert match is not None
    assert list(match.groups()) == [subs.get(name, "${" + name + "}") for name in placeholders]


def test_a_placeholder_without_a_local_value_is_an_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asl = tmp_path / "training.asl.json"
    states = {"A": {"Type": "Pass", "Parameters": {"T": "${Missing}", "U": "${JobsTable}"}}}
    asl.write_text(json.dumps({"Comment": "${Ignored} is prose", "StartAt": "A", "States": states}))
    monkeypatch.setattr(resources, "ASL_PATH", asl)

    with pytest.raises(ValueError, match="placeholder") as caught:
        state_machine_definition(LocalNames())
    assert "Missing" in str(caught.value) and "Ignored" not in str(caught.value)


def test_specs_come_from_the_contracts() -> None:
    specs = resource_specs()

    table = specs["table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == [storage.PARTITION_KEY, storage.SORT_KEY]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == storage.OWNER_INDEX
    assert table["StreamSpecification"]["StreamViewType"] == storage.STREAM_VIEW_TYPE
    mapping = specs["event_source_mapping"]
    assert json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"]) == storage.STREAM_FILTER_PATTERN
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["FunctionName"] == LocalNames().function_name(functions.STREAM.key)


def test_each_local_function_is_its_contract_spec_with_only_the_environment_it_names() -> None:
    names = LocalNames()
    specs = {f["FunctionName"]: f for f in resource_specs(names)["functions"]}

    assert set(specs) == {names.function_name(spec.key) for spec in functions.FUNCTIONS}
    assert {"opencomposer-local-api", "opencomposer-local-compose", "opencomposer-local-stream",
            "opencomposer-local-redrive", "opencomposer-local-finaliser",
            "opencomposer-local-datasets"} == set(specs)
    for spec in functions.FUNCTIONS:
        declared = specs[names.function_name(spec.key)]
        assert declared["Handler"] == spec.handler
        assert declared["Runtime"] == spec.runtime
        assert declared["MemorySize"] == spec.memory_mb
        assert declared["Timeout"] == spec.timeout_s
        assert declared["Description"] == spec.description
        variables = declared["Environment"]["Variables"]
        assert set(variables) == set(spec.environment) | set(functions.POWERTOOLS_ENVIRONMENT)
    api = specs[names.function_name(functions.API.key)]["Environment"]["Variables"]
    assert api[functions.ENV_TABLE] == names.table and api[functions.ENV_BUCKET] == names.bucket
    stream = specs[names.function_name(functions.STREAM.key)]["Environment"]["Variables"]
    assert stream[functions.ENV_STATE_MACHINE_ARN] == names.state_machine_arn


def test_the_lambda_package_holds_the_handlers() -> None:
    with zipfile.ZipFile(io.BytesIO(lambda_package())) as archive:
        names = set(archive.namelist())
    assert {"lambdas/api/handler.py", "lambdas/stream/handler.py", "contracts/storage.py"} <= names
    assert not any("__pycache__" in n for n in names)
    assert not any(n.startswith("gan/") for n in names)  # the zip asset has no PyTorch code


def test_the_compose_functions_package_is_its_images_packages_under_their_import_names() -> None:
    with zipfile.ZipFile(io.BytesIO(lambda_package(functions.COMPOSE))) as archive:
        names = set(archive.namelist())
    expected = {"lambdas/compose/handler.py", "contracts/compositions.py", "gan/generate.py", "gan/midi.py"}
    assert expected <= names
    assert not any(n.startswith("training_container/") for n in names)


@pytest.fixture()
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.session.Session(region_name=deployment.LOCAL_REGION)


def test_create_all_makes_every_resource(aws: Any) -> None:
    names = LocalNames()

    created = create_all(aws, endpoint_url=None, names=names)  # type: ignore[arg-type]

    table = aws.client("dynamodb").describe_table(TableName=names.table)["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == storage.STREAM_VIEW_TYPE
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == storage.OWNER_INDEX
    aws.client("s3").head_bucket(Bucket=names.bucket)
    machine = aws.client("stepfunctions").describe_state_machine(stateMachineArn=created.state_machine_arn)
    assert machine["definition"] == state_machine_definition(names)
    assert created.state_machine_arn == names.state_machine_arn
    lam = aws.client("lambda")
    api = lam.get_function_configuration(FunctionName=names.function_name(functions.API.key))
    assert api["Handler"] == functions.API.handler
    assert api["Runtime"] == functions.API.runtime and api["MemorySize"] == functions.API.memory_mb
    assert api["Environment"]["Variables"][functions.ENV_TABLE] == names.table
    assert functions.ENV_STATE_MACHINE_ARN not in api["Environment"]["Variables"]
    mapping = lam.get_event_source_mapping(UUID=created.mapping_uuid)
    assert mapping["EventSourceArn"] == created.stream_arn
    assert mapping["FunctionArn"].endswith(names.function_name(functions.STREAM.key))
