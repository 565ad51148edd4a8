"""The recorder the call check reads (`gan.aws_calls`, `opencomposer.local.aws_calls`): what it
writes is what the service receives, presigned URLs included, and nothing when it is off."""

from __future__ import annotations

from pathlib import Path

import boto3
from boto3.dynamodb.conditions import Attr
from moto import mock_aws

from contracts import functions, storage
from opencomposer.local import aws_calls

TABLE = "jobs"


def test_nothing_is_hooked_without_the_variable() -> None:
    assert aws_calls.install_for_state_machine({}) is None
    assert aws_calls.install_for_lambda({"_HANDLER": functions.API.handler}) is None


def test_a_lambda_records_under_its_functions_key() -> None:
    assert aws_calls.function_component(functions.STREAM.handler) == functions.STREAM.key
    assert aws_calls.function_component("somewhere.else.handler") == "somewhere.else.handler"


def test_calls_are_recorded_in_the_low_level_form_presigns_too_until_closed(tmp_path: Path) -> None:
    environ = {aws_calls.ENV_RECORD: str(tmp_path), "_HANDLER": functions.API.handler}
    with mock_aws():  # inside: moto gives boto3 a default session of its own
        recorder = aws_calls.install_for_lambda(environ)
        assert recorder is not None
        try:
            dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
            table = dynamodb.create_table(
                TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                           {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}])
            table.put_item(Item={**storage.job_key("1"), "status": "SUBMITTED"},
                           ConditionExpression=Attr("pk").not_exists())
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": storage.melody_key("1")})
        finally:
            recorder.close()
        s3.list_buckets()  # after close: not recorded

    calls = {c["operation"]: c for c in aws_calls.read(tmp_path)}
    assert set(calls) == {"CreateTable", "PutItem", "GetObject"}
    put = calls["PutItem"]
    assert put["component"] == functions.API.key and put["signing_name"] == "dynamodb"
    # the resource layer's Python values and condition objects, as DynamoDB receives them
    assert put["params"]["Item"]["pk"] == {"S": storage.job_pk("1")}
    assert put["params"]["ConditionExpression"] == "attribute_not_exists(#n0)"
    presigned = calls["GetObject"]
    assert presigned["presigned"] is True and presigned["params"]["Key"] == storage.melody_key("1")
