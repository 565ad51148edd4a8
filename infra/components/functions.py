"""The Lambda functions of `contracts.functions`, and the code each runs.

Zip functions (`PythonFunction`) share one asset: a folder holding
`contracts.functions.ASSET_PACKAGES` plus the wheels of `lambdas/requirements.txt`, built by pip
on this machine for the Lambda platform, without Docker. Tests and `make synth` skip bundling
(the `aws:cdk:bundling-stacks` context) and stage the packages as they are, so they stay offline.

The compose function (`ImageFunction`, spec `image=True`) runs PyTorch, far over a zip
function's 250 MB: a container image built from `contracts.functions.COMPOSE_DOCKERFILE` (Lambda's
Python base image, CPU PyTorch, `IMAGE_PACKAGES`), so `cdk deploy` needs Docker for it as for
the training image. Synth only stages its build context (`compose_code`), cut down to the
image's packages.

Both kinds get the same treatment (`_LambdaFunction`): their own log group, X-Ray tracing, a
role that may write only to that log group (no AWS managed policy), the contract's
architecture, memory, timeout, environment and description.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, Duration, IgnoreMode, ILocalBundling, RemovalPolicy, Size, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from contracts import functions
from infra.components.paths import LAMBDA_REQUIREMENTS, REPO_ROOT

# Lambda's architecture → the platform pip fetches wheels for (never this machine's), and the
# platform Docker builds the compose image for.
_ARCHITECTURES = {
    "x86_64": (lambda_.Architecture.X86_64, "manylinux2014_x86_64", ecr_assets.Platform.LINUX_AMD64),
    "arm64": (lambda_.Architecture.ARM_64, "manylinux2014_aarch64", ecr_assets.Platform.LINUX_ARM64),
}
ARCHITECTURE, PIP_PLATFORM, IMAGE_PLATFORM = _ARCHITECTURES[functions.ARCHITECTURE]
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
_DEFAULT_TMP_MB = 512


def runtime(name: str) -> lambda_.Runtime:
    """CDK's Python runtime of this name (`python3.12`), the constant CDK itself defines."""
    found = [r for r in lambda_.Runtime.ALL if r.name == name and r.family == lambda_.RuntimeFamily.PYTHON]
    if not found:
        raise ValueError(f"aws-cdk-lib knows no Python Lambda runtime {name!r}")
    return found[0]


# The one asset's runtime: its wheels are resolved for this Python, so every zip function runs
# it; the compose image's base image is this Python too (`image_code`).
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
    """One asset for every zip function: the handlers share `lambdas.common` and the contracts.

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




# The compose image's build context: the repository root cut down to the image's packages
# (lambdas/ holds its Dockerfile and requirements too). .dockerignore rules: everything out, the
# packages back in, caches out again. Synth copies the context into cdk.out, so nothing else may
# come along (.venv, node_modules, cdk.out, .git), and its hash follows exactly what it holds.
IMAGE_CONTEXT_EXCLUDE = ["*", *(f"!{path}" for path in functions.IMAGE_PACKAGES),
                         "**/__pycache__", "**/*.pyc"]


def image_code(spec: functions.FunctionSpec) -> lambda_.DockerImageCode:
    """The container image of an `image` spec, built by `cdk deploy` (Docker) from the repository
    root with `contracts.functions.COMPOSE_DOCKERFILE`; synth only stages the context, offline.

    The base image's Python is the contract's runtime (the Dockerfile's PYTHON_VERSION), and the
    image command is the spec's handler, so the template names the handler the spec does."""
    if not spec.image:
        raise ValueError(f"function {spec.key!r} is a zip function: it runs the shared Lambda asset")
    return lambda_.DockerImageCode.from_image_asset(
        str(REPO_ROOT),
        file=functions.COMPOSE_DOCKERFILE,
        platform=IMAGE_PLATFORM,
        build_args={"PYTHON_VERSION": PIP_PYTHON_VERSION},
        cmd=[spec.handler],
        ignore_mode=IgnoreMode.DOCKER,
        exclude=IMAGE_CONTEXT_EXCLUDE,
    )


class _LambdaFunction(Construct):
    """What every function of `contracts.functions` gets, zip or image: its own log group, X-Ray
    tracing and a role that may write only to that log group (no AWS managed policy); the
    architecture, memory, timeout, environment and description of its spec. Subclasses make
    `self.function` with `_settings`."""

    function: lambda_.Function

    def __init__(self, scope: Construct, id: str, *, spec: functions.FunctionSpec) -> None:
        super().__init__(scope, id)
        self.spec = spec
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{spec.description}: its log group, tracing, and its own grants")
        self.log_group.grant_write(self.role)

    def _settings(self, environment: dict[str, str]) -> dict[str, Any]:
        """The function's properties beside its code, the same for both kinds. `environment`: a
        value for each variable name the spec lists."""
        return dict(
            architecture=ARCHITECTURE,
            environment=functions.environment(self.spec, environment),
            description=self.spec.description,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(self.spec.timeout_s),
            memory_size=self.spec.memory_mb,
            # Lambda's default /tmp left unsaid, so only a function that needs more declares it
            **({"ephemeral_storage_size": Size.mebibytes(self.spec.ephemeral_storage_mb)}
               if self.spec.ephemeral_storage_mb != _DEFAULT_TMP_MB else {}),
        )


class PythonFunction(_LambdaFunction):
    """A zip function: the spec's handler and runtime, running the shared Lambda asset (`code`)."""

    def __init__(self, scope: Construct, id: str, *, spec: functions.FunctionSpec, code: lambda_.Code,
                 environment: dict[str, str]) -> None:
        if spec.image:
            raise ValueError(f"function {spec.key!r} is a container image: build it with ImageFunction")
        if spec.runtime != functions.RUNTIME:
            raise ValueError(f"function {spec.key!r} runs {spec.runtime}, but the shared Lambda asset's "
                             f"wheels are built for {functions.RUNTIME}")
        super().__init__(scope, id, spec=spec)
        self.function = lambda_.Function(
            self, "Function",
            runtime=runtime(spec.runtime),
            code=code,
            handler=spec.handler,
            **self._settings(environment),
        )


class ImageFunction(_LambdaFunction):
    """A container image function (spec `image=True`): the image (`image_code`) brings its own
    Python, the contract's runtime, and its command is the spec's handler, so the template has
    neither Runtime nor Handler (ImageConfig.Command names the handler)."""

    def __init__(self, scope: Construct, id: str, *, spec: functions.FunctionSpec,
                 environment: dict[str, str]) -> None:
        super().__init__(scope, id, spec=spec)
        self.function = lambda_.DockerImageFunction(
            self, "Function",
            code=image_code(spec),
            **self._settings(environment),
        )
