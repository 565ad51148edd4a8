"""The synthesised template and small readers of it, shared by the infra tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra.nag import render
from infra.stack import OpenComposerStack


@dataclass
class Synth:
    stack: OpenComposerStack
    template: dict[str, Any]
    assertions: Template
    assembly_dir: Path  # cdk.out: the template, the assets manifest and the staged assets

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.template["Resources"].items() if r["Type"] == type_}

    def only(self, type_: str, **properties: Any) -> tuple[str, dict[str, Any]]:
        """The one resource of this type whose properties include these values."""
        found = [(lid, r) for lid, r in self.resources(type_).items()
                 if all(r.get("Properties", {}).get(k) == v for k, v in properties.items())]
        assert len(found) == 1, f"expected one {type_} with {properties}, found {len(found)}"
        return found[0]

    def type_of(self, reference: Any) -> str:
        """The resource type a Ref or Fn::GetAtt points at."""
        if "Ref" in reference:
            return self.template["Resources"][reference["Ref"]]["Type"]
        return self.template["Resources"][reference["Fn::GetAtt"][0]]["Type"]

    def statements(self) -> list[tuple[str, dict[str, Any]]]:
        """(policy logical id, statement) for every identity policy statement in the template."""
        found = []
        for lid, policy in self.resources("AWS::IAM::Policy").items():
            found += [(lid, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
        for lid, role in self.resources("AWS::IAM::Role").items():
            for inline in role["Properties"].get("Policies", []):
                found += [(lid, s) for s in inline["PolicyDocument"]["Statement"]]
        return found

    def roles_of(self, policy_id: str) -> list[str]:
        """The roles a policy (or an inline-policy role) applies to."""
        resource = self.template["Resources"][policy_id]
        if resource["Type"] == "AWS::IAM::Role":
            return [policy_id]
        return [role["Ref"] for role in resource["Properties"].get("Roles", [])]

    def lambda_functions(self) -> dict[str, dict[str, Any]]:
        """Logical id → properties, for the functions built from lambdas/ (not CDK's own)."""
        return {lid: r["Properties"] for lid, r in self.resources("AWS::Lambda::Function").items()
                if handler_of(r["Properties"]).startswith("lambdas.")}

    def function_of(self, handler: str) -> tuple[str, dict[str, Any]]:
        """(logical id, properties) of the one function that runs this handler."""
        found = [(lid, p) for lid, p in self.lambda_functions().items() if handler_of(p) == handler]
        assert len(found) == 1, f"expected one function running {handler}, found {len(found)}"
        return found[0]

    def role_of(self, handler: str) -> str:
        """The logical id of the role the function running this handler assumes."""
        return self.function_of(handler)[1]["Role"]["Fn::GetAtt"][0]

    def grants(self, role_id: str) -> dict[str, set[str]]:
        """Action → the resources (as `render` writes them) every Allow of the role grants it on."""
        granted: dict[str, set[str]] = {}
        for policy, statement in self.statements():
            if role_id in self.roles_of(policy) and statement["Effect"] == "Allow":
                resources = {render(r) for r in as_list(statement["Resource"])}
                for action in as_list(statement["Action"]):
                    granted.setdefault(action, set()).update(resources)
        return granted

    def assets_manifest(self) -> dict[str, Any]:
        return json.loads((self.assembly_dir / f"{self.stack.artifact_id}.assets.json").read_text())

    def docker_image_source(self, dockerfile: str) -> dict[str, Any]:
        """The source of the one Docker image asset built with this Dockerfile (repository path)."""
        found = [(tag, image["source"]) for tag, image in self.assets_manifest()["dockerImages"].items()
                 if image["source"]["dockerFile"] == dockerfile]
        assert len(found) == 1, f"expected one image built from {dockerfile}, found {len(found)}"
        tag, source = found[0]
        return {**source, "tag": tag}

    def role_service(self, role_id: str) -> str:
        statement = self.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        (service,) = {s["Principal"]["Service"] for s in statement}
        return service


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def handler_of(properties: dict[str, Any]) -> str:
    """The handler a function runs: its Handler (a zip function), or its image's command (a
    container image function has no Handler; ImageConfig.Command names it)."""
    if properties.get("PackageType") == "Image":
        command = properties.get("ImageConfig", {}).get("Command", [])
        return str(command[0]) if command else ""
    return str(properties.get("Handler", ""))
