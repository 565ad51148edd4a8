"""Every AWS call is allowed, and every grant is used (docs/iam.md).

One local stack runs with its calls recorded (`opencomposer.local.aws_calls`) while the user
paths are driven over HTTP: submit (with an idempotency key) and train a 1-epoch job to
COMPLETED, read it, list, metrics, its MIDI and model, compose with its model, list and delete
the composition; a second job whose stream batch fails for good, started by the redrive from the
dead-letter message, then stopped while it waits for its training; delete both. Each recorded
call becomes the IAM requests AWS would authorize (`call_requests`) and is evaluated
(`iam_policy`) against the policies of the role its component runs as in the synthesised
template (`template_policies`). The reverse: each action a component's role is granted is one
it called, or is in ACKNOWLEDGED with the reason it is needed anyway; each resource it is
granted on is reached, or is in ACKNOWLEDGED_RESOURCES.

The unit tests at the end show that the check catches the defects it is for, against the real
template: a read by the training role, a training job ARN in mixed case, a write outside a
job's partition, a tag the lifecycle rule does not know.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from call_requests import Place, requests_of
from iam_policy import Request, action_matches, arn_matches, as_list, closest, evaluate
from synthesized import Synth
from template_policies import Resolver, component_statements, granted_actions

from contracts import datasets, functions, names, statuses, storage
from opencomposer.client import ApiError, Client
from opencomposer.local import aws_calls
from opencomposer.local.resources import LocalNames
from opencomposer.local.stack import LocalStack, LocalStackOptions

TINY = {"epochs": 1, "batch_size": 16, "update_ratio": 1, "seed": 3}
_LAMBDA_LOGS = "Lambda writes the function's log (its own log group) as the function's role"
_LAMBDA_XRAY = "Lambda's active tracing sends the function's trace segments as its role"
_SYNC = "Step Functions' createTrainingJob.sync integration (AWS's published policy for it)"
_SAGEMAKER = "SageMaker itself, running the job as its execution role"
_LAMBDA_DEFAULT = {"logs:CreateLogStream": _LAMBDA_LOGS, "logs:PutLogEvents": _LAMBDA_LOGS,
                   "xray:PutTraceSegments": _LAMBDA_XRAY, "xray:PutTelemetryRecords": _LAMBDA_XRAY}
_CDK_SEND_EXTRAS = ("CDK's queue grant for an on-failure destination (grant_send_messages) adds it; Lambda's "
                    "documentation asks for sqs:SendMessage only: a candidate to drop, after a deployment "
                    "shows the destination works without it")
# Actions granted that no component's code calls locally, by component, each with its reason.
ACKNOWLEDGED: dict[str, dict[str, str]] = {
    "api": dict(_LAMBDA_DEFAULT),
    "compose": {
        **_LAMBDA_DEFAULT,
        "s3:DeleteObject": "an error path not driven here: the new composition's MIDI is removed again when "
                           "its item cannot be kept (the job was deleted meanwhile, or is at its limit)",
    },
    "stream": {
        **_LAMBDA_DEFAULT,
        "dynamodb:UpdateItem": "an error path not driven here: a job whose execution can never start "
                               "is ended FAILED (a conditional update)",
        **{a: "Lambda's DynamoDB event source polls the stream as the function's role" for a in (
            "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
            "dynamodb:ListStreams")},
        "sqs:SendMessage": "Lambda's event source sends a failed batch to the on-failure queue as the "
                           "function's role",
        **{a: _CDK_SEND_EXTRAS for a in ("sqs:GetQueueAttributes", "sqs:GetQueueUrl")},
    },
    "redrive": {
        **_LAMBDA_DEFAULT,
        "dynamodb:UpdateItem": "an error path not driven here: a job that still cannot start is ended "
                               "FAILED (or STOPPED), a conditional update",
        **{a: "Lambda's SQS event source reads the dead-letter queue as the function's role" for a in (
            "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")},
        **{a: "CDK's SqsEventSource grant (grant_consume_messages) adds it; Lambda's documentation asks "
              "for ReceiveMessage, DeleteMessage and GetQueueAttributes only: a candidate to drop, after "
              "a deployment shows the mapping works without it"
           for a in ("sqs:ChangeMessageVisibility", "sqs:GetQueueUrl")},
    },
    "datasets": dict(_LAMBDA_DEFAULT),
    "finaliser": {
        **_LAMBDA_DEFAULT,
        "sqs:SendMessage": "Lambda's asynchronous invocation sends an event it could not deliver to the "
                           "function's on-failure queue as the function's role",
        **{a: _CDK_SEND_EXTRAS for a in ("sqs:GetQueueAttributes", "sqs:GetQueueUrl")},
    },
    "statemachine": {
        **{a: "Step Functions delivers the execution logs (LogLevel ALL) to its log group" for a in (
            "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")},
        **{a: "Step Functions' X-Ray tracing (tracing_enabled)" for a in (
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
            "xray:GetSamplingTargets")},
        "sagemaker:ListTags": f"{_SYNC}: reads the job's tags",
        "sagemaker:StopTrainingJob": f"{_SYNC}: stops the training job when the execution is stopped",
        **{a: f"{_SYNC}: the managed EventBridge rule that reports the job's end" for a in (
            "events:PutTargets", "events:PutRule", "events:DescribeRule")},
    },
    "training": {
        **{a: f"{_SAGEMAKER}: pulls the training image" for a in (
            "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
            "ecr:GetAuthorizationToken")},
        **{a: f"{_SAGEMAKER}: writes the job's log to /aws/sagemaker/TrainingJobs" for a in (
            "logs:CreateLogGroup", "logs:DescribeLogStreams", "logs:CreateLogStream", "logs:PutLogEvents")},
        "cloudwatch:PutMetricData": f"{_SAGEMAKER}: publishes the job's instance metrics",
        "s3:GetObject": f"{_SAGEMAKER}: downloads the melody channel, a user's dataset channel (its "
                        "built pieces) and a spot job's checkpoints; locally the runner does, outside "
                        "the container",
        "s3:ListBucket": f"{_SAGEMAKER}: lists each channel's S3Prefix; locally the runner does",
    },
}

# Finer: (action, the end of a resource it is granted on) that no call reaches, though the action
# itself is called, each with its reason.
ACKNOWLEDGED_RESOURCES: dict[str, dict[tuple[str, str], str]] = {
    "training": {
        ("s3:PutObject", f"/{storage.JOBS_PREFIX}*/model/*"):
            f"{_SAGEMAKER}: uploads model.tar.gz under the job's S3OutputPath; locally the runner does",
        ("s3:PutObject", f"/{storage.JOBS_PREFIX}*/checkpoints/*"):
            f"{_SAGEMAKER}: uploads a managed spot job's checkpoints as it trains (none here: on-demand)",
    },
}


@dataclass
class Recorded:
    calls: list[dict[str, Any]]
    names: LocalNames
    stream_arn: str


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    folder = tmp_path_factory.mktemp("aws-calls")
    home = tmp_path_factory.mktemp("opencomposer-home")
    saved = os.environ.get(aws_calls.ENV_RECORD)
    # Set before the stack starts: its workers (prewarmed at start) and trainings inherit it.
    os.environ[aws_calls.ENV_RECORD] = str(folder)
    try:
        with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5)) as stack:
            assert stack.resources is not None
            _drive(stack, home / "downloads")
            stream_arn, local_names = stack.resources.stream_arn, stack.names
    finally:
        if saved is None:
            os.environ.pop(aws_calls.ENV_RECORD, None)
        else:
            os.environ[aws_calls.ENV_RECORD] = saved
    # Read once the stack stopped: every process has written its last line.
    yield Recorded(aws_calls.read(folder), local_names, stream_arn)


def _drive(stack: LocalStack, downloads: Path) -> None:
    """The user paths, in the order a user takes them. One training runs: the second job is
    stopped while it waits for its training (one at a time on a small machine), which takes the
    api's whole stop path (the job item, then StopTrainingJob) without a second training."""
    client = Client(stack.api_url)
    job = client.submit({"name": "iam-check", "hyperparameters": TINY}, idempotency_key="iam-check")
    assert client.submit({"name": "iam-check", "hyperparameters": TINY},
                         idempotency_key="iam-check")["job_id"] == job["job_id"]
    job_id = job["job_id"]

    # its stream batch fails for good, as on AWS after the stream's retries: the redrive starts it
    stopped = _submit_through_the_redrive(stack, client, {"hyperparameters": {**TINY, "epochs": 500}})
    _wait_for_training_job(stack, stopped)
    assert client.stop(stopped)["status"] == statuses.STOPPING
    assert client.wait(stopped, interval=0.5, timeout=120)["status"] == statuses.STOPPED

    _drive_datasets(stack, downloads / "music")  # while the first job trains

    done = client.wait(job_id, interval=0.5, timeout=300)
    assert done["status"] == statuses.COMPLETED, done.get("failure_reason")
    client.list()
    client.list(status=statuses.COMPLETED.value, limit=5)
    client.metrics(job_id)
    client.download(job_id, downloads)  # presigned GETs of the training's MIDI
    client.fetch(client.model(job_id)["url"], downloads / "model.tar.gz")
    composition = client.compose(job_id, sample="ode-to-joy", seed=1)
    client.fetch(composition["url"], downloads / "composed.mid")
    client.compositions(job_id)
    client.delete_composition(job_id, composition["composition_id"])
    for finished in (job_id, stopped):
        client.delete(finished)


def _submit_through_the_redrive(stack: LocalStack, client: Client, job: dict[str, Any]) -> str:
    """Submit with the stream's mapping disabled, then invoke the redrive with the message Lambda's
    on-failure destination holds for that batch, as SQS hands it over: the redrive reads the job's
    INSERT back from the stream and starts its execution. Re-enabled, the mapping delivers the
    held INSERT, whose start finds the execution there (ExecutionAlreadyExists: started)."""
    assert stack.resources is not None
    lam = stack.client("lambda")  # the stack's own clients: not recorded
    (mapping,) = lam.list_event_source_mappings(
        FunctionName=stack.names.function_name(functions.STREAM.key))["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        job_id = client.submit(job)["job_id"]
        shard_id, sequence_number = _insert_in_the_stream(stack, job_id)
        failed_batch = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 4,
                               "functionArn": mapping["FunctionArn"]},
            "DDBStreamBatchInfo": {"streamArn": stack.resources.stream_arn, "shardId": shard_id,
                                   "startSequenceNumber": sequence_number,
                                   "endSequenceNumber": sequence_number, "batchSize": 1},
        }
        message = {"messageId": "1", "receiptHandle": "r", "body": json.dumps(failed_batch), "attributes": {},
                   "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": f"arn:aws:sqs:{stack.names.region}:{stack.names.account}:dead-letters",
                   "awsRegion": stack.names.region}
        reply = lam.invoke(FunctionName=stack.names.function_name(functions.REDRIVE.key),
                           Payload=json.dumps({"Records": [message]}))
        answer = reply["Payload"].read()
        assert "FunctionError" not in reply, answer
        assert json.loads(answer) == {"batchItemFailures": []}
    finally:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    return job_id


def _insert_in_the_stream(stack: LocalStack, job_id: str) -> tuple[str, str]:
    """The shard and sequence number of the job item's INSERT."""
    assert stack.resources is not None
    streams, arn = stack.client("dynamodbstreams"), stack.resources.stream_arn
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    key = {name: {"S": value} for name, value in storage.job_key(job_id).items()}
    while iterator:
        page = streams.get_records(ShardIterator=iterator)
        for record in page["Records"]:
            if record["eventName"] == "INSERT" and record["dynamodb"]["Keys"] == key:
                return shard["ShardId"], record["dynamodb"]["SequenceNumber"]
        assert page["Records"], f"no INSERT of job {job_id} in the stream"
        iterator = page["NextShardIterator"]
    raise AssertionError("the shard ended")


def _drive_datasets(stack: LocalStack, folder: Path) -> None:
    """A dataset uploaded, built, listed, shown (its report presigned) and deleted; then an
    upload for no dataset, which the build function deletes unread."""
    from tests.integration.test_datasets import chorale_files

    client = Client(stack.api_url)
    for name, data in chorale_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    dataset_id = client.upload_dataset(folder, name="iam-check")["dataset_id"]
    built = client.wait_dataset(dataset_id, interval=0.5, timeout=120)
    assert built["status"] == "READY", built.get("failure_reason")
    assert built["report"]["url"]
    assert [d["dataset_id"] for d in client.datasets()["datasets"]] == [dataset_id]
    # POST /jobs counts a filter from the dataset's index: one `jazz` piece is too few to train
    with pytest.raises(ApiError) as too_few:
        client.submit({"dataset": dataset_id, "tags": ["jazz"]})
    assert (too_few.value.status, too_few.value.field) == (400, "tags")
    client.delete_dataset(dataset_id)
    s3, stray = stack.client("s3"), datasets.upload_key("f" * 32)  # the stack's own client: not recorded
    s3.put_object(Bucket=stack.names.bucket, Key=stray, Body=b"PK")
    deadline = time.monotonic() + 60
    while s3.list_objects_v2(Bucket=stack.names.bucket, Prefix=datasets.DATASETS_PREFIX).get("KeyCount"):
        assert time.monotonic() < deadline, "the stray upload was never deleted"
        time.sleep(0.2)


def _wait_for_training_job(stack: LocalStack, job_id: str) -> None:
    """Until the job's training job exists (the stack's own client: not a recorded call)."""
    sagemaker = stack.client("sagemaker")
    name = names.training_job_name(stack.names.training_job_prefix, job_id)
    deadline = time.monotonic() + 120
    while True:
        try:
            sagemaker.describe_training_job(TrainingJobName=name)
            return
        except sagemaker.exceptions.ClientError:
            assert time.monotonic() < deadline, f"training job {name} never created"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def policies(synth: Synth, recorded: Recorded) -> dict[str, list[dict[str, Any]]]:
    return component_statements(synth, Resolver(synth, recorded.names, recorded.stream_arn))


@pytest.fixture(scope="module")
def place(synth: Synth, recorded: Recorded) -> Place:
    return Place(recorded.names.region, recorded.names.account,
                 local_job_prefix=recorded.names.training_job_prefix,
                 deployed_job_prefix=synth.stack.training.job_prefix)


def _requests(recorded: Recorded, place: Place) -> list[tuple[str, dict[str, Any], Request]]:
    return [(call["component"], call, request)
            for call in recorded.calls for request in requests_of(place, call)]


def _denial(component: str, call: dict[str, Any], request: Request, statements: list[dict[str, Any]]) -> str:
    denied_by = evaluate(statements, request).statement
    statement, why = (denied_by, "an explicit Deny") if denied_by else closest(statements, request)
    return (f"{component}: {request.action} on {request.resource} "
            f"(context {dict(request.context)}; from {call['service']}.{call['operation']}) is denied; "
            f"closest statement: {json.dumps(statement)}: {why}")


@pytest.mark.slow
def test_every_component_was_recorded(recorded: Recorded) -> None:
    # No component may go unchecked because its calls were never recorded.
    seen = {call["component"] for call in recorded.calls}
    expected = {spec.key for spec in functions.FUNCTIONS} | {aws_calls.STATE_MACHINE, aws_calls.TRAINING}
    assert expected <= seen, f"no calls recorded for {sorted(expected - seen)}"


@pytest.mark.slow
def test_every_recorded_call_is_allowed_by_its_components_policies(
    recorded: Recorded, policies: dict[str, list[dict[str, Any]]], place: Place
) -> None:
    denied = []
    for component, call, request in _requests(recorded, place):
        statements = policies[component]
        if not evaluate(statements, request).allowed:
            denied.append(_denial(component, call, request, statements))
    assert not denied, "\n".join(sorted(set(denied)))


@pytest.mark.slow
def test_a_grant_taken_away_fails_the_check_naming_what_it_denies(
    recorded: Recorded, policies: dict[str, list[dict[str, Any]]], place: Place
) -> None:
    # The check can fail: for each component, the statement allowing its first call removed.
    firsts: dict[str, tuple[dict[str, Any], Request]] = {}
    for component, call, request in _requests(recorded, place):
        firsts.setdefault(component, (call, request))
    assert firsts
    for component, (call, request) in firsts.items():
        allowing = evaluate(policies[component], request).statement
        rest = [s for s in policies[component] if s is not allowing]
        assert not evaluate(rest, request).allowed
        message = _denial(component, call, request, rest)
        assert message.startswith(f"{component}: {request.action} on {request.resource}")


@pytest.mark.slow
def test_every_granted_action_is_called_or_acknowledged(
    recorded: Recorded, policies: dict[str, list[dict[str, Any]]], place: Place
) -> None:
    called: dict[str, set[str]] = {}
    for component, _, request in _requests(recorded, place):
        called.setdefault(component, set()).add(request.action)
    unused = {component: sorted(granted_actions(statements) - called.get(component, set())
                                - set(ACKNOWLEDGED.get(component, {})))
              for component, statements in policies.items()}
    unused = {c: a for c, a in unused.items() if a}
    assert unused == {}, (f"granted but never called: {unused}; remove each grant, or add it to "
                          "ACKNOWLEDGED with the reason it is needed")
    # ... and every acknowledgment is still granted, and really not called (else it is stale).
    stale = {c: sorted(set(acks) - granted_actions(policies.get(c, []))) for c, acks in ACKNOWLEDGED.items()}
    assert {c: a for c, a in stale.items() if a} == {}
    redundant = {c: sorted(set(acks) & called.get(c, set())) for c, acks in ACKNOWLEDGED.items()}
    assert {c: a for c, a in redundant.items() if a} == {}


@pytest.mark.slow
def test_every_granted_resource_is_reached_or_acknowledged(
    recorded: Recorded, policies: dict[str, list[dict[str, Any]]], place: Place
) -> None:
    requests = _requests(recorded, place)
    unreached = []
    for component, statements in policies.items():
        acknowledged = ACKNOWLEDGED_RESOURCES.get(component, {})
        for statement in (s for s in statements if s["Effect"] == "Allow"):
            for action in as_list(statement["Action"]):
                if action in ACKNOWLEDGED.get(component, {}):
                    continue
                for resource in as_list(statement["Resource"]):
                    reached = any(c == component and action_matches(action, r.action)
                                  and arn_matches(resource, r.resource) for c, _, r in requests)
                    known = any(a == action and resource.endswith(end) for a, end in acknowledged)
                    if not reached and not known:
                        unreached.append(f"{component}: {action} on {resource}")
    assert not unreached, ("granted but reached by no call: narrow the grant, or add it to "
                           "ACKNOWLEDGED_RESOURCES with its reason:\n" + "\n".join(unreached))
    # ... and every acknowledgment is of a grant no call reaches
    for component, acks in ACKNOWLEDGED_RESOURCES.items():
        for action, end in acks:
            granted = [r for s in policies[component] if action in as_list(s["Action"])
                       for r in as_list(s["Resource"]) if r.endswith(end)]
            assert granted, f"{component}: {action} on *{end} is acknowledged but no longer granted"
            called = any(c == component and r.action == action and arn_matches(g, r.resource)
                         for g in granted for c, _, r in requests)
            assert not called, f"{component}: {action} on *{end} is acknowledged but called"


# --- the defects the check is for, against the real template (no stack needed) -------------------

@pytest.fixture(scope="module")
def real_policies(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    names = LocalNames()
    stream = f"arn:aws:dynamodb:{names.region}:{names.account}:table/{names.table}/stream/local"
    return component_statements(synth, Resolver(synth, names, stream))


@pytest.fixture(scope="module")
def real_place(synth: Synth) -> Place:
    names = LocalNames()
    return Place(names.region, names.account, names.training_job_prefix, synth.stack.training.job_prefix)


def _call(component: str, service: str, operation: str, **params: Any) -> dict[str, Any]:
    signing = {"stepfunctions": "states", "dynamodbstreams": "dynamodb"}.get(service, service)
    return {"component": component, "service": service, "signing_name": signing, "operation": operation,
            "presigned": False, "params": params}


def _allowed(policies: dict[str, list[dict[str, Any]]], place: Place, call: dict[str, Any]) -> list[bool]:
    return [evaluate(policies[call["component"]], r).allowed for r in requests_of(place, call)]


JOB = "0" * 32


def test_the_training_role_may_update_its_job_but_not_read_it(real_policies: Any, real_place: Place) -> None:
    table = LocalNames().table
    update = _call("training", "dynamodb", "UpdateItem", TableName=table,
                   Key={"pk": {"S": storage.job_pk(JOB)}, "sk": {"S": "JOB"}})
    read = _call("training", "dynamodb", "GetItem", TableName=table,
                 Key={"pk": {"S": storage.job_pk(JOB)}, "sk": {"S": "JOB"}})
    assert _allowed(real_policies, real_place, update) == [True]
    assert _allowed(real_policies, real_place, read) == [False]


def test_the_training_role_writes_only_under_a_jobs_partition(real_policies: Any, real_place: Place) -> None:
    outside = _call("training", "dynamodb", "PutItem", TableName=LocalNames().table,
                    Item={"pk": {"S": "IDEMPOTENCY#someone#key"}, "sk": {"S": "IDEMPOTENCY"}})
    assert _allowed(real_policies, real_place, outside) == [False]


def test_a_training_job_arn_is_lower_case_and_a_mixed_case_grant_would_not_match_it(
    real_policies: Any, real_place: Place,
) -> None:
    name = f"{LocalNames().training_job_prefix}-{JOB}"
    create = _call("statemachine", "sagemaker", "CreateTrainingJob", TrainingJobName=name,
                   RoleArn=LocalNames().role_arn("training"))
    assert _allowed(real_policies, real_place, create) == [True, True]
    (request, _) = requests_of(real_place, create)
    assert request.resource == request.resource.lower()
    # The grant as it was before the job prefix was made lower case: the stack's name as it is.
    mixed = [{**s, "Resource": [r.replace(f"/{real_place.deployed_job_prefix}-", "/OpenComposer-")
                                for r in as_list(s["Resource"])]}
             for s in real_policies["statemachine"]]
    assert not evaluate(mixed, request).allowed
    statement, why = closest(mixed, request)
    assert statement is not None and "sagemaker:CreateTrainingJob" in statement["Action"]
    assert why.startswith("resource not in")


def test_the_training_role_reads_a_datasets_built_pieces_and_nothing_else_of_it(
    real_policies: Any, real_place: Place,
) -> None:
    # SageMaker downloads a job's `dataset` channel (S3Prefix: it lists, then gets) as the
    # training role; the uploaded zip and the build report are not the training's.
    bucket, dataset_id = LocalNames().bucket, "e" * 32
    listed = _call("training", "s3", "ListObjectsV2", Bucket=bucket, Prefix=datasets.built_prefix(dataset_id))
    pieces = _call("training", "s3", "GetObject", Bucket=bucket, Key=datasets.pieces_key(dataset_id))
    assert _allowed(real_policies, real_place, listed) == [True]
    assert _allowed(real_policies, real_place, pieces) == [True]
    for key in (datasets.upload_key(dataset_id), datasets.report_key(dataset_id)):
        assert _allowed(real_policies, real_place, _call("training", "s3", "GetObject", Bucket=bucket,
                                                         Key=key)) == [False]
    for prefix in (datasets.dataset_prefix(dataset_id), datasets.DATASETS_PREFIX):
        assert _allowed(real_policies, real_place, _call("training", "s3", "ListObjectsV2", Bucket=bucket,
                                                         Prefix=prefix)) == [False]
    # ... and never writes there
    put = _call("training", "s3", "PutObject", Bucket=bucket, Key=datasets.pieces_key(dataset_id))
    assert _allowed(real_policies, real_place, put) == [False]


def test_the_api_reads_a_datasets_index_to_count_a_filter_but_not_its_pieces(
    real_policies: Any, real_place: Place,
) -> None:
    bucket, dataset_id = LocalNames().bucket, "e" * 32
    index = _call("api", "s3", "GetObject", Bucket=bucket, Key=datasets.index_key(dataset_id))
    pieces = _call("api", "s3", "GetObject", Bucket=bucket, Key=datasets.pieces_key(dataset_id))
    assert _allowed(real_policies, real_place, index) == [True]
    assert _allowed(real_policies, real_place, pieces) == [False]


def test_samples_are_tagged_with_the_lifecycle_tag_only(real_policies: Any, real_place: Place) -> None:
    bucket, key = LocalNames().bucket, storage.sample_key(JOB, 1)
    tagged = _call("training", "s3", "PutObject", Bucket=bucket, Key=key, Tagging=storage.sample_tagging())
    other = _call("training", "s3", "PutObject", Bucket=bucket, Key=key, Tagging="owner=me")
    assert _allowed(real_policies, real_place, tagged) == [True, True]
    assert _allowed(real_policies, real_place, other) == [True, False]


def test_the_api_lists_job_prefixes_only_and_presigns_no_melody(
    real_policies: Any, real_place: Place,
) -> None:
    bucket = LocalNames().bucket
    assert _allowed(real_policies, real_place, _call("api", "s3", "ListObjectsV2", Bucket=bucket,
                                                     Prefix=storage.job_prefix(JOB))) == [True]
    assert _allowed(real_policies, real_place, _call("api", "s3", "ListObjectsV2", Bucket=bucket)) == [False]
    melody = _call("api", "s3", "GetObject", Bucket=bucket, Key=storage.melody_key(JOB))
    assert _allowed(real_policies, real_place, melody) == [False]


def test_the_buckets_tls_only_policy_is_part_of_every_components_evaluation(
    real_policies: Any, real_place: Place,
) -> None:
    key = storage.sample_key(JOB, 1)
    tagged = requests_of(real_place, _call("training", "s3", "PutObject", Bucket=LocalNames().bucket, Key=key,
                                           Tagging=storage.sample_tagging()))[0]
    plain = Request(tagged.action, tagged.resource, {**tagged.context, "aws:SecureTransport": "false"})
    decision = evaluate(real_policies["training"], plain)
    assert not decision.allowed and decision.statement is not None and decision.statement["Effect"] == "Deny"


def test_a_call_nobody_taught_the_check_fails_it_by_name(real_place: Place) -> None:
    with pytest.raises(KeyError, match="api calls dynamodb.Scan|api calls s3.PutBucketPolicy"):
        requests_of(real_place, _call("api", "s3", "PutBucketPolicy", Bucket="b"))


def test_every_function_of_the_contracts_has_a_role_checked(real_policies: Any) -> None:
    assert {spec.key for spec in functions.FUNCTIONS} <= set(real_policies)
