"""Flushing a Sacred run's record on demand, not only at its 10 s heartbeat.

Sacred hands metrics, info and captured output to the observers only at a heartbeat, which a
background thread emits every ``beat_interval`` seconds; a run killed early so has no
``metrics.json`` at all, and up to a heartbeat's worth of logged points exist nowhere. ``flush``
emits a heartbeat now (the training loop calls it whenever a checkpoint is written, so the record
always holds the metrics up to the last checkpoint). ``serialise`` first makes the background
thread and ``flush`` take turns: both write the same files.
"""

from __future__ import annotations

import threading


def serialise(run) -> None:
    """Route the run's heartbeats, the background thread's and ``flush``'s, through one lock."""
    if getattr(run, "_genlab_flush", None) is not None or not hasattr(run, "_emit_heartbeat"):
        return
    lock, beat = threading.Lock(), run._emit_heartbeat

    def locked() -> None:
        with lock:
            beat()

    run._genlab_flush = locked
    timer = getattr(run, "_heartbeat", None)
    if timer is not None:
        timer.func = locked  # sacred.utils.IntervalTimer calls .func


def flush(run) -> None:
    """Hand everything the run logged so far to its observers (a no-op for runs without observers)."""
    if hasattr(run, "flush") and not hasattr(run, "_emit_heartbeat"):  # a run relayed from spawned processes
        run.flush()
        return
    serialise(run)
    beat = getattr(run, "_genlab_flush", None)
    if beat is not None:
        beat()
