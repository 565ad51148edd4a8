"""Each component's IAM statements in the synthesised template, with every CloudFormation token
resolved to the local stack's names, so they can be evaluated against the local calls.

The synth is environment-agnostic; its pseudo parameters are given the local stack's fixed
region and account (contracts.deployment) and `aws` partition. Ref and Fn::GetAtt of the
resources the local stack also has become its physical names and ARNs (`LocalNames`): the jobs
table and its stream, the artifacts bucket, the state machine, the functions, and the roles (by
the service that assumes them). Any other resource (a queue, a log group, the image repository)
becomes a placeholder that names it, `<LogicalId.Attr>`, which no local call can match: its
grants are ones no component calls locally, and the reverse check says so for each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from synthesized import Synth, as_list, handler_of

from contracts import functions
from opencomposer.local.aws_calls import STATE_MACHINE, TRAINING
from opencomposer.local.resources import LocalNames

# The role each service principal's statements are for, as the local stack names it.
_ROLE_BY_SERVICE = {"lambda.amazonaws.com": "lambda", "states.amazonaws.com": "states",
                    "sagemaker.amazonaws.com": "training"}


@dataclass
class Resolver:
    synth: Synth
    names: LocalNames
    stream_arn: str

    def __post_init__(self) -> None:
        self.resources = self.synth.template["Resources"]
        self.pseudo = {"AWS::Region": self.names.region, "AWS::AccountId": self.names.account,
                       "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                       "AWS::StackName": self.synth.stack.stack_name}
        # the artifacts bucket is the one the functions' environment names
        api_env = self.synth.function_of(functions.API.handler)[1]["Environment"]["Variables"]
        self.artifacts_bucket = api_env[functions.ENV_BUCKET]["Ref"]

    def physical(self, logical: str, attribute: str | None) -> str:
        kind = self.resources[logical]["Type"]
        n = self.names
        region_account = f"{n.region}:{n.account}"
        if kind == "AWS::DynamoDB::Table":
            return {None: n.table, "Arn": f"arn:aws:dynamodb:{region_account}:table/{n.table}",
                    "StreamArn": self.stream_arn}[attribute]
        if kind == "AWS::S3::Bucket" and logical == self.artifacts_bucket:
            return {None: n.bucket, "Arn": f"arn:aws:s3:::{n.bucket}"}[attribute]
        if kind == "AWS::StepFunctions::StateMachine":
            return {None: n.state_machine_arn, "Arn": n.state_machine_arn, "Name": n.state_machine}[attribute]
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return n.role_arn(_ROLE_BY_SERVICE.get(self.synth.role_service(logical), logical))
        if kind == "AWS::Lambda::Function":
            properties = self.synth.lambda_functions().get(logical)
            key = next((s.key for s in functions.FUNCTIONS
                        if properties and s.handler == handler_of(properties)), None)
            if key is not None:
                name = n.function_name(key)
                return {None: name, "Arn": f"arn:aws:lambda:{region_account}:function:{name}"}[attribute]
        return f"<{logical}.{attribute}>" if attribute else f"<{logical}>"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {k: self.resolve(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.pseudo.get(argument) or self.physical(argument, None)
        if function == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.physical(logical, attribute)
        if function == "Fn::Join":
            return str(argument[0]).join(str(self.resolve(v)) for v in argument[1])
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return str(self.resolve(variables[name]))
                if name in self.pseudo:
                    return self.pseudo[name]
                logical, _, attribute = name.partition(".")
                return self.physical(logical, attribute or None)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        raise ValueError(f"cannot resolve {function} in {value!r}")


def component_roles(synth: Synth) -> dict[str, str]:
    """Component → the logical id of the role it runs as: each function of contracts.functions
    the template deploys, the state machine, and the training jobs' execution role."""
    roles = {spec.key: synth.role_of(spec.handler) for spec in functions.FUNCTIONS
             if any(handler_of(p) == spec.handler for p in synth.lambda_functions().values())}
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    roles[STATE_MACHINE] = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    (training,) = [lid for lid in synth.resources("AWS::IAM::Role")
                   if synth.role_service(lid) == "sagemaker.amazonaws.com"]
    roles[TRAINING] = training
    return roles


def resource_denies(synth: Synth, resolver: Resolver) -> list[dict[str, Any]]:
    """The explicit Denies of the resource policies (the buckets' TLS-only statements) that apply
    to every principal: an explicit Deny there refuses a call whatever the role allows. Their
    Allows are left out: each names one other principal (CDK's auto-delete provider)."""
    found = []
    for policy in synth.resources("AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Principal") in ("*", {"AWS": "*"}):
                found.append(resolver.resolve(dict(statement)))
    return found


def component_statements(synth: Synth, resolver: Resolver) -> dict[str, list[dict[str, Any]]]:
    """Component → its identity-policy statements, then the resource policies' Denies, tokens
    resolved."""
    denies = resource_denies(synth, resolver)
    found: dict[str, list[dict[str, Any]]] = {}
    for component, role in component_roles(synth).items():
        found[component] = [resolver.resolve(dict(s)) for p, s in synth.statements()
                            if role in synth.roles_of(p)] + denies
    return found


def granted_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}
