"""What the synthesised template deploys: table, bucket, stream trigger, workflow, API, outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import BundlingOptions, DockerImage
from aws_cdk.assertions import Match
from synthesized import Synth, as_list

from contracts import deployment, functions, routes, storage
from contracts.names import all_placeholders, placeholders
from infra.components import functions as function_components
from infra.components.paths import REPO_ROOT, STATE_MACHINE_DEFINITION, TRAINING_DOCKERFILE
from infra.nag import render


def test_jobs_table_has_the_shared_keys_index_stream_recovery_and_encryption(synth: Synth) -> None:
    synth.assertions.has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": storage.PARTITION_KEY, "KeyType": "HASH"},
                      {"AttributeName": storage.SORT_KEY, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": Match.array_with([Match.object_like({
            "IndexName": storage.OWNER_INDEX,
            "KeySchema": [{"AttributeName": storage.OWNER_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                          {"AttributeName": storage.OWNER_INDEX_SORT_KEY, "KeyType": "RANGE"}],
        })]),
        "StreamSpecification": {"StreamViewType": storage.STREAM_VIEW_TYPE},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "BillingMode": "PAY_PER_REQUEST",
    })


def test_every_bucket_blocks_public_access_enforces_tls_and_is_encrypted(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # artifacts and its access logs
    policies = {render(p["Properties"]["Bucket"]): p["Properties"]["PolicyDocument"]["Statement"]
                for p in synth.resources("AWS::S3::BucketPolicy").values()}
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        denies_plain_http = [s for s in policies[f"<{lid}>"] if s["Effect"] == "Deny"
                             and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
        assert denies_plain_http, f"{lid} accepts requests without TLS"


def test_artifacts_bucket_logs_access_and_expires_tagged_samples(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket").values()
    (bucket,) = [b for b in buckets if "LoggingConfiguration" in b["Properties"]]
    props = bucket["Properties"]
    assert synth.type_of(props["LoggingConfiguration"]["DestinationBucketName"]) == "AWS::S3::Bucket"
    rules = props["LifecycleConfiguration"]["Rules"]
    (samples,) = [r for r in rules if r.get("TagFilters")]
    assert samples["TagFilters"] == [{"Key": storage.SAMPLE_TAG_KEY, "Value": storage.SAMPLE_TAG_VALUE}]
    assert samples["Status"] == "Enabled" and 0 < samples["ExpirationInDays"] <= 90


def _mapping_from(synth: Synth, source_type: str) -> dict[str, Any]:
    """The properties of the one event source mapping that reads this type of resource."""
    (props,) = [m["Properties"] for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
                if synth.type_of(m["Properties"]["EventSourceArn"]) == source_type]
    return props


def test_stream_trigger_passes_only_job_inserts_and_never_drops_a_record(synth: Synth) -> None:
    synth.assertions.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FilterCriteria": {"Filters": [{"Pattern": Match.serialized_json(storage.STREAM_FILTER_PATTERN)}]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
    })
    props = _mapping_from(synth, "AWS::DynamoDB::Table")
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 24 * 3600  # a stream keeps records a day
    function = synth.template["Resources"][props["FunctionName"]["Ref"]]
    assert function["Properties"]["Handler"] == functions.STREAM.handler
    assert synth.type_of(props["EventSourceArn"]) == "AWS::DynamoDB::Table"


def test_failed_stream_batches_are_redriven_and_what_the_redrive_cannot_settle_raises_an_alarm(
    synth: Synth,
) -> None:
    # The stream's failed batches go to an encrypted queue ...
    stream = _mapping_from(synth, "AWS::DynamoDB::Table")
    destination = stream["DestinationConfig"]["OnFailure"]["Destination"]
    assert synth.type_of(destination) == "AWS::SQS::Queue"
    queue_id = destination["Fn::GetAtt"][0]
    queue = synth.template["Resources"][queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    # ... which the redrive handler consumes, message by message ...
    redrive = _mapping_from(synth, "AWS::SQS::Queue")
    assert redrive["EventSourceArn"] == destination
    assert redrive["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < redrive["BatchSize"] <= 10
    function = synth.template["Resources"][redrive["FunctionName"]["Ref"]]["Properties"]
    assert function["Handler"] == functions.REDRIVE.handler
    assert queue["VisibilityTimeout"] >= function["Timeout"]  # a message is never redriven twice at once
    # ... and what it cannot settle moves, after a few receives, to a second queue with the alarm.
    policy = queue["RedrivePolicy"]
    assert 1 < policy["maxReceiveCount"] <= 10
    unsettled_id = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert unsettled_id != queue_id
    assert synth.template["Resources"][unsettled_id]["Properties"]["SqsManagedSseEnabled"] is True
    alarms = {render(d["Value"]): a["Properties"]["MetricName"]
              for a in synth.resources("AWS::CloudWatch::Alarm").values()
              for d in a["Properties"].get("Dimensions", []) if d["Name"] == "QueueName"}
    # (the finaliser's queue has its own alarm: test_infra_finaliser)
    stream_queues = {f"<{queue_id}.QueueName>", f"<{unsettled_id}.QueueName>"}
    assert {q: m for q, m in alarms.items() if q in stream_queues} == {
        f"<{unsettled_id}.QueueName>": "ApproximateNumberOfMessagesVisible"}


def test_state_machine_deploys_the_asl_file_as_is_with_every_placeholder_substituted(synth: Synth) -> None:
    text = STATE_MACHINE_DEFINITION.read_text()
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["DefinitionString"] == text  # the bytes the local stack runs
    in_file = all_placeholders(text)
    assert in_file >= placeholders(text) and in_file
    assert set(props["DefinitionSubstitutions"]) == in_file
    assert props["DefinitionSubstitutions"]["TrainingJobPrefix"] == synth.stack.stack_name.lower()
    assert props.get("StateMachineType", "STANDARD") == "STANDARD"  # .sync needs STANDARD
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_training_settings_are_stack_parameters_that_the_definition_uses(synth: Synth) -> None:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    substituted = {json.dumps(v) for v in machine["Properties"]["DefinitionSubstitutions"].values()}
    parameters = {name for name in synth.template["Parameters"] if name != "BootstrapVersion"}
    assert {"InstanceType", "InstanceCount", "MaxRuntimeSeconds", "UseSpotInstances",
            "SpotWaitSeconds"} <= parameters
    for name in parameters:
        assert json.dumps({"Ref": name}) in substituted, f"parameter {name} changes nothing"
    # The definition reads these with States.StringToJson: only JSON a deployment can give passes.
    spot = synth.template["Parameters"]["UseSpotInstances"]
    assert spot["Default"] == "false" and set(spot["AllowedValues"]) == {"true", "false"}
    assert {synth.template["Parameters"][n]["Type"] for n in ("MaxRuntimeSeconds", "SpotWaitSeconds")} == {
        "Number"}


def test_no_deployment_can_ask_sagemaker_for_a_spot_wait_shorter_than_the_runtime(synth: Synth) -> None:
    # SageMaker refuses MaxWaitTimeInSeconds < MaxRuntimeInSeconds, and a CloudFormation rule
    # cannot compare two numbers: the stack takes the wait beyond the runtime, never negative...
    parameters = synth.template["Parameters"]
    assert "MaxWaitSeconds" not in parameters
    assert parameters["SpotWaitSeconds"]["MinValue"] == 0
    assert parameters["MaxRuntimeSeconds"]["MinValue"] >= 1
    # ... and the definition asks for their sum, the runtime being the one it sends as MaxRuntime.
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    states = json.loads(machine["Properties"]["DefinitionString"])["States"]
    capacity = states["TrainingCapacity"]["Parameters"]
    assert capacity["max_runtime.$"] == "States.StringToJson('${MaxRuntimeSeconds}')"
    assert capacity["spot_wait.$"] == "States.StringToJson('${SpotWaitSeconds}')"
    stopping = states["SpotCapacity"]["Parameters"]["StoppingCondition"]
    assert stopping == {
        "MaxRuntimeInSeconds.$": "$.capacity.max_runtime",
        "MaxWaitTimeInSeconds.$": "States.MathAdd($.capacity.max_runtime, $.capacity.spot_wait)",
    }


def _resource_path(synth: Synth, reference: object) -> str:
    """The path of an API Gateway resource (a Ref to it), as contracts.routes writes it."""
    if isinstance(reference, dict) and "Ref" in reference:
        props = synth.template["Resources"][reference["Ref"]]["Properties"]
        return f"{_resource_path(synth, props['ParentId'])}/{props['PathPart']}"
    return ""  # the root resource


def _method_paths(synth: Synth) -> dict[str, tuple[str, str]]:
    """Method logical id → (HTTP method, resource path)."""
    return {lid: (m["Properties"]["HttpMethod"], _resource_path(synth, m["Properties"]["ResourceId"]))
            for lid, m in synth.resources("AWS::ApiGateway::Method").items()}


def test_the_api_has_a_method_for_each_route_of_the_contract_and_no_other(synth: Synth) -> None:
    assert sorted(_method_paths(synth).values()) == sorted((r.method, r.path) for r in routes.ROUTES)
    # Nor a resource that no route names.
    paths = {_resource_path(synth, {"Ref": lid}) for lid in synth.resources("AWS::ApiGateway::Resource")}
    assert paths == set(routes.resources())


def test_every_api_method_requires_iam_auth_and_reaches_the_function_its_route_names(synth: Synth) -> None:
    function_ids = {spec.key: synth.function_of(spec.handler)[0]
                    for spec in (functions.API, functions.COMPOSE)}
    reached: dict[str, set[tuple[str, str]]] = {}
    for lid, (http_method, path) in _method_paths(synth).items():
        method = synth.template["Resources"][lid]["Properties"]
        assert method["AuthorizationType"] == "AWS_IAM"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert method["Integration"]["IntegrationHttpMethod"] == "POST"  # Lambda's Invoke
        uri = render(method["Integration"]["Uri"])
        (key,) = [key for key, function_id in function_ids.items() if f"<{function_id}.Arn>" in uri]
        assert key == routes.function_for(http_method, path), (http_method, path)
        reached.setdefault(key, set()).add((http_method, path))
    # POST compositions runs the model (the compose image); every other route is the api's.
    compose = ("POST", "/jobs/{job_id}/compositions")
    assert reached == {functions.COMPOSE.key: {compose},
                       functions.API.key: {(r.method, r.path) for r in routes.ROUTES} - {compose}}
    assert {(r.method, r.path) for r in routes.served_by(functions.COMPOSE.key)} == {compose}


def test_api_gateway_may_invoke_each_function_from_its_own_methods_only(synth: Synth) -> None:
    (rest_api,) = synth.resources("AWS::ApiGateway::RestApi")
    permitted: dict[str, set[str]] = {}
    for permission in synth.resources("AWS::Lambda::Permission").values():
        props = permission["Properties"]
        if props.get("Principal") != "apigateway.amazonaws.com":
            continue
        assert props["Action"] == "lambda:InvokeFunction"
        source = render(props["SourceArn"])
        assert f":<{rest_api}>/" in source  # this API only
        # <api>/<stage or test-invoke-stage>/<METHOD>/<path with * for parameters>
        method_path = source.split(f":<{rest_api}>/", 1)[1].split("/", 1)[1]
        permitted.setdefault(render(props["FunctionName"]), set()).add(method_path)

    def pattern(method: str, path: str) -> str:
        return method + re.sub(r"\{\w+\}", "*", path)

    for spec in (functions.API, functions.COMPOSE):
        function_id = synth.function_of(spec.handler)[0]
        assert permitted.pop(f"<{function_id}.Arn>") == {
            pattern(r.method, r.path) for r in routes.served_by(spec.key)}, spec.key
    assert permitted == {}


def test_api_stage_is_throttled_traced_and_access_logged(synth: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    (everything,) = [s for s in props["MethodSettings"] if s["ResourcePath"] == "/*"]
    assert everything["ThrottlingRateLimit"] > 0 and everything["ThrottlingBurstLimit"] > 0
    assert everything["LoggingLevel"] in {"ERROR", "INFO"}
    assert props["TracingEnabled"] is True
    assert synth.type_of(props["AccessLogSetting"]["DestinationArn"]) == "AWS::Logs::LogGroup"
    assert json.loads(props["AccessLogSetting"]["Format"])["requestId"] == "$context.requestId"


def test_api_gateway_errors_keep_the_api_error_shape(synth: Synth) -> None:
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in synth.resources("AWS::ApiGateway::GatewayResponse").values()}
    assert set(responses) >= {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses.values():
        template = response["ResponseTemplates"]["application/json"]
        filled = template.replace("$context.error.responseType", "THROTTLED").replace(
            "$context.error.messageString", '"Too Many Requests"')
        assert set(json.loads(filled)["error"]) == {"code", "message"}


def test_outputs_name_the_api_url_bucket_and_table(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    assert set(outputs) == {deployment.OUTPUT_API_URL, deployment.OUTPUT_BUCKET, deployment.OUTPUT_TABLE}
    assert render(outputs[deployment.OUTPUT_API_URL]["Value"]).startswith("https://")
    assert synth.type_of(outputs[deployment.OUTPUT_BUCKET]["Value"]) == "AWS::S3::Bucket"
    assert synth.type_of(outputs[deployment.OUTPUT_TABLE]["Value"]) == "AWS::DynamoDB::Table"


def test_no_resource_has_a_physical_name(synth: Synth) -> None:
    name_properties = {"BucketName", "TableName", "FunctionName", "RoleName", "StateMachineName",
                       "QueueName", "LogGroupName", "RepositoryName", "AlarmName", "PolicyName"}
    # A literal name is physical (a Ref or GetAtt names another resource, which is fine).
    named = {(lid, key) for lid, r in synth.template["Resources"].items()
             if r["Type"] != "AWS::IAM::Policy"  # CDK's policy names are scoped to their role
             for key, value in r.get("Properties", {}).items()
             if key in name_properties and isinstance(value, str)}
    assert named == set()


def test_functions_are_traced_with_their_own_log_group_and_no_managed_policy(synth: Synth) -> None:
    ours = list(synth.lambda_functions().values())  # zip and image functions alike
    assert len(ours) == len(functions.FUNCTIONS)
    for fn in ours:
        assert fn["TracingConfig"] == {"Mode": "Active"}
        assert synth.type_of(fn["LoggingConfig"]["LogGroup"]) == "AWS::Logs::LogGroup"
        role = synth.template["Resources"][fn["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert not as_list(role.get("ManagedPolicyArns", []))


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _package_sources() -> set[str]:
    """The files of the asset's packages in this checkout, caches aside."""
    return {f"{package}/{path}" for package in functions.ASSET_PACKAGES
            for path in _files(REPO_ROOT / package)
            if "__pycache__" not in path and not path.endswith(".pyc")}


def test_every_zip_function_runs_the_one_lambda_asset_of_the_contracts_packages(synth: Synth) -> None:
    # Synth without bundling stages the asset as a plain copy (`cdk deploy` adds the wheels).
    zipped = [synth.function_of(spec.handler)[1] for spec in functions.FUNCTIONS if not spec.image]
    assert len(zipped) == len(functions.FUNCTIONS) - 2  # all but the compose image and the datasets build
    keys = {fn["Code"]["S3Key"] for fn in zipped}
    (key,) = keys
    manifest = synth.assets_manifest()
    asset = manifest["files"][key.removesuffix(".zip")]["source"]
    assert asset["packaging"] == "zip"
    staged = synth.assembly_dir / asset["path"]
    assert {p.name for p in staged.iterdir()} == set(functions.ASSET_PACKAGES)  # no tests, infra, gan
    assert _files(staged) == _package_sources()


def test_the_deployed_asset_is_built_from_the_contracts_packages(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # What `cdk deploy` runs, without pip (offline): the packages go in as they are.
    monkeypatch.setattr(function_components, "LAMBDA_REQUIREMENTS", tmp_path / "no-requirements.txt")
    out = tmp_path / "asset"
    out.mkdir()
    built = function_components.PipBundling().try_bundle(
        str(out), BundlingOptions(image=DockerImage.from_registry("unused")))
    assert built is True
    assert {p.name for p in out.iterdir()} == set(functions.ASSET_PACKAGES)
    # Requirements files are pip's input, not code (lambdas/compose's is the compose image's).
    assert _files(out) == {p for p in _package_sources() if Path(p).name != "requirements.txt"}


@pytest.mark.parametrize("base", ["cpu", "gpu"])
def test_training_image_context_holds_what_the_dockerfile_copies_and_nothing_else(
    synth: Synth, base: str
) -> None:
    # Synth stages the build context without Docker; `cdk deploy` builds the image from it. The
    # CPU and GPU images (tests/infra/test_infra_gpu.py) are the one Dockerfile on two bases.
    (source,) = [image["source"] for image in synth.assets_manifest()["dockerImages"].values()
                 if image["source"]["dockerFile"] == TRAINING_DOCKERFILE
                 and bool(image["source"].get("dockerBuildArgs")) == (base == "gpu")]
    context = synth.assembly_dir / source["directory"]
    dockerfile = context / source["dockerFile"]
    sources = [word for line in dockerfile.read_text().splitlines() if line.startswith("COPY ")
               for word in line.split()[1:-1] if not word.startswith("--")]
    assert sources
    for source in sources:
        assert (context / source).exists(), f"the Dockerfile copies {source}, missing from the build context"
    staged = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    assert all(p.startswith(("training_container/", "contracts/")) for p in staged), staged
    assert not any("__pycache__" in p for p in staged)
