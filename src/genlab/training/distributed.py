"""Data-parallel training over several processes with ``ignite.distributed``.

Every process holds the whole model, draws its own slice of each global batch
(``genlab.data.batches.ShuffledBatches`` with ``rank`` / ``world_size``, or :class:`Sharded` for
other batch streams), and computes gradients on it; before each optimizer step the gradients are
averaged over the processes (:func:`average_gradients`), so every process takes the same step: the
update of the mean loss over the global batch, as one process with the whole batch would take it
(up to floating-point summation order). This works for any objective, whatever optimizers and
auxiliary networks it has, because it hooks the optimizers rather than wrapping the model (no
``DistributedDataParallel``, which would only see ``model.forward``). Training quantities are
averaged over the processes before they are logged (:func:`mean_over_processes`).

Launch: ``training.backend`` (``gloo`` on CPU, ``nccl`` on GPUs) with ``training.nproc_per_node``
processes spawned by the run itself, or one process per GPU started by ``torchrun`` (then
``nproc_per_node`` stays 1 and the environment says the rest).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import ignite.distributed as idist
import torch

from genlab.errors import ConfigError

BACKENDS = ("gloo", "nccl")


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    return idist.get_rank(), idist.get_world_size()


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Make every ``optimizer.step()`` first replace each gradient by its mean over the processes.

    One all-reduce of all the optimizer's gradients (flattened together) per step. A parameter
    without a gradient counts as zero; it keeps no gradient only where no process has one.
    """
    if idist.get_world_size() == 1:
        return

    def hook(opt: torch.optim.Optimizer, args, kwargs) -> None:
        params = [p for group in opt.param_groups for p in group["params"]]
        if not params:
            return
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        flat = idist.all_reduce(torch.cat([flat, has]))
        flat, has = flat[: -len(params)], flat[-len(params) :]
        flat /= idist.get_world_size()
        offset = 0
        for p, any_grad in zip(params, has.tolist()):
            n = p.numel()
            if any_grad:
                # copied into a gradient of the parameter's own memory format (channels-last
                # convolutions): fused optimizers read gradients and parameters with the same strides
                if p.grad is None:
                    p.grad = torch.empty_like(p)
                p.grad.copy_(flat[offset : offset + n].view(p.shape))
            offset += n

    optimizer.register_step_pre_hook(hook)


def mean_over_processes(values: Mapping[str, float]) -> dict[str, float]:
    """The mean of each value over the processes (every process must call this with the same keys)."""
    if idist.get_world_size() == 1 or not values:
        return dict(values)
    keys = sorted(values)
    total = idist.all_reduce(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64))
    return {k: float(v) / idist.get_world_size() for k, v in zip(keys, total.tolist())}


class Sharded:
    """This process's rows of each batch of a batch stream that draws whole global batches (e.g.
    the composer's triplets): rank r of W keeps rows [r B/W, (r+1) B/W) of every tensor."""

    def __init__(self, batches, rank: int, world_size: int):
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __len__(self) -> int:
        return len(self.batches)

    def bind(self, position) -> "Sharded":
        self.batches.bind(position)
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.batches:
            n = len(next(iter(batch.values())))
            if n % self.world_size:
                raise ConfigError(f"a batch of {n} cannot be split evenly over {self.world_size} processes")
            local = n // self.world_size
            yield {k: v[self.rank * local : (self.rank + 1) * local] for k, v in batch.items()}


__all__ = ["BACKENDS", "Sharded", "average_gradients", "mean_over_processes", "world"]
