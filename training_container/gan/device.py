"""Where the training runs and in what precision: CUDA when there is a GPU, else the CPU.

    OPENCOMPOSER_DEVICE=cpu|cuda   overrides the choice (tests; a CPU run on a GPU host)

On CUDA the forward passes run under autocast: bfloat16 where the GPU has it (Ampere and later:
g5, g6, p4d, p5), else float16 with a gradient scaler per network (Turing and Volta: g4dn, p3),
since float16's few exponent bits let small gradients underflow to zero. Weights, optimizer
state and the losses stay float32, and so does the WGAN-GP gradient penalty: the training
computes it outside autocast (gan.model.gradient_penalty says why). On the CPU the training runs
in float32, as it always has (the 2-minute CPU model is unchanged); `Precision.autocast(..,
torch.bfloat16)` on the CPU exists for the test that checks the mixed-precision path's losses
against float32's (tests/unit/test_gan_device.py).

With several processes on one machine (torchrun's LOCAL_RANK) each takes its own GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger("gan.device")
DEVICE_VARIABLE = "OPENCOMPOSER_DEVICE"
DEVICES = ("cpu", "cuda")


def pick_device(environ: Mapping[str, str] = os.environ) -> torch.device:
    """`cuda` when torch sees a GPU, else `cpu`; OPENCOMPOSER_DEVICE overrides. Asking for cuda
    without a GPU is a ValueError naming the variable (a job paid for a GPU it cannot use)."""
    wanted = environ.get(DEVICE_VARIABLE, "").strip().lower()
    if wanted and wanted not in DEVICES:
        raise ValueError(f"{DEVICE_VARIABLE} must be one of {', '.join(DEVICES)}, not {wanted!r}")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_VARIABLE}=cuda but torch sees no CUDA GPU (a CPU-only image or host?)")
    if not torch.cuda.is_available():
        if int(environ.get("SM_NUM_GPUS") or 0) > 0:  # SageMaker counts the host's GPUs
            log.warning("this host has %s GPUs but torch sees none (the CPU image on a GPU instance type "
                        "the stack does not know as one?): training on the CPU", environ["SM_NUM_GPUS"])
        return torch.device("cpu")
    if wanted == "cpu":
        return torch.device("cpu")
    local_rank = int(environ.get("LOCAL_RANK") or 0)
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def use(device: torch.device) -> None:
    """Make `device` the current CUDA device (NCCL's and every bare `.cuda()`'s), and let float32
    matmuls and convolutions use TF32: what autocast leaves in float32 (the gradient penalty)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # fixed window shapes: the fastest kernels, found once


@dataclass
class Precision:
    """The training's precision on its device: float32, or autocast to `dtype` (with gradient
    scalers for float16)."""

    device_type: str = "cpu"
    dtype: torch.dtype | None = None  # None: float32, no autocast
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)

    @classmethod
    def for_device(cls, device: torch.device) -> Precision:
        if device.type != "cuda":
            return cls()
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return cls("cuda", torch.bfloat16)
        scalers = {name: torch.amp.GradScaler("cuda") for name in ("generator", "critic")}
        return cls("cuda", torch.float16, scalers)

    @property
    def name(self) -> str:
        return "float32" if self.dtype is None else f"autocast {str(self.dtype).removeprefix('torch.')}"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor, network: str) -> None:
        """loss.backward(), scaled by the network's gradient scaler for float16. The hosts may
        average the scaled gradients before `step`: the average of scaled gradients is the
        scaled average, and an overflow on one host reaches every host through the average,
        so all hosts skip the same steps."""
        scaler = self.scalers.get(network)
        (loss if scaler is None else scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, network: str) -> None:
        """The optimizer's step; for float16 through the scaler, which unscales the gradients,
        skips a step whose gradients overflowed, and adjusts the scale."""
        scaler = self.scalers.get(network)
        if scaler is None:
            optimizer.step()
            return
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {name: scaler.state_dict() for name, scaler in self.scalers.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, scaler in self.scalers.items():
            if name in state:
                scaler.load_state_dict(state[name])


def moved(batch: Any, device: torch.device) -> Any:
    """A dataclass of tensors (gan.encoding.Batch) on `device`; itself when already there. The
    batches are drawn on the CPU, from the job's CPU generator, so a seed draws the same windows
    on any device."""
    values = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    if all(v.device == device for v in values.values()):
        return batch
    return type(batch)(**{name: v.to(device, non_blocking=True) for name, v in values.items()})
