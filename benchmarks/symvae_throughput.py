"""Training throughput of symmetric equilibrium learning and of the ZGR ELBO (docs/symvae.md §2) at
batch 1024 through the shared training loop, and the extrapolated wall time of the README's
200,000-iteration run, comparable with the original's figures on a 2-core CPU machine (README
"Measured").

    python benchmarks/symvae_throughput.py                          # both cases, CPU at 1 and 2 threads, CUDA if present
    python benchmarks/symvae_throughput.py --cases sym --threads 2 --repeats 3

Each case runs ``--repeats`` times, each in a fresh process (so peak RSS is the case's own), on
MNIST-shaped binary data: 70,000 images of 1 x 28 x 28, each pixel 1 with probability 0.13 (about
MNIST's density at the 7/16 threshold), resident on the device, with the 0.1 % pixel-flip transform
of a run. A worker builds the mnist-ladder model (30 / 100 bits), the objective and its optimizers
through the registries, trains ``--warmup`` iterations with ``genlab.training.engines.fit`` and then
times ``--rounds`` rounds of ``--iterations / --rounds`` iterations each, keeping the fastest round
(another process's busy spell slows a round, not the figure). The median over repeats is printed:

- ``steps/s``: iterations per second through ``fit`` (sym: one decoder and one encoder update);
- ``cpu``: iterations per second of the process's CPU time (all threads);
- ``200k``: the README run's 200,000 iterations at that rate;
- ``load``: the 1-minute load average when the worker finished (2 on a 2-core machine is saturated).

Targets on 2 CPU cores: >= 0.24 steps/s (sym) and >= 0.32 (ELBO), 1.5 x the original's 0.157 / 0.211
without anomaly detection (on this kind of machine).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from dataclasses import replace

from fresh_process import benchmark_parser, device_settings, device_label, peak_column, peak_gpu_mb, run_fresh

N_IMAGES, BATCH, RUN_ITERATIONS = 70_000, 1024, 200_000
CASES = {
    "sym": dict(objective="sym_equilibrium", target=">= 0.24 steps/s (original 0.157)"),
    "elbo": dict(objective="binary_elbo", target=">= 0.32 steps/s (original 0.211)"),
}


def binary_images(device):
    import torch

    from genlab.data.sources import Tensors

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(N_IMAGES, 1, 28, 28, generator=g) < 0.13).float()
    return Tensors("binary images", x=x.to(device))


def measure(case: str, device: str, threads: int, warmup: int, iterations: int, rounds: int) -> dict:
    import torch

    from genlab.data.batches import ShuffledBatches
    from genlab.data.transforms import compose
    from genlab.devices import resolve_device
    from genlab.models import build_model
    from genlab.objectives import build_objective
    from genlab.training.engines import fit
    from genlab.training.optimizers import OptimizerFactory
    from genlab.training.phases import parse_phases

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    torch.manual_seed(0)
    data = binary_images(dev)
    model = build_model("binary_hvae", {}, {"input_shape": [1, 28, 28]}).to(dev)
    objective = build_objective(CASES[case]["objective"]).to(dev)
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", 1e-4, {}))
    batches = ShuffledBatches(data, BATCH, seed=0, transform=compose([["flip_pixels", {"p": 0.001}]]))
    phase = parse_phases(None, iterations=1)[0]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def train(n: int) -> tuple[float, float]:
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        fit(model, objective, optimizers, batches, phases=[replace(phase, iterations=n)],
            log=lambda name, value, step: None, log_every=100)  # fmt: skip
        sync()
        return time.perf_counter() - start, time.process_time() - cpu

    train(warmup)
    per_round = max(1, iterations // rounds)
    timings = [train(per_round) for _ in range(rounds)]
    seconds, cpu_seconds = min(t for t, _ in timings), min(c for _, c in timings)
    steps = per_round / seconds
    return {
        "case": case, "device": device_label(dev, threads), "batch": BATCH,
        "steps_per_s": steps, "cpu_steps_per_s": per_round / cpu_seconds,
        "run_hours": RUN_ITERATIONS / steps / 3600,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mb": peak_gpu_mb(dev),
        "load": os.getloadavg()[0], "target": CASES[case]["target"],
    }  # fmt: skip



def main() -> None:
    parser = benchmark_parser(__doc__, CASES)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per process (the fastest is kept)")
    args = parser.parse_args()

    if args.worker:
        from genlab.devices import keep_freed_memory

        keep_freed_memory()
        print(json.dumps(measure(args.worker, args.device, args.worker_threads, args.warmup, args.iterations, args.rounds)))
        return

    print(f"{'case':<5} {'device':<34} {'batch':>5} {'steps/s':>8} {'cpu':>8} {'200k':>9} {'peak RSS MB':>12} "
          f"{'peak GPU MB':>12} {'load':>5}  target")  # fmt: skip
    for case in args.cases:
        for device, threads in device_settings(args.devices, args.threads):
            worker_args = ["--device", device, "--worker-threads", str(threads), "--warmup", str(args.warmup),
                           "--iterations", str(args.iterations), "--rounds", str(args.rounds)]  # fmt: skip
            results = run_fresh(__file__, case, worker_args, args.repeats, threads)
            r = results[0]

            def median(key: str) -> float:
                return statistics.median(x[key] for x in results)

            print(f"{case:<5} {r['device']:<34} {r['batch']:>5} {median('steps_per_s'):>8.3f} {median('cpu_steps_per_s'):>8.3f} "
                  f"{median('run_hours'):>7.1f} h {peak_column(results, 'peak_rss_mb'):>12} "
                  f"{peak_column(results, 'peak_gpu_mb'):>12} {max(x['load'] for x in results):>5.1f}  {r['target']}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
