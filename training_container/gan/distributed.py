"""Data-parallel training across SageMaker's hosts: which host this is, and the two collectives
the training needs.

SageMaker starts the same container on every instance of a job and tells each who it is:
`SM_HOSTS` (`["algo-1", "algo-2"]`, the same list on every host) and `SM_CURRENT_HOST`. The
first host is the leader: it alone reports progress, validates, writes samples, checkpoints, the
model and the final composition, so the job's table items and S3 keys have one writer. Every
host trains on its own shard of the pieces with its share of the batch, and the gradients are
averaged after every backward pass, so each update is the one a single host would make with the
whole batch, and every host keeps the same weights.

The process group is torch.distributed's: gloo on CPU, NCCL on a GPU, met at the leader's
address (`MASTER_ADDR`, else the first host's name, which resolves inside a SageMaker cluster)
and port (`MASTER_PORT`, else 7777). The local stack's runner, whose hosts are processes on one
machine, sets both, as torchrun does.

Gradients are averaged by hand (one flat all-reduce per update) rather than with
DistributedDataParallel, whose hooks do not survive the critic's gradient penalty (a second
backward through `autograd.grad(create_graph=True)`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
DEFAULT_PORT = 7777
# Long enough for the leader's validation and sample writing between two collectives.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This host's place among the job's hosts."""

    rank: int = 0
    size: int = 1
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT

    @property
    def leader(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def shard(self, items: list[T]) -> list[T]:
        """This host's share of `items` (every size-th one from its rank): all hosts together
        see each item once."""
        return items[self.rank :: self.size]

    def batch(self, batch_size: int) -> int:
        """This host's share of a batch of `batch_size` (the updates are those of the whole batch)."""
        return max(1, batch_size // self.size)


ALONE = World()


def from_env(environ: Mapping[str, str] = os.environ) -> World:
    """The World SageMaker's variables describe; ALONE without them. A current host missing from
    SM_HOSTS is a ValueError naming both."""
    raw = environ.get("SM_HOSTS")
    if not raw:
        return ALONE
    hosts = json.loads(raw)
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise ValueError(f"SM_HOSTS must be a JSON list of host names, not {raw!r}")
    current = environ.get("SM_CURRENT_HOST") or hosts[0]
    if current not in hosts:
        raise ValueError(f"SM_CURRENT_HOST {current!r} is not one of SM_HOSTS {hosts}")
    return World(
        rank=hosts.index(current),
        size=len(hosts),
        address=environ.get("MASTER_ADDR") or hosts[0],
        port=int(environ.get("MASTER_PORT") or DEFAULT_PORT),
    )


def start(world: World, device: torch.device | None = None) -> None:
    """Join the job's process group (a no-op for one host): blocks until every host has. NCCL
    when the training runs on a GPU (`device`, set current by gan.device.use before this, so
    each process's NCCL communicator is on its own GPU), else gloo."""
    if not world.parallel:
        return
    global _joined
    backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
    _joined = True
    dist.init_process_group(
        backend,
        init_method=f"tcp://{world.address}:{world.port}",
        rank=world.rank,
        world_size=world.size,
        timeout=TIMEOUT,
    )


def finish(world: World) -> None:
    if world.parallel and dist.is_initialized():
        dist.destroy_process_group()


# Whether this process joined a process group: its backend's threads outlive
# destroy_process_group (torch 2.13), see end_process.
_joined = False


def end_process(code: int) -> NoReturn:
    """End the process with `code`. A process that joined a process group ends with os._exit,
    once its logs are flushed, rather than through Python's finalization: gloo's worker threads
    live until then, and one still releasing the last all-reduce's tensor needs the GIL, which a
    finalizing interpreter refuses by ending the thread, and that aborts the process
    ("terminate called without an active exception", SIGABRT; backtrace: a ProcessGroupGloo
    runLoop thread in ~AsyncAllreduceWork -> decref_pyobject -> take_gil -> pthread_exit).
    It failed 11 of 120 two-host dry runs, after their training had ended well. Every file the
    job needs is written and closed by then; os._exit skips only the interpreter's teardown."""
    if not _joined:
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def same_weights(module: torch.nn.Module, world: World) -> None:
    """Every host takes the leader's weights (they start equal from the seed; this makes sure)."""
    if not world.parallel:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def average_gradients(module: torch.nn.Module, world: World) -> None:
    """Each parameter's gradient becomes the mean of every host's: one all-reduce of all of them."""
    if not world.parallel:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for grad in grads:
        count = grad.numel()
        grad.copy_(flat[offset : offset + count].view_as(grad))
        offset += count


def average(values: Mapping[str, float], world: World) -> dict[str, float]:
    """The mean over the hosts of each value (every host passes the same names)."""
    if not world.parallel:
        return dict(values)
    names = sorted(values)
    # NCCL reduces only tensors on the GPU; gloo those on the CPU.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    flat = torch.tensor([float(values[name]) for name in names], dtype=torch.float64, device=device)
    dist.all_reduce(flat)
    flat /= world.size
    return dict(zip(names, flat.tolist(), strict=True))
