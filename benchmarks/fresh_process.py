"""What every benchmark here shares: each case runs in a fresh process (so its peak RSS is its own),
``--repeats`` times, and reports one JSON line that the parent collects."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_fresh(script: str, case: str, worker_args: list[str], repeats: int, threads: int) -> list[dict]:
    """Run ``script --worker case *worker_args`` ``repeats`` times; the JSON each printed last."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, script, "--worker", case, *worker_args]
    results = []
    for _ in range(repeats):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:  # the worker's own traceback, not just its exit status
            raise SystemExit(f"case {case} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.splitlines()[-1]))
    return results


def device_label(dev, threads: int) -> str:
    """``cuda:0 (NVIDIA ...)`` or ``cpu (2 threads)``."""
    import torch

    return str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else f" ({threads} threads)")


def peak_gpu_mb(dev) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None


def peak_column(results: list[dict], key: str) -> str:
    """The largest of the repeats' peaks, or ``-`` where the case has none (no GPU)."""
    values = [r[key] for r in results if r.get(key) is not None]
    return f"{max(values):.0f}" if values else "-"
