"""Training throughput and peak memory of the disent models, comparable with the original's figures.

One line per case, each measured in a fresh process (so peak RSS is the case's own):

    python benchmarks/train_throughput.py                 # every case, on CUDA if present
    python benchmarks/train_throughput.py --device cpu --threads 2 --repeats 3

Cases ("original": the original's figure, measured the same way on a 2-core CPU machine; see
README "Measured"):
- ``beta_vae``: kim beta-VAE (beta 8, Adam 1e-4), batch 64, 64x64 dSprites batches drawn from
  device-resident packed data; target on 2 CPU cores >= 900 samples/s (original 611);
- ``factor_vae``: kim FactorVAE (gamma 100, 6x1000 discriminator), batch 128, including the
  discriminator step; target >= 730 samples/s (original 489);
- ``dsprites_run``: a whole run on the full 737,280-image dSprites (generated, cached), split
  extrp/blank_side: 100 training iterations, then the end-of-run evaluation of ``experiments.disent``
  (NLL of the whole test split, DCI on the whole training split); peak RSS target <= 1.5 GB
  (original 6.5 GB);
- ``beta_vae_rgb``, ``factor_vae_rgb``: the same models on 3DShapes-shaped batches (3x64x64 uint8
  images resident on the device, from the 3DShapes stand-in's sub-grid: same shapes and dtypes as
  the real file; the original published no 3DShapes figures to compare with).
Samples/s counts data points only (steps/s x batch).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

from fresh_process import device_label, peak_column, peak_gpu_mb, run_fresh

CASES = {
    "beta_vae": dict(objective="beta_vae", loss={"beta": 8.0}, batch=64, target="900 (original 611)"),
    "factor_vae": dict(objective="factor_vae", loss={"gamma": 100.0}, batch=128, target="730 (original 489)"),
    "dsprites_run": dict(objective="beta_vae", loss={"beta": 8.0}, batch=64, target="peak RSS <= 1.5 GB (original 6.5 GB)"),
    "beta_vae_rgb": dict(objective="beta_vae", loss={"beta": 8.0}, batch=64, target="- (3DShapes-shaped 3x64x64)"),
    "factor_vae_rgb": dict(objective="factor_vae", loss={"gamma": 100.0}, batch=128, target="- (3DShapes-shaped 3x64x64)"),
}


def measure(case: str, device: str, threads: int, warmup: int, iterations: int) -> dict:
    import torch

    from genlab.data import load_split_data
    from genlab.data.batches import ShuffledBatches
    from genlab.devices import resolve_device
    from genlab.models.gaussian_vae import build_gaussian_vae
    from genlab.objectives import build_objective
    from genlab.training.optimizers import OptimizerFactory
    from genlab.training.progress import Progress

    torch.set_num_threads(threads)
    spec = CASES[case]
    dev = resolve_device(device)
    torch.manual_seed(0)
    if case == "dsprites_run":
        split = load_split_data("dsprites", "extrp", "blank_side", 0.05, 0, device=dev, source="generated")
        data = split.train
    elif case.endswith("_rgb"):  # 3DShapes-shaped: 3x64x64 uint8, resident
        data = load_split_data("shapes3d", None, None, 0.0, 0, device=dev, source="standin", strides=[2, 2, 2, 1, 1, 1],
                               resident=True).train
    else:  # a sub-grid of dSprites: same images and sparsity, quick to render
        data = load_split_data("dsprites", None, None, 0.0, 0, device=dev, source="generated", strides=[1, 1, 2, 2, 2]).train
    model = build_gaussian_vae("kim", 10, input_shape=data.image_shape).to(dev)
    objective = build_objective(spec["objective"], **spec["loss"]).to(dev)
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", lr=1e-4))
    batches = iter(ShuffledBatches(data, spec["batch"], seed=0))

    def run(n: int) -> float:
        start = time.perf_counter()
        for step in range(n):
            out = objective.train_step(model, optimizers, next(batches), Progress(step))
        float(out["loss"])  # wait for the device
        return time.perf_counter() - start

    run(warmup)
    seconds = run(iterations)
    if case == "dsprites_run":  # the end-of-run evaluation, as experiments.disent does it
        from genlab.data.batches import SequentialBatches
        from genlab.metrics.dci import dci
        from genlab.metrics.representations import posterior_means
        from genlab.training.engines import create_evaluator
        from genlab.training.handlers import evaluate

        evaluate(create_evaluator(model, objective), SequentialBatches(split.test, 512))
        dci(posterior_means(model, data, 512).cpu().numpy(), data.values.cpu().numpy())
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux reports kB)
    return {
        "case": case,
        "device": device_label(dev, threads),
        "batch": spec["batch"],
        "steps_per_s": iterations / seconds,
        "samples_per_s": iterations * spec["batch"] / seconds,
        "peak_rss_mb": peak_rss,
        "peak_gpu_mb": peak_gpu_mb(dev),
        "target": spec["target"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the reference machine has 2 cores)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per case; the median is printed")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's defaults (see genlab.devices.keep_freed_memory)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if not args.default_malloc:
            from genlab.devices import keep_freed_memory

            keep_freed_memory()
        iterations = 100 if args.worker == "dsprites_run" else args.iterations
        print(json.dumps(measure(args.worker, args.device, args.threads, args.warmup, iterations)))
        return

    print(f"{'case':<15} {'device':<28} {'batch':>5} {'steps/s':>8} {'samples/s':>10} {'peak RSS MB':>12} {'peak GPU MB':>12}  target")
    for case in args.cases:
        worker_args = ["--device", args.device, "--threads", str(args.threads), "--warmup", str(args.warmup),
                       "--iterations", str(args.iterations)] + (["--default-malloc"] if args.default_malloc else [])
        results = run_fresh(__file__, case, worker_args, args.repeats, args.threads)
        r = results[0]
        sps = statistics.median(x["samples_per_s"] for x in results)
        steps = statistics.median(x["steps_per_s"] for x in results)
        rss = peak_column(results, "peak_rss_mb")
        gpu = peak_column(results, "peak_gpu_mb")
        print(f"{case:<15} {r['device']:<28} {r['batch']:>5} {steps:>8.2f} {sps:>10.0f} {rss:>12} {gpu:>12}  {r['target']}", flush=True)


if __name__ == "__main__":
    main()
