"""Datasets on AWS: the build function (the compose image with its own command, sized for the
largest collection), started by the bucket's notification for the upload keys only, with exactly
the grants its code uses; the table's second index; the api's dataset grants."""

from __future__ import annotations

from typing import Any

from synthesized import Synth

from contracts import datasets, functions, storage

SPEC = functions.DATASETS


def _bucket(synth: Synth) -> str:
    (bucket,) = [lid for lid, b in synth.resources("AWS::S3::Bucket").items()
                 if "LoggingConfiguration" in b["Properties"]]  # the artifacts bucket
    return bucket


def _objects(synth: Synth, key_pattern: str) -> str:
    return f"<{_bucket(synth)}.Arn>/{key_pattern}"


def _own_grants(synth: Synth, handler: str) -> dict[str, set[str]]:
    return {action: resources for action, resources in synth.grants(synth.role_of(handler)).items()
            if action.split(":")[0] not in {"logs", "xray"}}


def test_the_build_function_is_the_compose_image_with_its_own_command_and_room_for_a_large_zip(
    synth: Synth,
) -> None:
    _, props = synth.function_of(SPEC.handler)
    _, compose = synth.function_of(functions.COMPOSE.handler)

    assert props["PackageType"] == "Image" and props["ImageConfig"] == {"Command": [SPEC.handler]}
    assert props["Code"]["ImageUri"] == compose["Code"]["ImageUri"]  # one image, two commands
    assert (props["MemorySize"], props["Timeout"]) == (SPEC.memory_mb, SPEC.timeout_s)
    assert props["Timeout"] == 900  # Lambda's longest
    assert props["EphemeralStorage"] == {"Size": SPEC.ephemeral_storage_mb}
    assert SPEC.ephemeral_storage_mb * 1024 * 1024 > 2 * datasets.MAX_UPLOAD_BYTES
    assert set(props["Environment"]["Variables"]) == {functions.ENV_TABLE, functions.ENV_BUCKET,
                                                      *functions.POWERTOOLS_ENVIRONMENT}


def test_the_bucket_notifies_the_build_function_of_uploads_only(synth: Synth) -> None:
    (notifications,) = synth.resources("Custom::S3BucketNotifications").values()
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": _bucket(synth)}
    (config,) = props["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    function_id, _ = synth.function_of(SPEC.handler)
    assert config["LambdaFunctionArn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert config["Events"] == ["s3:ObjectCreated:*"]
    rules = {rule["Name"].lower(): rule["Value"] for rule in config["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": datasets.DATASETS_PREFIX, "suffix": "collection.zip"}
    # the filter matches an upload key and nothing else the layout writes
    upload = datasets.upload_key("0" * 32)
    assert upload.startswith(rules["prefix"]) and upload.endswith(rules["suffix"])
    for other in (datasets.pieces_key("0" * 32), datasets.report_key("0" * 32), storage.melody_key("0" * 32)):
        assert not (other.startswith(rules["prefix"]) and other.endswith(rules["suffix"]))
    # S3 may invoke it, from this bucket only
    permissions = [p["Properties"] for p in synth.resources("AWS::Lambda::Permission").values()
                   if p["Properties"]["Principal"] == "s3.amazonaws.com"]
    assert [p["FunctionName"] for p in permissions] == [{"Fn::GetAtt": [function_id, "Arn"]}]
    assert permissions[0]["SourceArn"] == {"Fn::GetAtt": [_bucket(synth), "Arn"]}


def test_the_build_function_may_touch_datasets_only(synth: Synth) -> None:
    (table,) = synth.resources("AWS::DynamoDB::Table")
    upload = _objects(synth, datasets.upload_key("*"))
    assert _own_grants(synth, SPEC.handler) == {
        "dynamodb:GetItem": {f"<{table}.Arn>"},
        "dynamodb:UpdateItem": {f"<{table}.Arn>"},
        "s3:GetObject": {upload},
        "s3:DeleteObject": {upload},
        "s3:PutObject": {_objects(synth, f"{datasets.built_prefix('*')}*"),
                         _objects(synth, datasets.report_key("*"))},
    }


def test_the_table_lists_datasets_by_owner_in_a_second_index(synth: Synth) -> None:
    (table,) = synth.resources("AWS::DynamoDB::Table").values()
    indexes = {i["IndexName"]: i for i in table["Properties"]["GlobalSecondaryIndexes"]}
    index: dict[str, Any] = indexes[datasets.DATASET_OWNER_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": datasets.DATASET_OWNER_ATTRIBUTE, "KeyType": "HASH"},
        {"AttributeName": datasets.DATASET_OWNER_INDEX_SORT_KEY, "KeyType": "RANGE"}]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    # the local stack creates the same index (`opencomposer.local.resources.table_spec`)
    from opencomposer.local.resources import resource_specs

    local = {i["IndexName"]: i for i in resource_specs()["table"]["GlobalSecondaryIndexes"]}
    assert local[datasets.DATASET_OWNER_INDEX]["KeySchema"] == index["KeySchema"]


def test_the_api_may_presign_uploads_and_reports_list_and_delete_datasets(synth: Synth) -> None:
    (table,) = synth.resources("AWS::DynamoDB::Table")
    grants = _own_grants(synth, functions.API.handler)
    assert f"<{table}.Arn>/index/{datasets.DATASET_OWNER_INDEX}" in grants["dynamodb:Query"]
    assert _objects(synth, datasets.upload_key("*")) in grants["s3:PutObject"]
    assert _objects(synth, datasets.report_key("*")) in grants["s3:GetObject"]
    assert _objects(synth, f"{datasets.DATASETS_PREFIX}*") in grants["s3:DeleteObject"]
    # no read of a dataset's upload or built pieces (the build's and the training's); the index
    # is read by POST /jobs to count what a filter leaves
    reads = {r for r in grants["s3:GetObject"] if "/datasets/" in r}
    assert reads <= {_objects(synth, datasets.report_key("*")), _objects(synth, datasets.index_key("*"))}
