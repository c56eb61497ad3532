"""Training throughput of MIM's toy experiments through the shared loop (Livne, Swersky & Fleet 2019;
docs/mim.md §0, §4.1), the cost of the per-epoch test pass with its KSG mutual information, and the
time of one KSG estimate.

    python benchmarks/mim_throughput.py                          # every case, CPU at 1 and 2 threads, CUDA if present
    python benchmarks/mim_throughput.py --cases smim_50 vae_50 --threads 2 --repeats 5
    python benchmarks/mim_throughput.py --cases ksg              # KSG alone, N = 9,984, dx = dz = 2

Each case runs ``--repeats`` times in a fresh process (its peak RSS is its own); the median is
printed. A worker builds the model (``gaussian_mlp``, z_dim 2) and the objective through the
registries, and trains on toy4 batches of 128 drawn afresh on the device (``genlab.data.streams``)
past the warm-up (beta = 1: S-MIM's decoding pass runs at every step), with
``genlab.training.engines.fit`` (no checkpoints, logging every 78 iterations to a no-op). It times
``--rounds`` rounds of ``--epochs`` epochs of 78 iterations, the fastest kept. Columns:

- ``train``: steps/s of training alone (no evaluation);
- ``with test``: steps/s with the original's test pass after every epoch (78 batches of a fresh test
  stream, the loss at beta = 1 with S-MIM's decoding pass, and the KSG MI of the pass's 9,984 pairs);
- ``test pass``: seconds of one such pass (the ``with test`` round's time minus the ``train`` round's, over
  its ``--epochs`` evaluations; the end of the run is no further evaluation);
- ``ksg`` (case ``ksg``): seconds of one KSG estimate (k = 5) on N = 9,984 pairs, dx = dz = 2;
- ``load``: the 1-minute load average when the worker finished (2 on a 2-core machine is saturated).

Targets on 2 CPU cores (the original measured on the same machine: 48.5 steps/s S-MIM, 62.3 VAE, and
about 1.5 s per test pass with KSG): S-MIM >= 145 and VAE >= 187 steps/s train-only at mid_dim 50,
the test pass with KSG under 0.3 s.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

from fresh_process import benchmark_parser, device_label, device_settings, peak_column, peak_gpu_mb, run_fresh

CASES = {
    "smim_50": dict(objective="mim", loss={"sample": True, "warmup": 1}, mid_dim=50, target=">= 145 steps/s (original 48.5)"),
    "vae_50": dict(objective="vae_mc", loss={"warmup": 1}, mid_dim=50, target=">= 187 steps/s (original 62.3)"),
    "smim_500": dict(objective="mim", loss={"sample": True, "warmup": 1}, mid_dim=500, target="-"),
    "vae_500": dict(objective="vae_mc", loss={"warmup": 1}, mid_dim=500, target="-"),
    "ksg": dict(objective=None, loss={}, mid_dim=None, target="< 0.3 s with the test pass (original ~1.5 s)"),
}  # fmt: skip
EPOCH = 78  # batches of 128 in a toy epoch (docs/mim.md §1.1)


def measure_ksg(threads: int, repeats: int = 5) -> dict:
    import numpy as np
    import torch

    from genlab.metrics.ksg import ksg_mi

    torch.set_num_threads(threads)
    g = np.random.default_rng(0)
    x = g.normal(size=(9984, 2))
    z = x + 0.1 * g.normal(size=(9984, 2))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ksg_mi(x, z, k=5)
        times.append(time.perf_counter() - start)
    return {"case": "ksg", "device": f"cpu ({threads} threads)", "ksg_s": statistics.median(times),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mb": None,
            "load": os.getloadavg()[0], "target": CASES["ksg"]["target"]}  # fmt: skip


def measure(case: str, device: str, threads: int, epochs: int, rounds: int) -> dict:
    import torch

    from genlab.data import DATASETS
    from genlab.data.streams import StreamBatches, StreamPasses
    from genlab.devices import resolve_device
    from genlab.models import build_model
    from genlab.objectives import build_objective
    from genlab.training.engines import fit
    from genlab.training.optimizers import OptimizerFactory

    if case == "ksg":
        return measure_ksg(threads)
    torch.set_num_threads(threads)
    spec = CASES[case]
    dev = resolve_device(device)
    torch.manual_seed(0)
    data = DATASETS.get("toy4").build(device=dev)
    model = build_model("gaussian_mlp", {"mid_dim": spec["mid_dim"]}, data.model_inputs).to(dev)
    objective = build_objective(spec["objective"], **spec["loss"]).to(dev)
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", 1e-3, {}))
    train = StreamBatches(data.train, 128, seed=0)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def timed(with_test: bool) -> float:
        sync()
        start = time.perf_counter()
        fit(model, objective, optimizers, train, max_iterations=epochs * EPOCH, log=lambda *a: None, log_every=EPOCH,
            val_batches=StreamPasses(data.test, 128, seed=0) if with_test else None, eval_every="epoch")  # fmt: skip
        sync()
        return time.perf_counter() - start

    timed(True)  # warm-up: allocations, first KSG
    timings = [(timed(False), timed(True)) for _ in range(rounds)]  # alternated: a busy spell hits both
    plain, tested = min(t for t, _ in timings), min(t for _, t in timings)
    iterations = epochs * EPOCH
    return {"case": case, "device": device_label(dev, threads), "steps_per_s": iterations / plain,
            "tested_steps_per_s": iterations / tested, "test_pass_s": max(tested - plain, 0.0) / epochs,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mb": peak_gpu_mb(dev),
            "load": os.getloadavg()[0], "target": spec["target"]}  # fmt: skip


def main() -> None:
    parser = benchmark_parser(__doc__, CASES)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of 78 iterations per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per process (the fastest is kept)")
    args = parser.parse_args()
    if args.worker:
        from genlab.devices import keep_freed_memory

        keep_freed_memory()
        print(json.dumps(measure(args.worker, args.device, args.worker_threads, args.epochs, args.rounds)))
        return

    print(f"{'case':<9} {'device':<34} {'train':>7} {'with test':>9} {'test pass':>9} {'ksg':>7} "
          f"{'peak RSS MB':>12} {'peak GPU MB':>12} {'load':>5}  target")  # fmt: skip
    for case in args.cases:
        settings = device_settings(["cpu"] if case == "ksg" else args.devices, args.threads)
        for device, threads in settings:
            worker_args = ["--device", device, "--worker-threads", str(threads), "--epochs", str(args.epochs),
                           "--rounds", str(args.rounds)]  # fmt: skip
            results = run_fresh(__file__, case, worker_args, args.repeats, threads)
            r = results[0]

            def median(key: str, fmt: str) -> str:
                values = [x[key] for x in results if x.get(key) is not None]
                return format(statistics.median(values), fmt) if values else "-"

            print(f"{case:<9} {r['device']:<34} {median('steps_per_s', '.0f'):>7} {median('tested_steps_per_s', '.0f'):>9} "
                  f"{median('test_pass_s', '.3f'):>9} {median('ksg_s', '.3f'):>7} {peak_column(results, 'peak_rss_mb'):>12} "
                  f"{peak_column(results, 'peak_gpu_mb'):>12} {max(x['load'] for x in results):>5.1f}  {r['target']}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
