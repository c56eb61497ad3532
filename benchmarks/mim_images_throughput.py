"""Training and evaluation speed of MIM's image HVAEs (Livne, Swersky & Fleet 2019; docs/mim.md §2.2, §3.3,
§4.2, §6.3): optimiser steps/s at batch 100 of the convHVAE and the PixelHVAE (VampPrior, 500 pseudo-inputs)
trained as VAE and as MIM (convHVAE S-MIM, PixelHVAE A-MIM, the README's pairs; ``*_smim`` for the
PixelHVAE's S-MIM with its 784-pass sampler), and the time of the 5,000-sample importance-sampled NLL, with
what those make of a whole run.

    python benchmarks/mim_images_throughput.py                        # every case, CPU at 1 and 2 threads, CUDA if present
    python benchmarks/mim_images_throughput.py --cases conv_vae nll_conv --devices cuda --steps 50

Each case runs ``--repeats`` times in a fresh process (its peak RSS is its own); the median is printed. A
worker builds the model and objective through the registries, with beta = 1 (so S-MIM's decoding pass
runs), and trains on random binary batches with AdamNormGrad, timing ``--steps`` steps after ``--warmup``
untimed ones. The NLL cases time ``--nll-images`` test images at S = 5,000 in passes of 100 samples (the
original's S and MB) and scale to the 10,000 test images. Columns:

- ``steps/s`` and ``samples/s`` (x 100);
- ``epoch s``: one epoch of 500 steps at that rate, with the validation pass of 10,000 images not counted;
- ``run h``: hours of a run of ``--epochs`` epochs (default 300: the 100 warm-up epochs plus the typical
  early-stopping tail; the original allows up to 2,000) at that rate, plus its NLL from the NLL case;
- ``nll h``: hours of the 5,000-sample NLL over the 10,000 test images (NLL cases);
- ``load``: the 1-minute load average when the worker finished (2 on a 2-core machine is saturated).

No figures of the original exist for this (it needs CUDA; its code runs on torch 1.0).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

from fresh_process import benchmark_parser, device_label, device_settings, peak_column, peak_gpu_mb, run_fresh

BATCH = 100
EPOCH_STEPS = 500  # 50,000 training images
TEST_IMAGES = 10_000
SAMPLES = 5000  # importance samples per test image
CHUNK = 100  # samples per pass (the original's MB)
CASES = {  # decoder, objective, hyperparameters
    "conv_vae": ("conv", "hvae_vae", {}),
    "conv_smim": ("conv", "hvae_mim", {"sample": True}),
    "pixel_vae": ("pixel", "hvae_vae", {}),
    "pixel_amim": ("pixel", "hvae_mim", {"sample": False}),
    "pixel_smim": ("pixel", "hvae_mim", {"sample": True}),
    "nll_conv": ("conv", None, {}),
    "nll_pixel": ("pixel", None, {}),
}


def measure(case: str, device: str, threads: int, steps: int, warmup: int, nll_images: int) -> dict:
    import torch

    from genlab.devices import resolve_device
    from genlab.metrics.importance_sampling import importance_log_likelihood
    from genlab.models import build_model
    from genlab.objectives import build_objective
    from genlab.training.optimizers import OptimizerFactory
    from genlab.training.progress import Progress

    torch.set_num_threads(threads)
    decoder, name, params = CASES[case]
    dev = resolve_device(device)
    torch.manual_seed(0)
    model = build_model("hvae_vamp", {"decoder": decoder}, {"input_shape": (1, 28, 28)}).to(dev)
    x = (torch.rand(BATCH, 1, 28, 28, device=dev) < 0.13).float()

    def synchronise():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    out = {"case": case, "device": device_label(dev, threads), "steps_per_s": None, "nll_h": None}
    if name is None:
        model.eval()
        images = x[:nll_images]
        importance_log_likelihood(model.log_importance_weights, images[:1], samples=CHUNK, chunk=CHUNK)  # warm-up
        synchronise()
        start = time.perf_counter()
        importance_log_likelihood(model.log_importance_weights, images, samples=SAMPLES, chunk=CHUNK)
        synchronise()
        out["nll_h"] = (time.perf_counter() - start) / len(images) * TEST_IMAGES / 3600
    else:
        objective = build_objective(name, warmup=1, **params)
        optimizers = objective.make_optimizers(model, OptimizerFactory("adam_norm_grad", 5e-4, {}))

        def train(n: int) -> float:
            synchronise()
            start = time.perf_counter()
            for i in range(n):
                objective.train_step(model, optimizers, {"x": x}, Progress(i))
            synchronise()
            return time.perf_counter() - start

        train(warmup)
        out["steps_per_s"] = steps / train(steps)
    out.update(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, peak_gpu_mb=peak_gpu_mb(dev),
               load=os.getloadavg()[0])  # fmt: skip
    return out


def main() -> None:
    parser = benchmark_parser(__doc__, CASES)
    parser.set_defaults(cases=["nll_conv", "nll_pixel", "conv_vae", "conv_smim", "pixel_vae", "pixel_amim"])  # NLL first: the run column adds it
    parser.add_argument("--steps", type=int, default=5, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--nll-images", type=int, default=2, help="test images the NLL cases time (scaled to 10,000)")
    parser.add_argument("--epochs", type=int, default=300, help="epochs of the whole run the 'run h' column prices")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.device, args.worker_threads, args.steps, args.warmup, args.nll_images)))
        return
    print(f"{'case':<11} {'device':<34} {'steps/s':>8} {'samples/s':>9} {'epoch s':>8} {'nll h':>7} {'run h':>7} "
          f"{'peak RSS MB':>12} {'peak GPU MB':>12} {'load':>5}")  # fmt: skip
    nll: dict[tuple[str, str], float] = {}
    for case in args.cases:
        for device, threads in device_settings(args.devices, args.threads):
            worker_args = ["--device", device, "--worker-threads", str(threads), "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--nll-images", str(args.nll_images)]  # fmt: skip
            results = run_fresh(__file__, case, worker_args, args.repeats, threads)
            label = results[0]["device"]
            if results[0]["nll_h"] is not None:
                hours = statistics.median(r["nll_h"] for r in results)
                nll[(CASES[case][0], label)] = hours
                row = f"{'':>8} {'':>9} {'':>8} {hours:>7.1f} {'':>7}"
            else:
                rate = statistics.median(r["steps_per_s"] for r in results)
                epoch = EPOCH_STEPS / rate
                run = args.epochs * epoch / 3600 + nll.get((CASES[case][0], label), 0.0)
                row = f"{rate:>8.2f} {rate * BATCH:>9.0f} {epoch:>8.0f} {'':>7} {run:>7.1f}"
            print(f"{case:<11} {label:<34} {row} {peak_column(results, 'peak_rss_mb'):>12} "
                  f"{peak_column(results, 'peak_gpu_mb'):>12} {max(r['load'] for r in results):>5.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
