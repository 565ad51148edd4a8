"""Where the training runs and in what precision (gan.device): the device choice and its
override, the mixed-precision path against float32, and checkpoints that move between devices.

No GPU here: the CUDA choice is checked with torch's CUDA queries patched, the mixed-precision
path with CPU autocast in bfloat16 (the same code path the GPU runs, with the GPU's bfloat16), and
the cross-device checkpoint with a file whose tensors are tagged as CUDA tensors, as a GPU job
writes them. bench/gpu.sh checks the same tolerance on a GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.serialization

from gan import data as gan_data
from gan import distributed
from gan.device import DEVICE_VARIABLE, Precision, moved, pick_device
from gan.encoding import Windows
from gan.model import ModelConfig
from gan.train import Hyperparameters, load_checkpoint, new_state, save_checkpoint, train_step


@pytest.fixture(scope="module")
def windows() -> Windows:
    return Windows(gan_data.load_chorales().train[:20], ModelConfig())


@pytest.fixture
def a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch as it answers on a host with two GPUs."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# --- the device ----------------------------------------------------------------------------------


def test_without_a_gpu_the_training_runs_on_the_cpu() -> None:
    assert not torch.cuda.is_available()  # this test machine
    assert pick_device({}) == torch.device("cpu")


def test_a_gpu_host_whose_torch_sees_no_gpu_says_so_and_trains_on_the_cpu(caplog) -> None:
    with caplog.at_level("WARNING", logger="gan.device"):
        assert pick_device({"SM_NUM_GPUS": "1"}) == torch.device("cpu")
    assert "this host has 1 GPUs but torch sees none" in caplog.text


def test_with_a_gpu_the_training_takes_it_and_each_local_process_its_own(a_gpu: None) -> None:
    assert pick_device({}) == torch.device("cuda", 0)
    assert pick_device({"LOCAL_RANK": "1"}) == torch.device("cuda", 1)
    assert pick_device({"LOCAL_RANK": "2"}) == torch.device("cuda", 0)  # more processes than GPUs


def test_the_override_keeps_a_gpu_host_on_the_cpu(a_gpu: None) -> None:
    assert pick_device({DEVICE_VARIABLE: "cpu"}) == torch.device("cpu")
    assert pick_device({DEVICE_VARIABLE: "CUDA"}) == torch.device("cuda", 0)


@pytest.mark.parametrize(("value", "message"), [("cuda", "sees no CUDA GPU"), ("gpu", "one of cpu, cuda")])
def test_a_device_that_cannot_be_had_is_refused_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"{DEVICE_VARIABLE}.*{message}"):
        pick_device({DEVICE_VARIABLE: value})


def test_a_job_asking_for_a_gpu_it_has_not_got_fails_with_that_reason(tmp_path: Path) -> None:
    from gan.train import main

    env = {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
           DEVICE_VARIABLE: "cuda"}

    assert main(["--epochs", "1"], env) == 1
    assert "sees no CUDA GPU" in (tmp_path / "output" / "failure").read_text()


@pytest.mark.filterwarnings("ignore:.*GradScaler is enabled, but CUDA is not available")
def test_precision_is_float32_on_the_cpu_and_mixed_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Precision.for_device(torch.device("cpu")) == Precision()
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert Precision.for_device(torch.device("cuda", 0)).dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    fp16 = Precision.for_device(torch.device("cuda", 0))  # a T4 or V100
    assert fp16.dtype == torch.float16 and set(fp16.scalers) == {"generator", "critic"}


def test_a_batch_moves_whole_and_one_already_there_is_kept(windows: Windows) -> None:
    batch = windows.sample(4, torch.Generator().manual_seed(0))

    assert moved(batch, torch.device("cpu")) is batch
    on_meta = moved(batch, torch.device("meta"))  # a device other than the CPU, without a GPU
    assert {t.device.type for t in vars(on_meta).values()} == {"meta"}
    assert on_meta.classes.dtype == batch.classes.dtype


def test_a_single_host_on_a_gpu_joins_no_process_group_and_several_use_nccl(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend, **kw: calls.append(backend))

    distributed.start(distributed.ALONE, torch.device("cuda", 0))
    distributed.start(distributed.World(rank=1, size=2), torch.device("cuda", 0))
    distributed.start(distributed.World(rank=1, size=2), torch.device("cpu"))

    assert calls == ["nccl", "gloo"]


# --- mixed precision -------------------------------------------------------------------------------


def _losses(
    precision: Precision, windows: Windows, steps: int, seen: set[torch.dtype]
) -> list[dict[str, float]]:
    hp = Hyperparameters(batch_size=16, update_ratio=2, seed=3)
    state = new_state(hp, windows.config)
    state["precision"] = precision
    state["critic"].convs.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
    steps_losses = [train_step(state, windows, hp, hp.learning_rate) for _ in range(steps)]
    return [{k: v.item() for k, v in losses.items()} for losses in steps_losses]


def test_mixed_precision_training_stays_within_tolerance_of_float32(windows: Windows) -> None:
    # The path CUDA takes (autocast, the penalty in float32 outside it), in bfloat16 on the CPU.
    seen32: set[torch.dtype] = set()
    seen16: set[torch.dtype] = set()
    float32 = _losses(Precision(), windows, 4, seen32)
    mixed = _losses(Precision("cpu", torch.bfloat16), windows, 4, seen16)

    # The critic ran in bfloat16 for the losses and in float32 for the penalty.
    assert seen32 == {torch.float32} and seen16 == {torch.bfloat16, torch.float32}
    # Within 2 % (plus 0.05 for the losses near 0) at every step: bfloat16 rounds to 3 digits, and
    # the 4 steps' updates let its rounding grow; measured here, at most 0.6 % and 0.03.
    for step, (a, b) in enumerate(zip(float32, mixed, strict=True)):
        for name in a:
            assert abs(a[name] - b[name]) <= 0.02 * abs(a[name]) + 0.05, (step, name, a[name], b[name])
    # ...and the training moved: the tolerance is not wider than the losses' own change.
    assert float32[-1]["supervised_loss"] < float32[0]["supervised_loss"] - 0.2


# --- checkpoints across devices -------------------------------------------------------------------


def _tag_as_cuda(storage: object) -> str | None:
    return "cuda:0" if getattr(storage, "device", None) == torch.device("cpu") else None


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tmp_path: Path, windows: Windows) -> None:
    hp = Hyperparameters(batch_size=8, update_ratio=1, seed=5)
    state = new_state(hp, windows.config)
    train_step(state, windows, hp, hp.learning_rate)
    state["epoch"] = 1
    # Saved as a GPU job saves it: every tensor tagged with the GPU it lived on.
    torch.serialization.register_package(0, _tag_as_cuda, lambda storage, location: None)
    try:
        save_checkpoint(tmp_path / "checkpoint.pt", state, hp)
    finally:
        torch.serialization._package_registry[:] = [
            entry for entry in torch.serialization._package_registry if entry[1] is not _tag_as_cuda
        ]
    with pytest.raises(RuntimeError, match="CUDA"):  # the file really holds CUDA tensors
        torch.load(tmp_path / "checkpoint.pt", weights_only=False)

    resumed = load_checkpoint(tmp_path / "checkpoint.pt", hp, torch.device("cpu"))

    assert resumed["epoch"] == 1
    for name in ("generator", "critic"):
        for a, b in zip(state[name].state_dict().values(), resumed[name].state_dict().values(), strict=True):
            assert torch.equal(a, b) and b.device.type == "cpu"
    moments = [s["exp_avg"] for s in resumed["g_optimizer"].state.values()]
    assert moments and all(m.device.type == "cpu" for m in moments)
    # The resumed state trains on: the next step is the one the uninterrupted job takes.
    at_save = torch.get_rng_state()  # the checkpoint restored the job's global draws too
    after = train_step(resumed, windows, hp, hp.learning_rate)
    torch.set_rng_state(at_save)
    expected = train_step(state, windows, hp, hp.learning_rate)
    assert all(torch.equal(after[k], expected[k]) for k in after)
