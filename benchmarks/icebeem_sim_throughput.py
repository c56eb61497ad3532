"""Training throughput of the ICE-BeeM nonlinear-ICA simulation baselines through the shared
training loop, and the extrapolated wall time of a full run, comparable with the original's figures
(measured the same way on a 2-core CPU machine; see README "Measured").

    python benchmarks/icebeem_sim_throughput.py                       # every case, CPU at 1 and 2 threads, CUDA if present
    python benchmarks/icebeem_sim_throughput.py --cases ivae --threads 2 --repeats 5
    python benchmarks/icebeem_sim_throughput.py --cases engine_noop   # the loop's own cost per iteration

Each case runs ``--repeats`` times, each in a fresh process (so peak RSS is the case's own), on data
shaped like the paper's largest simulation (docs/icebeem.md §2, §5a): N = 40,000 points (20
segments of 2,000), d = 5, ``x`` and ``s`` standard normal, ``u`` one-hot, all resident on the
device (``genlab.data.sources.Tensors``). A worker builds the case's model, objective and optimizer
through the registries and trains ``--warmup`` iterations with ``genlab.training.engines.fit`` (no
evaluation, no checkpoints, logging to a no-op every 100 iterations). It then times ``--rounds``
rounds, each a further ``fit`` of ``--iterations / --rounds`` iterations on the same model and
optimizer followed by as many iterations of the same train step in a bare Python loop (no engine),
and keeps the fastest round of each: another process's busy spell slows a round, not the figure.
The median over the repeats is printed. Columns:

- ``steps/s``: through ``fit`` (what a run gets); ``bare``: the plain loop; ``cpu``: iterations per
  second of the process's CPU time (threads included): a machine busy with other work slows the
  wall-clock figures, much less this one at 1 thread;
- ``run``: the case's full length (``run_iterations``; the iVAE: 70,000 iterations, rounded up to
  whole epochs) at the measured steps/s;
- ``load``: the 1-minute load average when the worker finished (2 on a 2-core machine is saturated).

Cases (``CASES``: model kind and options, objective and hyperparameters, batch, optimizer):
- ``ivae``: the iVAE (docs/icebeem.md §3d), Adam lr 1e-3, batch 256; target on 2 CPU cores >= 870
  steps/s (the original: 290);
- ``tcl``: TCL's second stage (phase ``all``: every parameter), SGD momentum 0.9, batch 512; a run is
  10,000 + 20,000 iterations (the first stage is cheaper);
- ``icebeem_ebm`` / ``icebeem_flow``: ICE-BeeM's EBM-phase and flow-phase steps (docs/icebeem.md §4a),
  64 data + 64 noise points, the phase's noise set drawn at its first step (as in a run). An
  ICE-BeeM run's length depends on its stop rules, so no run time is extrapolated: the recorded
  runs' wall times are in the README;
- ``engine_noop``: a train step that does nothing but return a constant loss, on the same batches:
  the cost of the loop itself (batch drawing, Ignite events, NaN check, logging sums) per iteration.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from dataclasses import replace

from fresh_process import benchmark_parser, device_settings, device_label, peak_column, peak_gpu_mb, run_fresh

N_SEGMENTS, PER_SEGMENT, DIM = 20, 2000, 5
MODEL_INPUTS = {"input_shape": [DIM], "n_segments": N_SEGMENTS, "latent_dim": DIM, "mixing_layers": 2}

CASES = {
    "ivae": dict(kind="ivae", options={}, objective="ivae", loss={}, batch=256, optimizer=("adam", 1e-3, {}),
                 run_iterations=70_000, target=">= 870 steps/s (original 290)"),
    "tcl": dict(kind="tcl", options={"n_layers": 2}, objective="tcl", loss={}, batch=512,
                optimizer=("sgd", 0.01, {"momentum": 0.9}), phase="all", optimizers=["all"], run_iterations=30_000,
                target="- (original: TensorFlow, not measured)"),
    "icebeem_ebm": dict(kind="icebeem", options={}, objective="icebeem_fce", loss={}, batch=64,
                        optimizer=("adam", 1e-4, {}), phase="ebm", optimizers=["ebm"], run_iterations=None,
                        target="- (an EBM-phase step: 64 data + 64 noise points)"),
    "icebeem_flow": dict(kind="icebeem", options={}, objective="icebeem_fce", loss={}, batch=64,
                         optimizer=("adam", 1e-5, {}), phase="flow_1", optimizers=["flow"], run_iterations=None,
                         target="- (a flow-phase step: the spline flow's forward and backward)"),
    "engine_noop": dict(kind="ivae", options={}, objective=None, loss={}, batch=256, optimizer=("adam", 1e-3, {}),
                        run_iterations=70_000, target="- (the loop alone)"),
}  # fmt: skip


def noop_objective():
    """A train step that only returns a constant: what remains is the shared loop's own cost."""
    import torch

    from genlab.objectives.base import Objective

    class NoOp(Objective):
        def __init__(self):
            self.loss = torch.zeros(())

        def train_step(self, model, optimizers, batch, progress):
            return {"loss": self.loss}

        def eval_step(self, model, batch):
            return {"loss": self.loss}

    return NoOp()


def simulated_data(device):
    """Simulation-shaped data on ``device``: contiguous segments, one-hot u, random x and s."""
    import torch

    from genlab.data.sources import Tensors

    g = torch.Generator().manual_seed(0)
    n = N_SEGMENTS * PER_SEGMENT
    u = torch.nn.functional.one_hot(torch.arange(n) // PER_SEGMENT, N_SEGMENTS).float()
    x, s = torch.randn(n, DIM, generator=g), torch.randn(n, DIM, generator=g)
    return Tensors("simulation", x=x.to(device), u=u.to(device), s=s.to(device))


def measure(case: str, device: str, threads: int, warmup: int, iterations: int, rounds: int = 3) -> dict:
    import torch

    from genlab.data.batches import ShuffledBatches
    from genlab.devices import resolve_device
    from genlab.models import build_model
    from genlab.objectives import build_objective
    from genlab.training.engines import fit
    from genlab.training.optimizers import OptimizerFactory
    from genlab.training.phases import parse_phases
    from genlab.training.progress import Progress

    torch.set_num_threads(threads)
    spec = CASES[case]
    dev = resolve_device(device)
    torch.manual_seed(0)
    data = simulated_data(dev)
    model = build_model(spec["kind"], spec["options"], MODEL_INPUTS).to(dev)
    objective = (build_objective(spec["objective"], **spec["loss"]) if spec["objective"] else noop_objective()).to(dev)
    name, lr, options = spec["optimizer"]
    optimizers = objective.make_optimizers(model, OptimizerFactory(name, lr, options))
    batches = ShuffledBatches(data, spec["batch"], seed=0)
    phase = spec.get("phase", "train")  # the phase whose step is timed, handed its optimizers
    handed = {k: optimizers[k] for k in spec.get("optimizers", optimizers)}
    phases = parse_phases([{"name": phase, "iterations": 1, "optimizers": list(handed)}])

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def train(n: int) -> tuple[float, float]:
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        fit(model, objective, optimizers, batches, phases=[replace(phases[0], iterations=n)],
            log=lambda name, value, step: None, log_every=100)  # fmt: skip
        sync()
        return time.perf_counter() - start, time.process_time() - cpu

    def bare(n: int) -> float:
        stream = iter(ShuffledBatches(data, spec["batch"], seed=1))
        sync()
        start = time.perf_counter()
        for step in range(n):
            try:
                batch = next(stream)
            except StopIteration:
                stream = iter(ShuffledBatches(data, spec["batch"], seed=step))
                batch = next(stream)
            objective.train_step(model, handed, batch, Progress(step, phase=phase, phase_iteration=step, epoch_length=len(batches)))
        sync()
        return time.perf_counter() - start

    train(warmup)
    per_round = max(1, iterations // rounds)
    timings = [(train(per_round), bare(per_round)) for _ in range(rounds)]  # alternated: a busy spell hits both
    seconds, cpu_seconds = min(t[0] for t, _ in timings), min(t[1] for t, _ in timings)
    bare_seconds = min(b for _, b in timings)
    iterations = per_round
    steps = iterations / seconds
    per_epoch = len(batches)
    run_iterations = None if spec["run_iterations"] is None else -(-spec["run_iterations"] // per_epoch) * per_epoch  # finishing the epoch
    return {
        "case": case,
        "device": device_label(dev, threads),
        "batch": spec["batch"],
        "steps_per_s": steps,
        "bare_steps_per_s": iterations / bare_seconds,
        "cpu_steps_per_s": iterations / cpu_seconds,
        "run_minutes": None if run_iterations is None else run_iterations / steps / 60,
        "run_iterations": run_iterations,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": peak_gpu_mb(dev),
        "load": os.getloadavg()[0],
        "target": spec["target"],
    }



def main() -> None:
    parser = benchmark_parser(__doc__, CASES)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per process (the fastest is kept)")
    args = parser.parse_args()

    if args.worker:
        from genlab.devices import keep_freed_memory

        keep_freed_memory()
        print(json.dumps(measure(args.worker, args.device, args.worker_threads, args.warmup, args.iterations, args.rounds)))
        return

    print(f"{'case':<12} {'device':<34} {'batch':>5} {'steps/s':>8} {'bare':>8} {'cpu':>8} {'run':>9} "
          f"{'peak RSS MB':>12} {'peak GPU MB':>12} {'load':>5}  target")  # fmt: skip
    for case in args.cases:
        for device, threads in device_settings(args.devices, args.threads):
            worker_args = ["--device", device, "--worker-threads", str(threads), "--warmup", str(args.warmup),
                           "--iterations", str(args.iterations), "--rounds", str(args.rounds)]  # fmt: skip
            results = run_fresh(__file__, case, worker_args, args.repeats, threads)
            r = results[0]

            def median(key: str) -> float:
                return statistics.median(x[key] for x in results)

            run = "-" if r["run_minutes"] is None else f"{median('run_minutes'):.1f} min"
            print(f"{case:<12} {r['device']:<34} {r['batch']:>5} {median('steps_per_s'):>8.0f} {median('bare_steps_per_s'):>8.0f} "
                  f"{median('cpu_steps_per_s'):>8.0f} {run:>9} {peak_column(results, 'peak_rss_mb'):>12} "
                  f"{peak_column(results, 'peak_gpu_mb'):>12} {max(x['load'] for x in results):>5.1f}  {r['target']}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
