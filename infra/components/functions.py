"""The Lambda asset shared by both handlers, and the function construct they are built with.

The asset is a folder holding `lambdas/` plus the wheels of `lambdas/requirements.txt`, built by
pip on this machine for the Lambda platform: no Docker, so `make deploy` works where Docker is
only needed for the training image. Tests and `make synth` skip bundling altogether (the
`aws:cdk:bundling-stacks` context), so they stay offline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, Duration, IgnoreMode, ILocalBundling, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from contracts.functions import ASSET_PACKAGES
from infra.components.paths import LAMBDA_REQUIREMENTS, REPO_ROOT

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
# Wheels for the runtime above: pip resolves for that platform and Python, never this machine's.
PIP_PLATFORM = "manylinux2014_x86_64"
PIP_PYTHON_VERSION = RUNTIME.name.removeprefix("python")
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


@jsii.implements(ILocalBundling)
class PipBundling:
    """Builds the asset with pip (`--platform`, `--only-binary`) instead of a Docker container."""

    # jsii hands the bundling options over as one positional struct.
    def try_bundle(self, output_dir: str, _options: BundlingOptions) -> bool:
        out = Path(output_dir)
        if LAMBDA_REQUIREMENTS.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-compile",  # no .pyc: the asset's hash then changes only with its content
                 "--platform", PIP_PLATFORM, "--implementation", "cp",
                 "--python-version", PIP_PYTHON_VERSION, "--only-binary=:all:",
                 "--target", str(out), "--requirement", str(LAMBDA_REQUIREMENTS)],
                check=True,
            )
        for package in ASSET_PACKAGES:
            shutil.copytree(REPO_ROOT / package, out / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"))
        # Returning True tells CDK the asset is built; Docker is never tried.
        return True


def handlers_code() -> lambda_.Code:
    """One asset for every function: the handlers share `lambdas.common` and the contracts."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        # .dockerignore rules: everything out, the asset's packages back in, caches out again
        # (the asset's hash then follows exactly what it holds).
        ignore_mode=IgnoreMode.DOCKER,
        exclude=["*", *(f"!{package}" for package in ASSET_PACKAGES), "**/__pycache__", "**/*.pyc"],
        # mypy compares with the stub's keyword form of try_bundle, which jsii does not call.
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=PipBundling()),  # type: ignore[arg-type]
    )


class PythonFunction(Construct):
    """A handler from `lambdas/` with its own log group, X-Ray tracing and a role that may write
    only to that log group (no AWS managed policy)."""

    def __init__(self, scope: Construct, id: str, *, code: lambda_.Code, handler: str,
                 environment: dict[str, str], description: str, timeout: Duration,
                 memory_size: int = 512) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{description}: its log group, tracing, and its own grants")
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=handler,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": "opencomposer",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
            description=description,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout,
            memory_size=memory_size,
        )
