"""Flow contrastive estimation on 2D data: training steps/s and the wall time of a full run,
comparable with the reference implementation's figures (measured the same way on a 2-core CPU
machine; see README "Measured").

    python benchmarks/fce2d_throughput.py                        # steps/s, both flows, CUDA if present
    python benchmarks/fce2d_throughput.py --device cpu --threads 2 --repeats 3
    python benchmarks/fce2d_throughput.py --cases full_run_maf   # the whole 50,000-step run (minutes)

Cases, each in a fresh process (so peak RSS is the case's own):
- ``fce_maf``, ``fce_glow``: FCE at batch 1000 (+1000 flow samples) on 8gaussians (500,000 points on
  the device), through the shared Ignite loop (``genlab.training.engines.fit``, batch-mean logging
  every 50 iterations, no evaluation): steps/s after a warm-up of ``--warmup`` iterations, which lets
  the EBM/flow alternation settle (the EBM trains alone for the first ~100-200 iterations). Targets
  on 2 CPU cores: >= 90 steps/s (MAF) and >= 57 (Glow); the original: 30 and 19, metric off.
- ``full_run_maf``, ``full_run_glow``: ``python -m experiments.fce2d with model.<flow>`` as a user
  runs it (50,000 iterations, evaluation with the log-density MSE every 500, checkpoints, a file
  observer in a temporary directory), timed from the command to its exit; ``--run-iterations``
  shortens it. Target on 2 CPU cores: <= 40 min; the original, with its MSE over all 500k points
  every iteration: 6.5 h (MAF) to 7.6 h (Glow).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from fresh_process import device_label, peak_column, peak_gpu_mb, run_fresh

CASES = {
    "fce_maf": dict(flow="maf", target=">= 90 steps/s (original 30)"),
    "fce_glow": dict(flow="glow", target=">= 57 steps/s (original 19)"),
    "full_run_maf": dict(flow="maf", target="<= 40 min (original 6.5 h)"),
    "full_run_glow": dict(flow="glow", target="<= 40 min (original 7.6 h)"),
}


def measure_steps(case: str, device: str, threads: int, warmup: int, iterations: int) -> dict:
    import torch

    from genlab.data.batches import ShuffledBatches
    from genlab.data.toy2d import load_toy2d
    from genlab.devices import resolve_device
    from genlab.models.energy_flow import build_energy_flow
    from genlab.objectives import build_objective
    from genlab.training.engines import fit
    from genlab.training.optimizers import OptimizerFactory

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    torch.manual_seed(42)
    objective = build_objective("fce").to(dev)
    model = build_energy_flow(CASES[case]["flow"]).to(dev)  # the EBM first, then the flow, as experiments.fce2d
    data = load_toy2d("8gaussians", 500_000, 1000, seed=42, device=dev)
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", lr=1e-3))
    batches = ShuffledBatches(data.train, 1000, seed=42)
    ebm_updates = []

    def train(max_iterations: int) -> float:
        start = time.perf_counter()
        fit(model, objective, optimizers, batches, max_iterations=max_iterations, log_every=50,
            log=lambda name, value, step: ebm_updates.append(value) if name == "batch.ebm_update" else None)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - start

    train(warmup)
    ebm_updates.clear()
    seconds = train(iterations)  # a fresh fit on the same model, optimizers and alternation state
    return {
        "case": case,
        "device": device_label(dev, threads),
        "steps_per_s": iterations / seconds,
        "ebm_share": statistics.fmean(ebm_updates) if ebm_updates else float("nan"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": peak_gpu_mb(dev),
        "target": CASES[case]["target"],
    }


def measure_run(case: str, device: str, run_iterations: int | None) -> dict:
    """The experiment from the command line, in a scratch data directory; wall time to exit."""
    with tempfile.TemporaryDirectory() as data_dir:
        cmd = [sys.executable, "-m", "experiments.fce2d", "with", f"model.{CASES[case]['flow']}", f"device={device}",
               "training.progress=False", "seed=42"]
        if run_iterations:
            cmd.append(f"training.max_iterations={run_iterations}")
        start = time.perf_counter()
        proc = subprocess.run(cmd, env={**os.environ, "GENLAB_DATA": data_dir}, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        with open(os.path.join(data_dir, "sims", "fce2d", "1", "run.json")) as f:
            result = json.load(f)["result"]
        with open(os.path.join(data_dir, "sims", "fce2d", "1", "info.json")) as f:
            info = json.load(f)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "case": case, "device": info.get("device", device), "iterations": info["iterations"], "seconds": seconds,
        "steps_per_s": info["iterations"] / seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
        "mse_ebm": result.get("val.mse_ebm"), "mse_flow": result.get("val.mse_flow"), "target": CASES[case]["target"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=["fce_maf", "fce_glow"], choices=list(CASES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the reference machine has 2 cores)")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--run-iterations", type=int, default=None, help="shorten the full_run cases")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per case; the median is printed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        from genlab.devices import keep_freed_memory

        keep_freed_memory()
        if args.worker.startswith("full_run"):
            print(json.dumps(measure_run(args.worker, args.device, args.run_iterations)))
        else:
            print(json.dumps(measure_steps(args.worker, args.device, args.threads, args.warmup, args.iterations)))
        return

    print(f"{'case':<14} {'device':<26} {'steps/s':>8} {'wall time':>10} {'EBM share':>9} {'peak RSS MB':>12} {'peak GPU MB':>12}  target")
    for case in args.cases:
        worker_args = ["--device", args.device, "--threads", str(args.threads), "--warmup", str(args.warmup),
                       "--iterations", str(args.iterations)]
        if args.run_iterations:
            worker_args += ["--run-iterations", str(args.run_iterations)]
        results = run_fresh(__file__, case, worker_args, args.repeats, args.threads)
        r = results[0]
        steps = statistics.median(x["steps_per_s"] for x in results)
        wall = f"{statistics.median(x['seconds'] for x in results) / 60:.1f} min" if "seconds" in r else "-"
        share = f"{r['ebm_share']:.2f}" if "ebm_share" in r else "-"
        rss = peak_column(results, "peak_rss_mb")
        gpu = peak_column(results, "peak_gpu_mb")
        extra = f"  (final mse_ebm {r['mse_ebm']:.4f}, mse_flow {r['mse_flow']:.4f})" if r.get("mse_ebm") is not None else ""
        print(f"{case:<14} {r['device']:<26} {steps:>8.1f} {wall:>10} {share:>9} {rss:>12} {gpu:>12}  {r['target']}{extra}", flush=True)


if __name__ == "__main__":
    main()
