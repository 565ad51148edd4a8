"""The local resources: created from settings.py, the state machine from the ASL file as CDK would."""

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

from contracts import deployment, functions, storage
from opencomposer.local.resources import (
    ASL_PATH,
    LocalNames,
    create_all,
    definition_substitutions,
    lambda_package,
    render_definition,
    resource_specs,
    unfilled_placeholders,
)


def test_the_asl_file_is_used_byte_for_byte_with_only_its_placeholders_filled() -> None:
    text = ASL_PATH.read_text()
    subs = definition_substitutions(LocalNames())

    rendered = render_definition(text, subs)

    assert unfilled_placeholders(rendered) == []
    # Everything outside the placeholders is the file itself, and each placeholder holds its value.
    pieces = re.split(r"\$\{(\w+)\}", text)
    literals, placeholders = pieces[0::2], pieces[1::2]
    pattern = "(.*?)".join(re.escape(literal) for literal in literals)
    match = re.fullmatch(pattern, rendered, flags=re.DOTALL)
    assert match is not None
    assert list(match.groups()) == [subs.get(name, "${" + name + "}") for name in placeholders]


def test_a_placeholder_without_a_local_value_is_reported() -> None:
    definition = json.dumps({"Comment": "${Ignored}", "States": {"A": {"Parameters": {"T": "${Missing}"}}}})
    assert unfilled_placeholders(render_definition(definition, {})) == ["Missing"]


def test_specs_come_from_the_shared_settings() -> None:
    specs = resource_specs()

    table = specs["table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == [storage.PARTITION_KEY, storage.SORT_KEY]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == storage.OWNER_INDEX
    assert table["StreamSpecification"]["StreamViewType"] == storage.STREAM_VIEW_TYPE
    handlers = {f["Handler"] for f in specs["functions"]}
    assert handlers == {functions.API.handler, functions.STREAM.handler}
    for function in specs["functions"]:
        assert set(function["Environment"]["Variables"]) >= {
            functions.ENV_TABLE,
            functions.ENV_BUCKET,
            functions.ENV_STATE_MACHINE_ARN,
        }
    mapping = specs["event_source_mapping"]
    assert json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"]) == storage.STREAM_FILTER_PATTERN
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_lambda_package_holds_the_handlers() -> None:
    with zipfile.ZipFile(io.BytesIO(lambda_package())) as archive:
        names = set(archive.namelist())
    assert {"lambdas/api/handler.py", "lambdas/stream/handler.py", "contracts/storage.py"} <= names
    assert not any("__pycache__" in n for n in names)


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
    assert machine["definition"] == render_definition(ASL_PATH.read_text(), definition_substitutions(names))
    assert created.state_machine_arn == names.state_machine_arn
    lam = aws.client("lambda")
    api = lam.get_function_configuration(FunctionName=names.api_function)
    assert api["Handler"] == functions.API.handler
    assert api["Environment"]["Variables"][functions.ENV_TABLE] == names.table
    mapping = lam.get_event_source_mapping(UUID=created.mapping_uuid)
    assert mapping["EventSourceArn"] == created.stream_arn
    assert mapping["FunctionArn"].endswith(names.stream_function)
