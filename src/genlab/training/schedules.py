"""Schedules: pure functions of the training step (design rule 3: no hidden counters)."""

from __future__ import annotations


def linear_ramp(step: int, start: float, end: float, steps: int) -> float:
    """``start`` at step 0, rising linearly to ``end`` at ``steps`` and held there."""
    if steps <= 0:
        return end
    return start + (end - start) * min(step, steps) / steps


def warmup_weight(epoch: int, warmup: int) -> float:
    """MIM's annealing weight beta = min(1, e / w) in the 1-based epoch e = ``epoch`` + 1
    (docs/mim.md §4.1): with w = 3, 1/3, 2/3, 1, 1, ..."""
    if warmup <= 0:
        return 1.0
    return min(1.0, (epoch + 1) / warmup)
