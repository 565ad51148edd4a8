"""Least privilege, as a reviewer would check it in the template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from synthesized import Synth, as_list

from contracts import datasets, functions, names, storage
from infra.components.training import SAGEMAKER_LOG_GROUP
from infra.components.workflow import SAGEMAKER_SYNC_RULE, SYNC_LIST_TAGS
from infra.nag import STAR_RESOURCE_REASONS, render

# Managed policies are allowed on exactly these roles, each for a reason.
MANAGED_POLICIES = {
    # The account-level role API Gateway writes execution logs with (RestApi cloud_watch_role).
    ("apigateway.amazonaws.com", "AmazonAPIGatewayPushToCloudWatchLogs"),
    # CDK's own provider behind auto_delete_objects, so that `make destroy` can empty the buckets.
    ("lambda.amazonaws.com", "AWSLambdaBasicExecutionRole"),
}


def _star_actions(synth: Synth) -> dict[str, list[str]]:
    """Action → roles' services, for every Allow on Resource "*"."""
    found: dict[str, list[str]] = {}
    for policy, statement in synth.statements():
        if statement["Effect"] == "Allow" and "*" in as_list(statement["Resource"]):
            for action in as_list(statement["Action"]):
                found.setdefault(action, []).extend(synth.role_service(r) for r in synth.roles_of(policy))
    return found


def test_resource_star_only_for_actions_that_have_no_narrower_resource(synth: Synth) -> None:
    unexplained = set(_star_actions(synth)) - set(STAR_RESOURCE_REASONS)
    assert unexplained == set()


@pytest.mark.parametrize("action", sorted(STAR_RESOURCE_REASONS))
def test_each_named_resource_star_case_is_one_the_stack_really_needs(synth: Synth, action: str) -> None:
    # Each case is named here with its reason (infra/nag.py), and must still be in use.
    assert action in _star_actions(synth), f"{action} is allowed on '*' but nothing uses it"


def test_no_action_wildcards(synth: Synth) -> None:
    wildcards = {a for _, s in synth.statements() for a in as_list(s["Action"]) if "*" in a}
    assert wildcards == set()


def test_managed_policies_only_where_named(synth: Synth) -> None:
    attached = set()
    for lid, role in synth.resources("AWS::IAM::Role").items():
        for arn in as_list(role["Properties"].get("ManagedPolicyArns", [])):
            attached.add((synth.role_service(lid), render(arn).rsplit("/", 1)[-1]))
    assert attached == MANAGED_POLICIES


def test_only_the_state_machine_passes_a_role_and_only_the_training_role_to_sagemaker(synth: Synth) -> None:
    passes = [(policy, s) for policy, s in synth.statements() if "iam:PassRole" in as_list(s["Action"])]
    assert len(passes) == 1
    policy, statement = passes[0]
    assert [synth.role_service(r) for r in synth.roles_of(policy)] == ["states.amazonaws.com"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    (role_id,) = {statement["Resource"]["Fn::GetAtt"][0]}
    assert synth.role_service(role_id) == "sagemaker.amazonaws.com"


def _definition(synth: Synth) -> tuple[dict[str, Any], dict[str, Any]]:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    return json.loads(props["DefinitionString"]), props["DefinitionSubstitutions"]


def test_sagemaker_actions_reach_only_this_stacks_training_jobs(synth: Synth) -> None:
    prefix = synth.stack.training.job_prefix
    pattern = f"training-job/{prefix}-*"
    sagemaker = [(p, s) for p, s in synth.statements()
                 if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))]
    assert sagemaker
    for _, statement in sagemaker:
        if as_list(statement["Action"]) == [SYNC_LIST_TAGS]:
            continue  # on "*", as AWS publishes it (test below)
        assert [render(r).rsplit(":", 1)[-1] for r in as_list(statement["Resource"])] == [pattern]
    # ... which are the names the state machine gives its training jobs.
    text = json.dumps(_definition(synth)[0])
    formats = re.findall(r"TrainingJobName\.\$\": \"States\.Format\('([^']*)'", text)
    assert formats and all(n.startswith("${TrainingJobPrefix}-") for n in formats)
    assert len(names.training_job_name(prefix, "0" * 32)) <= names.TRAINING_JOB_NAME_MAX


def test_training_job_names_and_every_grant_and_log_stream_pattern_on_them_are_lower_case(
    synth: Synth,
) -> None:
    # SageMaker reports training job ARNs in lower case; IAM compares ARNs case-sensitively. With
    # a lower-case name, the stored name, the reported ARN and the grants are the same text.
    definition, substitutions = _definition(synth)
    states = definition["States"]
    prefix = substitutions["TrainingJobPrefix"]
    assert prefix == synth.stack.stack_name.lower() == synth.stack.training.job_prefix
    assert prefix == prefix.lower() and prefix != synth.stack.stack_name  # the stack is "OpenComposer"
    # The name the training job gets, and the name the job item keeps for POST /jobs/{id}/stop:
    job_name = "States.Format('${TrainingJobPrefix}-{}', $.job_id)"
    assert states["CreateTrainingJob"]["Parameters"]["TrainingJobName.$"] == job_name
    assert states["MarkStarting"]["Parameters"]["ExpressionAttributeValues"][":name"] == {"S.$": job_name}
    # Every pattern on training jobs and their log streams, in every role, is built from it.
    patterns = set()
    for _, statement in synth.statements():
        for resource in as_list(statement["Resource"]):
            text = render(resource)
            if ":training-job/" in text or ":log-stream:" in text:
                patterns.add(text.rsplit("training-job/", 1)[-1].rsplit("log-stream:", 1)[-1])
    assert patterns == {f"{prefix}-*"}
    assert all(p == p.lower() for p in patterns)


def test_list_tags_for_sync_is_granted_as_aws_publishes_it_and_only_to_the_state_machine(
    synth: Synth,
) -> None:
    grants = [(p, s) for p, s in synth.statements() if SYNC_LIST_TAGS in as_list(s["Action"])]
    assert len(grants) == 1
    policy, statement = grants[0]
    # Step Functions developer guide, "IAM policies for Amazon SageMaker AI", CreateTrainingJob
    # .sync: {"Action": ["sagemaker:ListTags"], "Resource": ["*"]}, a statement of its own.
    assert as_list(statement["Action"]) == [SYNC_LIST_TAGS] and as_list(statement["Resource"]) == ["*"]
    assert [synth.role_service(r) for r in synth.roles_of(policy)] == ["states.amazonaws.com"]
    assert "createTrainingJob.sync" in STAR_RESOURCE_REASONS[SYNC_LIST_TAGS]


def test_state_machine_holds_what_sync_needs_and_the_managed_rule_only(synth: Synth) -> None:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [s for p, s in synth.statements() if role_id in synth.roles_of(p)]
    actions = {a: s for s in statements for a in as_list(s["Action"])}
    assert {"sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
            "sagemaker:StopTrainingJob", "iam:PassRole", "events:PutRule"} <= set(actions)
    for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
        assert render(actions[action]["Resource"]).endswith(f":rule/{SAGEMAKER_SYNC_RULE}")
    assert actions["dynamodb:UpdateItem"]["Resource"]["Fn::GetAtt"][1] == "Arn"  # the table itself


def test_training_role_reaches_only_job_prefixes_job_items_the_image_and_its_logs(synth: Synth) -> None:
    (role_id,) = [lid for lid in synth.resources("AWS::IAM::Role") if synth.role_service(lid) ==
                  "sagemaker.amazonaws.com"]
    statements = [s for p, s in synth.statements() if role_id in synth.roles_of(p)]
    for statement in statements:
        actions = as_list(statement["Action"])
        resources = [render(r) for r in as_list(statement["Resource"])]
        service = actions[0].split(":")[0]
        assert all(a.startswith(f"{service}:") for a in actions)
        if service == "s3" and actions != ["s3:ListBucket"]:
            # a job's folders, and (to read only) a dataset's built pieces: its `dataset` channel
            built = f"/{datasets.built_prefix('*')}*"
            assert all(re.fullmatch(rf"<\w+\.Arn>/{storage.JOBS_PREFIX}\*/\w+/\*", r)
                       or (actions == ["s3:GetObject"] and r.endswith(built)) for r in resources)
        elif service == "s3":
            assert statement["Condition"] == {
                "StringLike": {"s3:prefix": [f"{storage.JOBS_PREFIX}*", f"{datasets.built_prefix('*')}*"]}}
        elif service == "dynamodb":
            # No read: the reporter learns a job's status from its failed conditional update.
            assert set(actions) == {"dynamodb:UpdateItem", "dynamodb:PutItem"}
            assert statement["Condition"] == {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [storage.job_pk("*")]}}
            assert all(re.fullmatch(r"<\w+\.Arn>", r) for r in resources)
        elif service == "ecr" and actions != ["ecr:GetAuthorizationToken"]:
            assert all("cdk-hnb659fds-container-assets-" in r for r in resources)
        elif service == "logs":
            assert all(f":log-group:{SAGEMAKER_LOG_GROUP}:" in r for r in resources)
        else:
            assert resources == ["*"] and set(actions) <= set(STAR_RESOURCE_REASONS)


def test_redrive_reads_the_jobs_stream_consumes_its_queue_starts_executions_and_ends_jobs_only(
    synth: Synth,
) -> None:
    _, function = synth.only("AWS::Lambda::Function", Handler=functions.REDRIVE.handler)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    granted: dict[str, set[str]] = {}
    for policy, statement in synth.statements():
        if role_id in synth.roles_of(policy) and statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                granted.setdefault(action, set()).update(render(r) for r in as_list(statement["Resource"]))
    (table,) = synth.resources("AWS::DynamoDB::Table")
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine")
    (mapping,) = [m["Properties"] for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": synth.only(
                      "AWS::Lambda::Function", Handler=functions.REDRIVE.handler)[0]}]
    queue = render(mapping["EventSourceArn"])
    assert {a: r for a, r in granted.items() if a.split(":")[0] in {"dynamodb", "states"}} == {
        "dynamodb:GetShardIterator": {f"<{table}.StreamArn>"},  # the failed batch, read back
        "dynamodb:GetRecords": {f"<{table}.StreamArn>"},
        "dynamodb:UpdateItem": {f"<{table}.Arn>"},  # fail_unstarted, conditional
        "states:StartExecution": {f"<{machine}>"},
    }
    sqs = {a: r for a, r in granted.items() if a.startswith("sqs:")}
    assert "sqs:DeleteMessage" in sqs and all(r == {queue} for r in sqs.values())
    assert {a.split(":")[0] for a in granted} == {"dynamodb", "states", "sqs", "logs", "xray"}
