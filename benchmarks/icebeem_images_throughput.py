"""Training throughput of ICE-BeeM's image EBMs through the shared loop (Khemakhem et al., NeurIPS
2020; docs/icebeem.md §3b, §4b, §5b): conditional DSM steps/s of the ConvMLP features at batch 63 on
MNIST-shaped (1 x 28 x 28, m = 90) and CIFAR-shaped (3 x 32 x 32, m = 200) batches, and what that
makes of one 5,001-step pretraining and of the whole recipe of one dataset.

    python benchmarks/icebeem_images_throughput.py                      # both shapes, CPU at 1 and 2 threads, CUDA if present
    python benchmarks/icebeem_images_throughput.py --cases cdsm_cifar --devices cuda --steps 200
    python benchmarks/icebeem_images_throughput.py --cases pretrain_mnist --devices cuda   # one whole 5,001-step pretraining

Each case runs ``--repeats`` times in a fresh process (its peak RSS is its own); the median is printed.
A worker builds the model (``image_ebm``, ConvMLP) and the objective (``cdsm``, double backprop)
through the registries and trains on random uint8 images resident on the device (dequantised every
step, as the experiment), with ``genlab.training.engines.fit`` (no checkpoints, logging to a no-op),
timing ``--steps`` steps after ``--warmup`` untimed ones. Columns:

- ``steps/s`` and ``samples/s`` (x 63);
- ``pretrain``: the seconds of one 5,001-step pretraining at that rate (case ``pretrain_*``: measured,
  the whole run timed);
- ``recipe``: hours of a dataset's whole recipe (``bin/icebeem/images.sh``: pretraining + baseline,
  40 representation runs, the transfer grid of 8 sizes x 5 seeds for transfer and baseline) at that
  rate, from its number of steps (``RECIPE_STEPS``; MNIST's held-out training part of 11,800 images,
  its baseline 5 epochs; the MCC pairs and the SVMs train nothing and are left out);
- ``load``: the 1-minute load average when the worker finished (2 on a 2-core machine is saturated).

No original figures exist for this (the original needs CUDA, docs/icebeem.md §10.10).
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import time

from fresh_process import benchmark_parser, device_label, device_settings, peak_column, peak_gpu_mb, run_fresh

BATCH = 63
PRETRAIN = 5001
SHAPES = {"mnist": ((1, 28, 28), 90, 11_800, 5), "cifar": ((3, 32, 32), 200, 10_000, 15)}  # shape, m, held-out train, baseline epochs
CASES = {"cdsm_mnist": "mnist", "cdsm_cifar": "cifar", "pretrain_mnist": "mnist", "pretrain_cifar": "cifar"}
SIZES = (500, 1000, 2000, 3000, 4000, 5000, 6000)


def recipe_steps(held_out: int, baseline_epochs: int, seeds: int = 5, representation_seeds: int = 20) -> int:
    """Optimiser steps (or measured steps, for N = 0's transfer) of one dataset's whole recipe."""
    batches = lambda n: math.ceil(n / BATCH)  # noqa: E731
    transfer = sum(batches(n) * 10 for n in SIZES) + batches(held_out) * 10
    baseline = sum(batches(n) * baseline_epochs for n in SIZES) + batches(held_out) * baseline_epochs
    return 2 * PRETRAIN + 2 * representation_seeds * PRETRAIN + seeds * (transfer + baseline)


def measure(case: str, device: str, threads: int, steps: int, warmup: int) -> dict:
    import torch

    from genlab.data.batches import ShuffledBatches
    from genlab.data.images import LabelledImages
    from genlab.data.transforms import compose
    from genlab.devices import resolve_device
    from genlab.models import build_model
    from genlab.objectives import build_objective
    from genlab.training.engines import fit
    from genlab.training.optimizers import OptimizerFactory

    torch.set_num_threads(threads)
    shape, m, held_out, baseline_epochs = SHAPES[CASES[case]]
    dev = resolve_device(device)
    torch.manual_seed(0)
    n = 6000
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, device=dev)
    source = LabelledImages(images, torch.arange(n, device=dev) % 8, torch.arange(n, device=dev))
    model = build_model("image_ebm", {"feature_size": m}, {"input_shape": list(shape), "n_classes": 8}).to(dev)
    objective = build_objective("cdsm").to(dev)
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", 1e-3, {}))
    train = ShuffledBatches(source, BATCH, seed=0, transform=compose([["dequantize", {"levels": 256}]]))

    def timed(iterations: int) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        fit(model, objective, optimizers, train, max_iterations=iterations, log=lambda *a: None, log_every=1000)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - start

    if case.startswith("pretrain"):
        seconds = timed(PRETRAIN)
        rate = PRETRAIN / seconds
    else:
        timed(warmup)
        rate = steps / timed(steps)
        seconds = PRETRAIN / rate
    return {"case": case, "device": device_label(dev, threads), "steps_per_s": rate, "pretrain_s": seconds,
            "recipe_h": recipe_steps(held_out, baseline_epochs) / rate / 3600,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mb": peak_gpu_mb(dev),
            "load": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    parser = benchmark_parser(__doc__, CASES)
    parser.set_defaults(cases=["cdsm_mnist", "cdsm_cifar"])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.device, args.worker_threads, args.steps, args.warmup)))
        return
    print(f"{'case':<15} {'device':<34} {'steps/s':>8} {'samples/s':>9} {'pretrain s':>10} {'recipe h':>9} "
          f"{'peak RSS MB':>12} {'peak GPU MB':>12} {'load':>5}")  # fmt: skip
    for case in args.cases:
        for device, threads in device_settings(args.devices, args.threads):
            worker_args = ["--device", device, "--worker-threads", str(threads), "--steps", str(args.steps),
                           "--warmup", str(args.warmup)]  # fmt: skip
            results = run_fresh(__file__, case, worker_args, args.repeats, threads)

            def median(key: str) -> float:
                return statistics.median(r[key] for r in results)

            print(f"{case:<15} {results[0]['device']:<34} {median('steps_per_s'):>8.2f} {median('steps_per_s') * BATCH:>9.0f} "
                  f"{median('pretrain_s'):>10.0f} {median('recipe_h'):>9.1f} {peak_column(results, 'peak_rss_mb'):>12} "
                  f"{peak_column(results, 'peak_gpu_mb'):>12} {max(r['load'] for r in results):>5.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
