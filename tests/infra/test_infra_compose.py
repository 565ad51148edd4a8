"""The compose function on AWS: a container image (Lambda's Python base image, CPU PyTorch, the
packages of `contracts.functions.IMAGE_PACKAGES`) built from `lambdas/compose/Dockerfile`, whose
build context synth stages without Docker; and exactly the grants POST
/jobs/{job_id}/compositions needs. The image itself is built only by `cdk deploy` (Docker and
AWS's public registry): these tests read the template, the staged context, the Dockerfile and
its requirements."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from synthesized import Synth

from contracts import datasets, functions, storage
from infra.components.paths import LAMBDA_REQUIREMENTS, REPO_ROOT

SPEC = functions.COMPOSE
DOCKERFILE = REPO_ROOT / functions.COMPOSE_DOCKERFILE
REQUIREMENTS = REPO_ROOT / functions.COMPOSE_REQUIREMENTS
BASE_IMAGE = "public.ecr.aws/lambda/python"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# What Lambda's Python base image brings itself (AWS's SDK), beside the standard library.
BASE_IMAGE_DISTRIBUTIONS = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3",
                            "six"}
# The staged context holds a few hundred KB of source; a dependency folder or a virtual
# environment that slipped in would be tens of MB.
MAX_CONTEXT_BYTES = 2 * 1024 * 1024


def _bucket_objects(synth: Synth, key_pattern: str) -> str:
    (bucket,) = [lid for lid, b in synth.resources("AWS::S3::Bucket").items()
                 if "LoggingConfiguration" in b["Properties"]]  # the artifacts bucket
    return f"<{bucket}.Arn>/{key_pattern}"


def _folder(synth: Synth, prefix_of: Any) -> str:
    """Every object under one per-job folder (`storage`'s function of a job id)."""
    return _bucket_objects(synth, f"{prefix_of('*')}*")


def _table(synth: Synth) -> str:
    (table,) = synth.resources("AWS::DynamoDB::Table")
    return f"<{table}.Arn>"


def _own_grants(synth: Synth, handler: str) -> dict[str, set[str]]:
    """The role's grants beside what every function gets (its log group, X-Ray)."""
    return {action: resources for action, resources in synth.grants(synth.role_of(handler)).items()
            if action.split(":")[0] not in {"logs", "xray"}}


# --- the function -------------------------------------------------------------------------------


def test_the_compose_function_is_a_container_image_of_its_own_asset(synth: Synth) -> None:
    _, props = synth.function_of(SPEC.handler)
    assert props["PackageType"] == "Image"
    assert "Runtime" not in props and "Handler" not in props and "S3Key" not in props["Code"]
    assert props["ImageConfig"] == {"Command": [SPEC.handler]}
    # The image is the asset built from the compose Dockerfile, in CDK's bootstrap repository.
    source = synth.docker_image_source(functions.COMPOSE_DOCKERFILE)
    uri = props["Code"]["ImageUri"]["Fn::Sub"]
    repository = "cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}"
    assert uri.endswith(f"/{repository}:{source['tag']}")
    # Built for the functions' architecture, on the contract's Python.
    assert source["platform"] == {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[functions.ARCHITECTURE]
    assert props["Architectures"] == [functions.ARCHITECTURE]
    assert source["dockerBuildArgs"] == {"PYTHON_VERSION": functions.RUNTIME.removeprefix("python")}


def test_the_compose_function_has_its_specs_memory_timeout_and_environment(synth: Synth) -> None:
    _, props = synth.function_of(SPEC.handler)
    assert (props["MemorySize"], props["Timeout"], props["Description"]) == (
        SPEC.memory_mb, SPEC.timeout_s, SPEC.description)
    assert SPEC.timeout_s <= 29  # API Gateway's integration timeout
    variables = props["Environment"]["Variables"]
    assert set(variables) == {functions.ENV_TABLE, functions.ENV_BUCKET, *functions.POWERTOOLS_ENVIRONMENT}
    assert synth.type_of(variables[functions.ENV_TABLE]) == "AWS::DynamoDB::Table"
    assert synth.type_of(variables[functions.ENV_BUCKET]) == "AWS::S3::Bucket"


# --- least privilege ----------------------------------------------------------------------------


def test_compose_may_read_the_job_count_and_add_compositions_and_use_the_model_and_composed_folders_only(
    synth: Synth,
) -> None:
    composed, model = _folder(synth, storage.composed_prefix), _folder(synth, storage.model_output_prefix)
    assert composed.endswith("/jobs/*/composed/*") and model.endswith("/jobs/*/model/*")
    assert _own_grants(synth, SPEC.handler) == {
        # The job; the count of its compositions; TransactWriteItems = its two operations.
        "dynamodb:GetItem": {_table(synth)},
        "dynamodb:Query": {_table(synth)},
        "dynamodb:ConditionCheckItem": {_table(synth)},
        "dynamodb:PutItem": {_table(synth)},
        # model.tar.gz in; the composition's MIDI out, presigned, removed again if need be.
        "s3:GetObject": {model, composed},
        "s3:PutObject": {composed},
        "s3:DeleteObject": {composed},
    }


def test_compose_reads_no_melody_or_samples_and_writes_nothing_outside_composed(synth: Synth) -> None:
    grants = _own_grants(synth, SPEC.handler)
    s3 = {r for action, resources in grants.items() if action.startswith("s3:") for r in resources}
    for folder in ("input", "samples", "compositions", "checkpoints"):
        assert not any(f"/{folder}/" in resource for resource in s3), folder
    assert not any(resource.endswith(("/jobs/*", "/*/*")) or resource.endswith(".Arn>") for resource in s3)
    writes = ("s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging")
    written = {r for a in writes for r in grants.get(a, ())}
    assert written == {_folder(synth, storage.composed_prefix)}
    # No index, no stream, no other table write; no bucket listing, no SageMaker, no Step Functions.
    assert {a.split(":")[0] for a in grants} == {"dynamodb", "s3"}
    refused = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "s3:ListBucket"}
    assert not refused & set(grants)


def test_the_api_presigns_the_composed_midi_and_the_model_and_keeps_its_other_grants(synth: Synth) -> None:
    grants = _own_grants(synth, functions.API.handler)
    table = _table(synth)
    assert grants["s3:GetObject"] == {_folder(synth, folder) for folder in (
        lambda job: f"{storage.job_prefix(job)}compositions/", storage.samples_prefix,
        storage.composed_prefix, storage.model_output_prefix)} | {
        _bucket_objects(synth, datasets.report_key("*")),  # GET /datasets/{id} presigns the report
        _bucket_objects(synth, datasets.index_key("*"))}  # POST /jobs counts a filter against it
    assert grants["s3:PutObject"] == {_bucket_objects(synth, "jobs/*/input/*"),
                                      _bucket_objects(synth, datasets.upload_key("*"))}  # presigned POST
    assert grants["s3:DeleteObject"] == {_bucket_objects(synth, f"{storage.JOBS_PREFIX}*"),
                                         _bucket_objects(synth, f"{datasets.DATASETS_PREFIX}*")}
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                   "dynamodb:BatchWriteItem"):
        assert grants[action] == {table}, action
    assert grants["dynamodb:Query"] == {table, f"{table}/index/{storage.OWNER_INDEX}",
                                        f"{table}/index/{datasets.DATASET_OWNER_INDEX}"}
    assert set(grants) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem", "dynamodb:Query", "s3:PutObject", "s3:GetObject", "s3:DeleteObject",
        "s3:ListBucket", "sagemaker:StopTrainingJob"}


# --- the staged build context and the Dockerfile ------------------------------------------------


def _sources() -> set[str]:
    """The files of the image's packages in this checkout, caches aside (repository paths)."""
    return {p.relative_to(REPO_ROOT).as_posix() for package in functions.IMAGE_PACKAGES
            for p in (REPO_ROOT / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def context(synth: Synth) -> Path:
    return synth.assembly_dir / synth.docker_image_source(functions.COMPOSE_DOCKERFILE)["directory"]


def test_the_staged_context_holds_the_image_packages_and_nothing_else(context: Path) -> None:
    staged = [p for p in context.rglob("*") if p.is_file()]
    assert {p.relative_to(context).as_posix() for p in staged} == _sources()
    assert {p.name for p in context.iterdir()} == {path.split("/")[0] for path in functions.IMAGE_PACKAGES}
    assert not {".venv", "node_modules", "cdk.out", ".git", "tests", "infra", "opencomposer"} & {
        part for p in staged for part in p.relative_to(context).parts}
    assert sum(p.stat().st_size for p in staged) < MAX_CONTEXT_BYTES


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def test_the_dockerfile_builds_on_lambdas_python_image_for_the_contract_runtime() -> None:
    instructions = _instructions()
    (from_,) = [args for op, args in instructions if op == "FROM"]
    assert from_ == "${BASE_IMAGE}"  # a build argument: the image tests build on a local base
    version, base = [args for op, args in instructions if op == "ARG"]
    assert version == f"PYTHON_VERSION={functions.RUNTIME.removeprefix('python')}"  # as the stack passes it
    assert base == f"BASE_IMAGE={BASE_IMAGE}:${{PYTHON_VERSION}}"  # Lambda's image by default
    assert instructions.index(("ARG", version)) < instructions.index(("ARG", base))
    assert instructions.index(("ARG", base)) < instructions.index(("FROM", from_))


def test_the_dockerfile_copies_each_package_under_its_import_name_and_runs_the_handler(context: Path) -> None:
    copies = [args.split() for op, args in _instructions() if op == "COPY"]
    for *sources, _ in copies:
        for source in sources:
            assert (context / source).exists(), f"the Dockerfile copies {source}, missing from the context"
    code = {sources[0]: target for *sources, target in copies if sources[0] in functions.IMAGE_PACKAGES}
    assert code == {path: f"${{LAMBDA_TASK_ROOT}}/{name}" for path, name in functions.IMAGE_PACKAGES.items()}
    assert [functions.COMPOSE_REQUIREMENTS] in [sources for *sources, _ in copies]
    (cmd,) = [args for op, args in _instructions() if op == "CMD"]
    assert cmd == f'["{SPEC.handler}"]'
    # The handler is where the image puts it (the import name's folder in the task root).
    module = SPEC.handler.rpartition(".")[0]
    assert (context / f"{module.replace('.', '/')}.py").is_file()


def test_the_dockerfile_installs_the_requirements_into_the_task_root() -> None:
    runs = [args for op, args in _instructions() if op == "RUN"]
    (install,) = [run for run in runs if "pip install" in run]
    assert "--requirement /tmp/compose-requirements.txt" in install
    assert '--target "${LAMBDA_TASK_ROOT}"' in install and "--no-cache-dir" in install
    assert "torch.version.cuda is None" in install  # a CUDA build fails the build


# --- the image's wheels -------------------------------------------------------------------------


def _requirements(path: Path) -> tuple[dict[str, Requirement], list[str]]:
    """canonical name → requirement, and the option lines, of a requirements file."""
    found: dict[str, Requirement] = {}
    options = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-"):
            options.append(line)
        elif line:
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found, options


def _pinned(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", requirement
    return specifier.version


def test_the_image_requirements_pin_cpu_torch_and_what_the_repository_pins_elsewhere() -> None:
    image, options = _requirements(REQUIREMENTS)
    assert options == [f"--extra-index-url {TORCH_CPU_INDEX}"]
    pins = {name: _pinned(requirement) for name, requirement in image.items()}  # every one pinned
    assert {"torch", "numpy", "pretty-midi", "mido", "aws-lambda-powertools", "pydantic"} <= set(pins)
    assert "music21" not in pins  # only gan.data (the training's dataset) needs it
    assert "boto3" not in pins  # the base image's
    # The same versions as the zip functions' wheels...
    lambdas, _ = _requirements(LAMBDA_REQUIREMENTS)
    for name, requirement in lambdas.items():
        assert pins[name] == _pinned(requirement), name
    # ... and versions pyproject's extras accept.
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    checked = set()
    for extra in ("local", "training"):
        for line in extras[extra]:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name in pins:
                assert requirement.specifier.contains(pins[name], prereleases=True), (extra, name)
                checked.add(name)
    assert {"torch", "numpy", "pretty-midi", "mido", "aws-lambda-powertools"} <= checked


# The modules the compose function loads at import, from its handler: those of the image's
# packages and the third-party ones. A module-level import only: what a function body imports
# (gan.metrics' CLI reads gan.data) never runs in the function.
def _module_file(module: str) -> Path | None:
    for path, name in functions.IMAGE_PACKAGES.items():
        if module == name or module.startswith(f"{name}."):
            base = REPO_ROOT / path / Path(*module.split(".")[1:])
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def _module_level_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = ".".join(p for p in (package if node.level else "", node.module or "") if p)
                found.add(base)
                # `from gan import midi`: a submodule, when there is one.
                found.update(f"{base}.{alias.name}" for alias in node.names
                             if _module_file(f"{base}.{alias.name}") is not None)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _loaded_at_import(start: str) -> tuple[set[str], set[str]]:
    """(first-party modules, third-party top-level names) the start module imports, transitively."""
    first_party: set[str] = set()
    third_party: set[str] = set()
    pending = [start]
    while pending:
        module = pending.pop()
        if module in first_party:
            continue
        path = _module_file(module)
        if path is None:
            top = module.split(".")[0]
            if top not in {*functions.IMAGE_PACKAGES.values(), *sys.stdlib_module_names}:
                third_party.add(top)
            continue
        first_party.add(module)
        # A submodule's import runs its packages' __init__ first.
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        tree = ast.parse(path.read_text())
        pending += parents + sorted(_module_level_imports(tree, module, path.name == "__init__.py"))
    return first_party, third_party


def test_what_the_handler_imports_comes_from_the_image_requirements_or_the_base_image() -> None:
    modules, third_party = _loaded_at_import(SPEC.handler.rpartition(".")[0])
    assert "gan.generate" in modules and "gan.midi" in modules  # it does run the generator
    assert "gan.data" not in modules and "music21" not in third_party  # no dataset code in the image
    assert {"torch", "numpy", "pretty_midi", "mido", "aws_lambda_powertools", "pydantic"} <= third_party
    distributions = metadata.packages_distributions()
    image, _ = _requirements(REQUIREMENTS)
    provided = set(image) | BASE_IMAGE_DISTRIBUTIONS
    for name in third_party:
        assert {canonicalize_name(d) for d in distributions.get(name, [name])} & provided, name
