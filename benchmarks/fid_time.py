"""Time of the FID (``genlab.metrics.fid``) with the real offline Inception on 28 x 28 grey images,
and the extrapolated wall time of the FID sets of docs/symvae.md §4.3-4.4 (70,000 images per set,
70k reference vs 70k generated), on the CPU at 1 and 2 threads and on CUDA when present.

    python benchmarks/fid_time.py                                   # batches 50 and 200 + the distance
    python benchmarks/fid_time.py --cases batch50 --threads 2 --images 100 --repeats 1
    python benchmarks/fid_time.py --cases distance --stat-images 4000

Needs the Inception file of ``bin/get-data fid`` (or ``--weights``). Each case runs ``--repeats``
times, each in a fresh process (so peak RSS is the case's own); the median is printed.

- ``batch50``, ``batch200``: ``fid.features`` of MNIST-shaped binary images (1 x 28 x 28, each pixel
  1 with probability 0.13), drawn on the device chunk by chunk from a generator as a model's
  sampler would hand them, ``batch`` at a time through ``InceptionFeatures`` (8-bit rounding,
  bilinear resize to 299, the TorchScript Inception). After ``--warmup`` images, ``--rounds``
  rounds of ``--images`` images each (rounded up to whole batches) are timed and the fastest is
  kept (another process's busy spell slows a round, not the figure). Columns: ``img/s`` (wall),
  ``cpu`` (images per second of the process's CPU time, all threads), ``10k`` / ``70k``: one set of
  that size at that rate, ``70k v 70k``: a reference and a generated set (2 x 70k images; the
  statistics and the distance are the ``distance`` row's).
- ``distance``: ``Statistics.from_features`` of ``--stat-images`` random 2048-d features, scaled
  linearly to 70k (the covariance is linear in N), and one ``frechet_distance`` (a 2048 x 2048
  ``scipy.linalg.sqrtm``, independent of N); ``70k v 70k`` is two statistics and one distance.
- ``load``: the 1-minute load average when the worker finished (2 on a 2-core machine is saturated).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

from fresh_process import benchmark_parser, device_settings, device_label, peak_column, peak_gpu_mb, run_fresh

SET, SMALL_SET, FEATURES = 70_000, 10_000, 2048  # docs/symvae.md §4.3: 70,000 images per set
CASES = {"batch50": 50, "batch200": 200, "distance": None}


def binary_chunks(n: int, chunk: int, device):
    """``n`` MNIST-shaped binary images, ``chunk`` at a time, drawn on ``device`` (as a sampler would)."""
    import torch

    g = torch.Generator(device).manual_seed(0)
    for start in range(0, n, chunk):
        yield (torch.rand(min(chunk, n - start), 1, 28, 28, generator=g, device=device) < 0.13).float()


def measure_inception(batch: int, device: str, threads: int, weights: str | None, images: int, warmup: int,
                      rounds: int) -> dict:  # fmt: skip
    import torch

    from genlab.devices import resolve_device
    from genlab.metrics import fid

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    extractor = fid.InceptionFeatures(weights, device=dev)
    n = -(-images // batch) * batch  # whole batches

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def run(count: int) -> tuple[float, float]:
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        f = fid.features(binary_chunks(count, batch, dev), extractor, batch_size=batch)
        sync()
        assert f.shape == (count, extractor.dim)
        return time.perf_counter() - start, time.process_time() - cpu

    if warmup:
        run(warmup)
    timings = [run(n) for _ in range(rounds)]
    seconds, cpu_seconds = min(t for t, _ in timings), min(c for _, c in timings)
    rate = n / seconds
    return {
        "case": f"batch{batch}", "device": device_label(dev, threads), "batch": batch, "images": n,
        "images_per_s": rate, "cpu_images_per_s": n / cpu_seconds,
        "set_10k_min": SMALL_SET / rate / 60, "set_70k_min": SET / rate / 60, "fid_70k_min": 2 * SET / rate / 60,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mb": peak_gpu_mb(dev),
        "load": os.getloadavg()[0], "weights": extractor.describe()["sha1"][:12],
    }  # fmt: skip


def measure_distance(threads: int, stat_images: int) -> dict:
    import numpy as np
    import torch

    from genlab.metrics import fid

    torch.set_num_threads(threads)  # numpy/scipy follow OMP_NUM_THREADS, set by run_fresh
    rng = np.random.default_rng(0)
    f = rng.random((stat_images, FEATURES))
    start = time.perf_counter()
    a = fid.Statistics.from_features(f)
    stats_seconds = time.perf_counter() - start
    b = fid.Statistics.from_features(f[::-1] ** 2)
    start = time.perf_counter()
    fid.frechet_distance(a, b)
    distance_seconds = time.perf_counter() - start
    stats_70k = stats_seconds * SET / stat_images
    return {
        "case": "distance", "device": device_label(torch.device("cpu"), threads), "batch": None, "images": stat_images,
        "stats_70k_s": stats_70k, "distance_s": distance_seconds, "fid_70k_s": 2 * stats_70k + distance_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_mb": None,
        "load": os.getloadavg()[0],
    }  # fmt: skip



def minutes(m: float) -> str:
    return f"{m:.1f} min" if m < 120 else f"{m / 60:.1f} h"


def main() -> None:
    parser = benchmark_parser(__doc__, CASES)
    parser.add_argument("--weights", default=None, help="the Inception TorchScript file (default: bin/get-data fid's)")
    parser.add_argument("--images", type=int, default=400, help="images per timed round (rounded up to whole batches)")
    parser.add_argument("--warmup", type=int, default=50, help="images through the Inception before timing")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per process (the fastest is kept)")
    parser.add_argument("--stat-images", type=int, default=10_000, help="features whose statistics the distance case times")
    args = parser.parse_args()

    if args.worker:
        from genlab.devices import keep_freed_memory

        keep_freed_memory()
        if args.worker == "distance":
            result = measure_distance(args.worker_threads, args.stat_images)
        else:
            result = measure_inception(CASES[args.worker], args.device, args.worker_threads, args.weights, args.images,
                                       args.warmup, args.rounds)  # fmt: skip
        print(json.dumps(result))
        return

    from genlab.metrics import fid

    fid.weights_file(args.weights)  # a missing or damaged file fails here, naming bin/get-data fid
    print(f"{'case':<9} {'device':<34} {'img/s':>7} {'cpu':>7} {'10k':>9} {'70k':>9} {'70k v 70k':>10} "
          f"{'peak RSS MB':>12} {'peak GPU MB':>12} {'load':>5}")  # fmt: skip
    for case in args.cases:
        pairs = [("cpu", t) for t in args.threads] if case == "distance" else device_settings(args.devices, args.threads)
        for device, threads in pairs:
            worker_args = ["--device", device, "--worker-threads", str(threads), "--images", str(args.images),
                           "--warmup", str(args.warmup), "--rounds", str(args.rounds), "--stat-images", str(args.stat_images)]  # fmt: skip
            if args.weights:
                worker_args += ["--weights", args.weights]
            results = run_fresh(__file__, case, worker_args, args.repeats, threads)
            r = results[0]

            def median(key: str) -> float:
                return statistics.median(x[key] for x in results)

            if case == "distance":  # statistics of 70k features (scaled) and one sqrtm
                cells = f"{'-':>7} {'-':>7} {'-':>9} {median('stats_70k_s'):>8.1f}s {median('fid_70k_s'):>9.1f}s"
                note = f"  sqrtm {median('distance_s'):.1f} s, statistics of {r['images']} features scaled to 70k"
            else:
                cells = (f"{median('images_per_s'):>7.2f} {median('cpu_images_per_s'):>7.2f} {minutes(median('set_10k_min')):>9} "
                         f"{minutes(median('set_70k_min')):>9} {minutes(median('fid_70k_min')):>10}")  # fmt: skip
                note = f"  {r['images']} images timed, Inception {r['weights']}"
            print(f"{case:<9} {r['device']:<34} {cells} {peak_column(results, 'peak_rss_mb'):>12} "
                  f"{peak_column(results, 'peak_gpu_mb'):>12} {max(x['load'] for x in results):>5.1f}{note}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
