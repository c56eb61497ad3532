"""What every benchmark here shares: each case runs in a fresh process (so its peak RSS is its own),
``--repeats`` times, and reports one JSON line that the parent collects."""

from __future__ import annotations

import argparse
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


def device_settings(devices: list[str], threads: list[int]) -> list[tuple[str, int]]:
    """(device, threads) pairs to run: every thread count on the CPU, one run on CUDA when present."""
    import torch

    out = []
    for device in devices:
        if device == "cpu":
            out += [("cpu", t) for t in threads]
        elif device.startswith("cuda") and torch.cuda.is_available():
            out.append((device, max(threads)))
    return out


def benchmark_parser(doc: str, cases) -> argparse.ArgumentParser:
    """The options every benchmark has: ``--cases``, ``--devices``, ``--threads``, ``--repeats`` and
    the hidden ones a worker process is started with (``--worker``, ``--device``, ``--worker-threads``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(cases), choices=list(cases))
    parser.add_argument("--devices", nargs="*", default=["cpu", "cuda"], help="cpu and/or cuda (skipped when absent)")
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2], help="torch CPU threads (the reference machine has 2 cores)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per case; the median is printed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)  # the worker's
    parser.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    return parser
