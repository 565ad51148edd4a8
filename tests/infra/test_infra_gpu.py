"""The stack runs GPU instance types on the GPU image and every other type on the CPU image.

`InstanceType` is a stack parameter, so the choice is the template's (a condition on the instance
family, an Fn::If in the definition's TrainingImage): these tests evaluate the template's own
condition for a given instance type, as CloudFormation would at deploy time, and follow the
image it picks to the asset's build arguments. Synth stays offline and Docker-free.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from synthesized import Synth

from infra.components.paths import REPO_ROOT, TRAINING_DOCKERFILE
from infra.components.training import GPU_BASE_IMAGE, GPU_INSTANCE_FAMILIES, GPU_TORCH_INDEX, PARAMETERS


def _evaluate(node: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> Any:
    """The few intrinsic functions the condition and the Fn::If use, as CloudFormation reads them."""
    if isinstance(node, list):
        return [_evaluate(n, parameters, conditions) for n in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((name, args),) = node.items()
    if name == "Ref":
        return parameters[args]
    if name == "Condition":
        return _evaluate(conditions[args], parameters, conditions)
    if name == "Fn::If":
        condition, then, otherwise = args
        return then if _evaluate(conditions[condition], parameters, conditions) else otherwise
    values = _evaluate(args, parameters, conditions)
    if name == "Fn::Split":
        return values[1].split(values[0])
    if name == "Fn::Select":
        return values[1][int(values[0])]
    if name == "Fn::Equals":
        return values[0] == values[1]
    if name == "Fn::Or":
        return any(values)
    raise AssertionError(f"an intrinsic function this test does not know: {name}")


def _image_for(synth: Synth, instance_type: str) -> dict[str, Any]:
    """The training image the deployed definition names for `instance_type`: its asset's source."""
    image = Capture()
    synth.assertions.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"DefinitionSubstitutions": Match.object_like({"TrainingImage": image})},
    )
    chosen = _evaluate(image.as_object(), {"InstanceType": instance_type}, synth.template["Conditions"])
    (tag,) = re.findall(r":([0-9a-f]{64})$", chosen["Fn::Sub"])
    return synth.assets_manifest()["dockerImages"][tag]["source"]


@pytest.mark.parametrize(
    "instance_type",
    ["ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g5.48xlarge", "ml.g6.2xlarge", "ml.g6e.xlarge", "ml.p4d.24xlarge",
     "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.p5en.48xlarge"],
)
def test_a_gpu_instance_type_runs_the_gpu_image(synth: Synth, instance_type: str) -> None:
    source = _image_for(synth, instance_type)

    assert source["dockerFile"] == TRAINING_DOCKERFILE
    assert source.get("dockerBuildArgs") == {"BASE_IMAGE": GPU_BASE_IMAGE, "TORCH_INDEX": GPU_TORCH_INDEX}


@pytest.mark.parametrize(
    "instance_type",
    # The default; CPU types; V100s, which the GPU image's CUDA 13 no longer supports; not NVIDIA.
    [PARAMETERS["InstanceType"]["default"], "ml.c5.xlarge", "ml.m5.4xlarge", "ml.p3.2xlarge",
     "ml.p3dn.24xlarge", "ml.trn1.2xlarge", "ml.g4.xlarge", "ml.g55.xlarge"],
)
def test_any_other_instance_type_runs_the_cpu_image(synth: Synth, instance_type: str) -> None:
    source = _image_for(synth, instance_type)

    assert source["dockerFile"] == TRAINING_DOCKERFILE
    assert not source.get("dockerBuildArgs")  # the Dockerfile's default base: the CPU one


def test_both_images_run_the_torch_the_project_tests_with() -> None:
    dockerfile = (Path(REPO_ROOT) / TRAINING_DOCKERFILE).read_text()
    pyproject = tomllib.loads((Path(REPO_ROOT) / "pyproject.toml").read_text())
    (tested,) = [r for extra in pyproject["project"]["optional-dependencies"].values()
                 for r in extra if r.startswith("torch==")]  # fmt: skip

    (version,) = re.findall(r"^ARG TORCH_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert f"torch=={version}" == tested
    # installed after FROM over the base's own, the CPU image from PyTorch's CPU wheels
    assert '--index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"' in dockerfile
    cpu_index = re.findall(r"^ARG TORCH_INDEX=(\S+)$", dockerfile, re.MULTILINE)
    assert cpu_index == ["https://download.pytorch.org/whl/cpu"]
    assert dockerfile.index("FROM ${BASE_IMAGE}") < dockerfile.index("ARG TORCH_VERSION")


def test_the_two_images_are_the_same_dockerfile_on_two_bases_of_the_same_pytorch() -> None:
    dockerfile = (Path(REPO_ROOT) / TRAINING_DOCKERFILE).read_text()
    (cpu_base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)

    cpu_repository, cpu_tag = cpu_base.split(":")
    gpu_repository, gpu_tag = GPU_BASE_IMAGE.split(":")
    assert cpu_repository == gpu_repository
    # <torch>-cpu-<python> and <torch>-gpu-<python>-<cuda>-<os>-sagemaker: the same torch and Python.
    assert re.fullmatch(r"[0-9.]+-cpu-py[0-9]+", cpu_tag)
    same_torch_and_python = re.escape(cpu_tag.replace("-cpu-", "-gpu-"))
    assert re.fullmatch(same_torch_and_python + r"-cu[0-9]+-ubuntu[0-9.]+-sagemaker", gpu_tag)
    assert GPU_BASE_IMAGE in dockerfile  # the Dockerfile's comment names the GPU base it is built on


def test_the_gpu_families_fit_one_condition_and_the_parameter_names_them() -> None:
    assert 2 <= len(GPU_INSTANCE_FAMILIES) <= 10  # Fn::Or's limits
    description = PARAMETERS["InstanceType"]["description"]
    assert all(family in description for family in GPU_INSTANCE_FAMILIES)
