"""The owner rule (contracts/owners.py): what stays the same between one caller's requests."""

from __future__ import annotations

import pytest

from contracts import deployment, owners


@pytest.mark.parametrize(
    ("caller", "owner"),
    [
        # An assumed role: the session, which its caller names freely, is dropped.
        ("arn:aws:sts::123456789012:assumed-role/ci-deployer/github-run-42",
         "arn:aws:sts::123456789012:assumed-role/ci-deployer"),
        ("arn:aws:sts::123456789012:assumed-role/ci-deployer/botocore-session-1733120000",
         "arn:aws:sts::123456789012:assumed-role/ci-deployer"),
        ("arn:aws-cn:sts::123456789012:assumed-role/Admin/alice@example.com",
         "arn:aws-cn:sts::123456789012:assumed-role/Admin"),
        ("arn:aws-us-gov:sts::123456789012:assumed-role/r/s",
         "arn:aws-us-gov:sts::123456789012:assumed-role/r"),
        # IAM Identity Center: one role per permission set, the session is the person: kept.
        ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123abcd/alice",
         "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123abcd/alice"),
        # Everything else as it is.
        ("arn:aws:iam::123456789012:user/team/bob", "arn:aws:iam::123456789012:user/team/bob"),
        ("arn:aws:sts::123456789012:federated-user/carol", "arn:aws:sts::123456789012:federated-user/carol"),
        ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
        (deployment.LOCAL_OWNER, deployment.LOCAL_OWNER),
    ],
)
def test_the_owner_of_each_kind_of_caller(caller: str, owner: str) -> None:
    assert owners.owner(caller) == owner


def test_two_sessions_of_one_role_are_one_owner_and_two_roles_are_two() -> None:
    def session(role: str, name: str) -> str:
        return owners.owner(f"arn:aws:sts::123456789012:assumed-role/{role}/{name}")

    assert session("ci", "run-1") == session("ci", "run-2")
    assert session("ci", "run-1") != session("cd", "run-1")
    other_account = "arn:aws:sts::210987654321:assumed-role/ci/x"
    assert session("ci", "x") != owners.owner(other_account)
