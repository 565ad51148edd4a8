"""Shared by every test: no test can reach a real AWS account.

Removes the caller's AWS settings (profiles, endpoints, real keys) and sets fake credentials
and a region, before each test.
"""

from __future__ import annotations

import os

import pytest

from contracts import deployment

_FAKE = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": deployment.LOCAL_REGION,
    "AWS_REGION": deployment.LOCAL_REGION,
    # botocore's account-id endpoints are unknown to moto (DynamoDB in decorator mode).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in _FAKE.items():
        monkeypatch.setenv(name, value)
    # No shared config or credentials file of the user's may fill in anything.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
