"""The training workflow: the state machine deployed from `statemachine/training.asl.json` as
the file is (the local stack runs the same bytes), its `${Placeholders}` filled by
CloudFormation's definition substitutions, and a role holding exactly what its tasks call."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts import names
from infra.components.functions import LOG_RETENTION
from infra.components.training import Training

# The rule Step Functions creates (and then only uses) to watch SageMaker jobs for `.sync`.
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
_OPTIMISED = "arn:aws:states:::"
_TRAINING_JOB_ACTIONS = {"createTrainingJob", "describeTrainingJob", "stopTrainingJob"}
_SYNC_ACTIONS = {"sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"}
# AWS's published policy for createTrainingJob.sync (Step Functions developer guide, "IAM policies
# for Amazon SageMaker AI") grants sagemaker:ListTags on "*", apart from the job actions.
SYNC_LIST_TAGS = "sagemaker:ListTags"


def task_resources(definition: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(Resource, Parameters) of every Task state, nested ones (Parallel, Map) included."""
    def walk(node: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if isinstance(node, dict):
            if node.get("Type") == "Task" and isinstance(node.get("Resource"), str):
                yield node["Resource"], node.get("Parameters") or node.get("Arguments") or {}
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    yield from walk(json.loads(definition))


class Workflow(Construct):
    def __init__(self, scope: Construct, id: str, *, definition_path: Path, table: dynamodb.ITable,
                 substitutions: Mapping[str, Callable[[], str]], training: Training) -> None:
        """`substitutions`: a value maker per placeholder the stack knows, called only for the
        placeholders the definition uses (a stack parameter exists only if it is used)."""
        super().__init__(scope, id)
        definition = definition_path.read_text()
        used = names.placeholders(definition)
        if missing := used - substitutions.keys():
            raise ValueError(f"{definition_path.name} uses placeholders the stack does not fill: "
                             f"{', '.join(sorted(missing))}; add them to the stack's substitutions")

        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            # Inlined (not an S3 asset) so the template holds the deployed definition itself.
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=self._substitutions(definition, used, substitutions),
            state_machine_type=sfn.StateMachineType.STANDARD,  # `.sync` integrations need STANDARD
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=True),
            tracing_enabled=True,
        )
        self._grant_tasks(definition, where=definition_path.name, table=table, training=training)

    @staticmethod
    def _substitutions(definition: str, used: set[str],
                       makers: Mapping[str, Callable[[], str]]) -> dict[str, str]:
        values = {name: makers[name]() for name in sorted(used)}
        # A `${Name}` only in a Comment is prose: it becomes the plain word, so that no `${...}`
        # reaches CloudFormation without a value (cfn-lint E1029) and the text still reads.
        for name in sorted(names.all_placeholders(definition) - used):
            values[name] = name
        return values

    def _grant_tasks(self, definition: str, *, where: str, table: dynamodb.ITable,
                     training: Training) -> None:
        """Each action the definition's tasks call, on the one resource it is called on."""
        role = self.state_machine.role
        table_actions: set[str] = set()
        job_actions: set[str] = set()
        for resource, parameters in task_resources(definition):
            if not resource.startswith(_OPTIMISED):
                raise ValueError(f"{where}: task resource {resource!r} is not a service integration "
                                 "this stack knows how to grant")
            service, _, action = resource.removeprefix(_OPTIMISED).removeprefix("aws-sdk:").partition(":")
            action, _, pattern = action.partition(".")
            iam_action = f"{service}:{action[:1].upper()}{action[1:]}"
            if service == "dynamodb":
                table_actions.add(iam_action)
            elif service == "sagemaker" and action in _TRAINING_JOB_ACTIONS:
                job_actions.add(iam_action)
                if "Tags" in parameters or "Tags.$" in parameters:
                    job_actions.add("sagemaker:AddTags")
                if pattern == "sync":
                    # What `.sync` adds (as AWS's published policy for it, and CDK's
                    # SageMakerCreateTrainingJob task, grant it): it polls the job, stops it when
                    # the execution stops, reads its tags (ListTags on "*", as published: see
                    # infra/nag.py), and keeps a managed EventBridge rule that reports the end.
                    job_actions.update(_SYNC_ACTIONS)
                    iam.Grant.add_to_principal(grantee=role, actions=[SYNC_LIST_TAGS], resource_arns=["*"])
                    iam.Grant.add_to_principal(
                        grantee=role, actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                        resource_arns=[Stack.of(self).format_arn(service="events", resource="rule",
                                                                 resource_name=SAGEMAKER_SYNC_RULE)])
            else:
                raise ValueError(f"{where}: no grant is defined for task resource {resource!r}; "
                                 "add one in infra/components/workflow.py")
        if table_actions:
            iam.Grant.add_to_principal(grantee=role, actions=sorted(table_actions),
                                       resource_arns=[table.table_arn])
        if job_actions:
            iam.Grant.add_to_principal(grantee=role, actions=sorted(job_actions),
                                       resource_arns=[training.job_arn_pattern])
        if "sagemaker:CreateTrainingJob" in job_actions:
            # The job runs as the training role: passing it is allowed to SageMaker only.
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["iam:PassRole"], resources=[training.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
