"""Where training stands, as the engine tells an objective at every step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """The position of one training step.

    ``iteration``: the number of updates completed before this one (0 for the first step; the
    step axis of the logged metrics is ``iteration + 1``). ``epoch``: the 0-based pass over the
    training stream it belongs to. ``phase`` / ``phase_index``: the named phase of the run it is in
    (``"train"``, index 0, for a run of one phase), and ``phase_iteration`` the updates completed in
    that phase before this one; ``epoch_length`` the updates of one pass over the training stream. Schedules that objectives compute themselves (CCI-VAE's capacity)
    are pure functions of these numbers, so resuming a run reproduces them.
    """

    iteration: int
    epoch: int = 0
    phase: str = "train"
    phase_index: int = 0
    phase_iteration: int = 0
    epoch_length: int = 1
