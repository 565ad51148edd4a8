"""The training image's entry point: SageMaker runs `docker run <image> train`, and the image's
exec-form ENTRYPOINT (`python -m gan.train`, whose `__main__` calls `main` here) receives `train`.

No SageMaker training toolkit in between: it forwards no SIGTERM to the training and overwrites
/opt/ml/output/failure with its own message. What the toolkit did that the training needs, this
does: it reads SageMaker's files under /opt/ml/input/config (hyperparameters.json,
inputdataconfig.json, resourceconfig.json) and sets the toolkit's `SM_*` variables from them,
which `gan.train` reads (docs/contracts.md). A variable already set wins: the local stack's
process runtime, whose /opt/ml is a folder per job, sets them itself. Without `train` (a run on
a laptop) nothing is derived: the arguments are gan.train's flags, its paths its `./sm/` fallback.

    python -m gan.train train [gan.train's flags, e.g. --dry-run]     # as SageMaker runs it
    python -m gan.train --epochs 3                                   # on a laptop
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# SageMaker's container contract: where it lays out a training job, in every container.
ML_ROOT = Path("/opt/ml")
STOP_EXIT_CODE = 128 + signal.SIGTERM  # gan.train's too
SAGEMAKER_ARGUMENT = "train"


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path} is not JSON: {e}") from e


def toolkit_environment(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The `SM_*` variables the SageMaker training toolkit would set for the job laid out under
    `root`, each only where `environ` has none. Hyperparameters go in as SageMaker wrote them
    (strings): `gan.train` parses hyperparameters.json itself, and SM_HPS / SM_HP_* carry the
    same values for any reader of the toolkit's variables."""
    config = Path(environ.get("SM_INPUT_CONFIG_DIR") or root / "input" / "config")
    hyperparameters = _read_json(config / "hyperparameters.json", {})
    data_config = _read_json(config / "inputdataconfig.json", {})
    resources = _read_json(config / "resourceconfig.json", {})
    if not isinstance(hyperparameters, dict) or not isinstance(data_config, dict):
        raise ValueError(f"{config}: hyperparameters.json and inputdataconfig.json must be JSON objects")
    input_dir = root / "input"
    derived = {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_INPUT_DIR": str(input_dir),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_CHANNELS": json.dumps(sorted(data_config)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_CURRENT_HOST": str(resources.get("current_host", "algo-1")),
        "SM_HOSTS": json.dumps(resources.get("hosts", ["algo-1"])),
    }
    for channel in data_config:
        derived[f"SM_CHANNEL_{channel.upper()}"] = str(input_dir / "data" / channel)
    for name, value in hyperparameters.items():
        derived[f"SM_HP_{name.upper()}"] = str(value)
    return {name: value for name, value in derived.items() if name not in environ}


def _write_failure(environ: Mapping[str, str], root: Path, reason: str) -> None:
    from contracts.training import FAILURE_REASON_MAX

    output = Path(environ.get("SM_OUTPUT_DIR") or root / "output")
    output.mkdir(parents=True, exist_ok=True)
    (output / "failure").write_text(reason.encode()[: FAILURE_REASON_MAX - 1].decode(errors="ignore") + "\n")


def _stopped_early(signum: int, frame: object) -> None:
    # As PID 1 in the container, a signal without a handler is ignored: a stop that lands
    # while the job's files are read, before gan.train sets its own handler, ends it too.
    sys.exit(STOP_EXIT_CODE)


TrainMain = Callable[[Sequence[str], Mapping[str, str]], int]


def main(argv: Sequence[str] | None = None, root: Path = ML_ROOT, train_main: TrainMain | None = None) -> int:
    """`train [flags]`: SageMaker's start, the toolkit's variables derived from `root`; anything
    else: gan.train's flags as they are. `train_main` is gan.train's `main` (passed in by its
    `__main__`, which must not be imported a second time as `gan.train`)."""
    if train_main is None:
        from gan import train

        train_main = train.main
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != [SAGEMAKER_ARGUMENT]:
        return train_main(args, os.environ)
    signal.signal(signal.SIGTERM, _stopped_early)
    try:
        os.environ.update(toolkit_environment(root, os.environ))
    except ValueError as e:
        _write_failure(os.environ, root, str(e))
        print(f"training failed: {e}", file=sys.stderr)
        return 1
    return train_main(args[1:], os.environ)


if __name__ == "__main__":
    sys.exit(main())
