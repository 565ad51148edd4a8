"""The Lambda asset every function shares, and the function construct each is built with, both
from `contracts.functions`.

The asset is a folder holding `contracts.functions.ASSET_PACKAGES` plus the wheels of
`lambdas/requirements.txt`, built by pip on this machine for the Lambda platform: no Docker, so
`make deploy` works where Docker is only needed for the training image. Tests and `make synth`
skip bundling (the `aws:cdk:bundling-stacks` context) and stage the packages as they are, so
they stay offline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, Duration, IgnoreMode, ILocalBundling, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from contracts import functions
from infra.components.paths import LAMBDA_REQUIREMENTS, REPO_ROOT

# Lambda's architecture → the platform pip fetches wheels for (never this machine's).
_ARCHITECTURES = {
    "x86_64": (lambda_.Architecture.X86_64, "manylinux2014_x86_64"),
    "arm64": (lambda_.Architecture.ARM_64, "manylinux2014_aarch64"),
}
ARCHITECTURE, PIP_PLATFORM = _ARCHITECTURES[functions.ARCHITECTURE]
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def runtime(name: str) -> lambda_.Runtime:
    """CDK's Python runtime of this name (`python3.12`), the constant CDK itself defines."""
    found = [r for r in lambda_.Runtime.ALL if r.name == name and r.family == lambda_.RuntimeFamily.PYTHON]
    if not found:
        raise ValueError(f"aws-cdk-lib knows no Python Lambda runtime {name!r}")
    return found[0]


# The one asset's runtime: its wheels are resolved for this Python, so every function runs it.
RUNTIME = runtime(functions.RUNTIME)
PIP_PYTHON_VERSION = functions.RUNTIME.removeprefix("python")


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
        for package in functions.ASSET_PACKAGES:
            shutil.copytree(REPO_ROOT / package, out / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"))
        # Returning True tells CDK the asset is built; Docker is never tried.
        return True


def handlers_code(scope: Construct) -> lambda_.Code:
    """One asset for every function: the handlers share `lambdas.common` and the contracts.

    Where the stack is bundled (`cdk deploy`), `PipBundling` builds it; elsewhere (`make synth`,
    the tests) synth stages a plain copy of the packages, offline, without the wheels."""
    bundling = None
    if Stack.of(scope).bundling_required:
        bundling = BundlingOptions(image=RUNTIME.bundling_image, local=PipBundling())  # type: ignore[arg-type]
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        # .dockerignore rules: everything out, the asset's packages back in, caches out again
        # (the asset's hash then follows exactly what it holds, lambdas/requirements.txt included).
        ignore_mode=IgnoreMode.DOCKER,
        exclude=["*", *(f"!{package}" for package in functions.ASSET_PACKAGES),
                 "**/__pycache__", "**/*.pyc"],
        bundling=bundling,
    )


class PythonFunction(Construct):
    """A function of `contracts.functions` (handler, runtime, memory, timeout, environment) with
    its own log group, X-Ray tracing and a role that may write only to that log group (no AWS
    managed policy). `environment`: a value for each variable name the spec lists."""

    def __init__(self, scope: Construct, id: str, *, spec: functions.FunctionSpec, code: lambda_.Code,
                 environment: dict[str, str]) -> None:
        super().__init__(scope, id)
        if spec.runtime != functions.RUNTIME:
            raise ValueError(f"function {spec.key!r} runs {spec.runtime}, but the shared Lambda asset's "
                             f"wheels are built for {functions.RUNTIME}")
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{spec.description}: its log group, tracing, and its own grants")
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self, "Function",
            runtime=runtime(spec.runtime),
            architecture=ARCHITECTURE,
            code=code,
            handler=spec.handler,
            environment=functions.environment(spec, environment),
            description=spec.description,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
        )
