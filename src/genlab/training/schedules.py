"""Schedules: pure functions of the training step (design rule 3: no hidden counters)."""

from __future__ import annotations


def linear_ramp(step: int, start: float, end: float, steps: int) -> float:
    """``start`` at step 0, rising linearly to ``end`` at ``steps`` and held there."""
    if steps <= 0:
        return end
    return start + (end - start) * min(step, steps) / steps
