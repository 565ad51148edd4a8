"""The training image's entry point (`gan.entrypoint`): what SageMaker hands a container without
its training toolkit (/opt/ml/input/config, the `train` argument) reaches the training as the
toolkit's variables and flags did; its own failures land in SageMaker's failure file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import training
from gan.entrypoint import main as entry_main
from gan.entrypoint import toolkit_environment
from gan.train import Paths, parse_args, read_hyperparameters

TRAINING_PACKAGE = Path(__file__).resolve().parents[2] / "training_container"


@pytest.fixture()
def environ(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ without SM_* variables, for this test only: the entry point sets them there."""
    copy = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    monkeypatch.setattr(os, "environ", copy)
    return copy


def _layout(root: Path, hyperparameters: dict[str, str], channels: tuple[str, ...] = ("melody",)) -> Path:
    """/opt/ml as SageMaker lays it out for a one-instance job."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({c: {"TrainingInputMode": "File", "RecordWrapperType": "None"} for c in channels})
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
    )
    for channel in channels:
        (root / "input" / "data" / channel).mkdir(parents=True)
    return root


def test_the_toolkits_variables_come_from_sagemakers_files(tmp_path: Path) -> None:
    root = _layout(tmp_path / "ml", {"epochs": "3", "seed": "7"}, channels=("melody", "training"))

    env = toolkit_environment(root, {})

    assert env["SM_MODEL_DIR"] == str(root / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")
    assert env["SM_INPUT_CONFIG_DIR"] == str(root / "input" / "config")
    assert env["SM_CHANNEL_MELODY"] == str(root / "input" / "data" / "melody")
    assert env["SM_CHANNEL_TRAINING"] == str(root / "input" / "data" / "training")
    assert json.loads(env["SM_CHANNELS"]) == ["melody", "training"]
    assert json.loads(env["SM_HPS"]) == {"epochs": "3", "seed": "7"}
    assert (env["SM_HP_EPOCHS"], env["SM_HP_SEED"]) == ("3", "7")
    assert (env["SM_CURRENT_HOST"], json.loads(env["SM_HOSTS"])) == ("algo-1", ["algo-1"])
    # and so the training's paths are SageMaker's: checkpoints at /opt/ml/checkpoints, the
    # failure file at /opt/ml/output/failure
    paths = Paths.from_env(env)
    assert (paths.checkpoints, paths.failure) == (root / "checkpoints", root / "output" / "failure")
    assert paths.melody == root / "input" / "data" / "melody"


def test_variables_already_set_win(tmp_path: Path) -> None:
    # The local process runtime sets the toolkit's variables for its job folder itself
    root = _layout(tmp_path / "ml", {"epochs": "3"})
    given = {"SM_MODEL_DIR": "/elsewhere/model", "SM_HPS": '{"epochs": "9"}'}

    env = toolkit_environment(root, given)

    assert "SM_MODEL_DIR" not in env and "SM_HPS" not in env
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")


@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"epochs": "3", "learning_rate": "0.002", "update_ratio": "2", "batch_size": "16", "seed": "7"},
        # the SageMaker Python SDK's form: each value JSON-encoded once more
        {"epochs": '"3"', "learning_rate": '"0.002"', "seed": '"7"'},
        # SageMaker's own entries beside ours
        {"epochs": "4", "sagemaker_program": '"train"', "sagemaker_region": '"eu-west-1"'},
    ],
)
def test_hyperparameters_json_reaches_the_training_as_the_flags_did(
    tmp_path: Path, hyperparameters: dict[str, str]
) -> None:
    # Given a job's hyperparameters in SageMaker's file, read through the entry point's variables
    root = _layout(tmp_path / "ml", hyperparameters)
    from_file = read_hyperparameters(parse_args(["train"]), toolkit_environment(root, {}))

    # and the same hyperparameters as the toolkit's `--name value` flags (the former local runner's)
    flags = [word for name, value in hyperparameters.items() for word in (f"--{name}", value)]
    from_flags = read_hyperparameters(parse_args(flags), {})

    # Then the training gets the same values
    assert from_file == from_flags


def test_only_sagemakers_argument_reads_sagemakers_files(tmp_path: Path, environ: dict[str, str]) -> None:
    root = _layout(tmp_path / "ml", {"epochs": "3"})
    calls: list[tuple[list[str], dict[str, str]]] = []

    def train_main(argv: object, environ: object) -> int:
        calls.append((list(argv), dict(environ)))  # type: ignore[call-overload]
        return 0

    # `train` (SageMaker's start): the toolkit's variables from root, the flags after it
    assert entry_main(["train", "--dry-run"], root=root, train_main=train_main) == 0
    argv, seen = calls.pop()
    assert argv == ["--dry-run"] and seen["SM_MODEL_DIR"] == str(root / "model")
    # anything else (a laptop's run): gan.train's flags as given, no /opt/ml derived
    del environ["SM_MODEL_DIR"]
    assert entry_main(["--epochs", "2"], root=root, train_main=train_main) == 0
    argv, seen = calls.pop()
    assert argv == ["--epochs", "2"] and "SM_MODEL_DIR" not in seen


def test_a_broken_config_file_fails_with_the_reason_in_sagemakers_failure_file(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    root = _layout(tmp_path / "ml", {})
    (root / "input" / "config" / "hyperparameters.json").write_text("{not json")

    assert entry_main(["train"], root=root) == 1

    reason = (root / "output" / "failure").read_text()
    assert "hyperparameters.json is not JSON" in reason
    assert len(reason.encode()) < training.FAILURE_REASON_MAX


def test_the_entry_point_trains_from_sagemakers_files_alone(tmp_path: Path) -> None:
    # A dry run as `python -m gan.entrypoint train` with no SM_* variable: everything it needs
    # comes from the /opt/ml layout (here a folder: the root is the entry's one parameter)
    root = _layout(tmp_path / "ml", {"seed": "3", "batch_size": "8", "update_ratio": "1"}, channels=())
    script = (
        "import sys; from pathlib import Path; from gan.entrypoint import main; "
        f"sys.exit(main(['train', '--dry-run'], root=Path({str(root)!r})))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env["PYTHONPATH"] = str(TRAINING_PACKAGE)

    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert (root / "model" / "model.pt").exists()
    assert (root / "checkpoints" / "checkpoint.pt").exists()
    progress = (root / "output" / "data" / "progress.jsonl").read_text()
    assert '"epoch"' in progress
