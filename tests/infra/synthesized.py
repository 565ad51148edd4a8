"""The synthesised template and small readers of it, shared by the infra tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

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

    def role_service(self, role_id: str) -> str:
        statement = self.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        (service,) = {s["Principal"]["Service"] for s in statement}
        return service


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
