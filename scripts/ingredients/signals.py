"""SIGTERM handled for the whole run, not only while the training loop runs.

``kill`` / SLURM's time limit / a scheduler's pre-emption send SIGTERM, which by default ends Python
at once (status -15) with the run left ``RUNNING`` and nothing said. ``terminate_as_interrupt``
turns it into ``KeyboardInterrupt`` from the moment the command starts, so Sacred records the run
``INTERRUPTED`` whatever it was doing (building the data, training, the end-of-run evaluation);
inside the training loop ``genlab.training.handlers.GracefulInterrupt`` takes over, finishing the
iteration and writing a checkpoint first. ``interrupted_exit`` prints one line saying how to
continue and gives the conventional status (128 + the signal's number).
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager

from genlab.training.handlers import RECEIVED_SIGNALS as _received


def _raise(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


@contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_exit(where: str | None) -> None:
    """Exit after an interruption: one line, and 130 (Ctrl-C) or 143 (SIGTERM)."""
    signum = _received[-1] if _received else signal.SIGINT
    resume = f"; continue it with training.resume={where}" if where else ""
    print(f"interrupted by {signal.Signals(signum).name}: the run is recorded INTERRUPTED{resume}", file=sys.stderr)
    sys.exit(128 + int(signum))
