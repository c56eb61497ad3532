"""One Sacred experiment of genlab: its ingredients from the paper's configs, and the run every
experiment shares (device, data, model, objective, optimisers, record, train, evaluate).

``genlab_experiment(name, ...)`` builds the experiment from what makes it itself: the dataset kinds
it takes, the model kinds it trains, the paper's default and named configs for each ingredient, the
end-of-run evaluations. Its ``main`` is then usually one line, ``return train_and_evaluate(_run,
_config, _seed)``; an experiment whose batches are not drawn from the data parts directly (the
composer's triplets) passes ``batches``.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import ignite.distributed as idist
import torch
import torch.multiprocessing as mp
from sacred import Experiment
from sacred.randomness import set_global_seed

from genlab.data import DataParts, load_dataset
from genlab.data.batches import SAMPLERS, SequentialBatches
from genlab.data.transforms import compose
from genlab.devices import resolve_device
from genlab.evaluations import EvalContext, run_evaluations
from genlab.models import build_model, load_weights
from genlab.objectives import build_objective
from genlab.training.checkpoints import iteration_of
from genlab.training.distributed import average_gradients, world
from genlab.training.engines import FitResult, fit
from genlab.training.handlers import NonFiniteLossError
from genlab.training.resume import apply_to_optimizers, check_resume, checkpointed_config, config_changes, write_config
from ingredients import heartbeat
from ingredients.dataset import dataset_ingredient
from ingredients.evaluation import evaluation_ingredient, evaluation_settings
from ingredients.model import model_ingredient
from ingredients.observers import add_artifact, checkpoint_dir, log_final, prepare, record_fit
from ingredients.training import fit_options, optimizer_factory, training_ingredient


def genlab_experiment(
    name: str,
    *,
    dataset_kinds: Sequence[str],
    dataset: Callable,
    model_kinds: Sequence[str],
    training: Sequence[Callable],
    objectives: Sequence[str] | None = None,
    evaluations: Sequence[str] = (),
    named: Mapping[str, Sequence[Callable]] | None = None,
    evaluation: Callable | None = None,
) -> Experiment:
    """A Sacred experiment with genlab's four ingredients and the shared settings.

    ``dataset`` and ``training`` are the paper's default config functions (``training`` a sequence,
    applied in order), ``objectives`` the objectives it can train (None: any), ``evaluation``
    optionally overrides evaluation defaults; ``named`` maps an
    ingredient name (``dataset``, ``model``, ``training``) to its named configs. Only these named
    configs exist in the experiment (``print_named_configs`` lists them): another paper's are refused.
    """
    named = dict(named or {})
    unknown = set(named) - {"dataset", "model", "training"}
    if unknown:
        raise ValueError(f"named configs for unknown ingredient(s) {sorted(unknown)}")
    ingredients = [
        dataset_ingredient(dataset_kinds, dataset, named.get("dataset", ())),
        training_ingredient(training, named.get("training", ()), objectives, name),  # before model: its hook reads the objective
        model_ingredient(model_kinds, named.get("model", ()), name),
        evaluation_ingredient(evaluations, evaluation),
    ]
    ex = prepare(Experiment(name, ingredients=ingredients))
    ex.add_config(device="auto")  # "auto" picks CUDA when present
    ex.config_hook(check_resumed_config)
    return ex


def check_resumed_config(config, command_name, logger) -> dict:
    """With ``training.resume``: take the checkpointed run's ``seed`` when none is given, and refuse
    a config that differs from the checkpointed run's in more than the run length
    (``genlab.training.resume``), before anything is built or recorded."""
    resume = config["training"].get("resume")
    if resume is None:
        return {}
    checkpoint, recorded = checkpointed_config(resume)
    if recorded is None:
        logger.warning("training.resume=%s: the checkpointed run's config is not known; the resumed config is not checked", resume)
        return {}
    updates = {}
    if "seed" not in config and "seed" in recorded:
        updates["seed"] = recorded["seed"]
        logger.info("resuming %s with the checkpointed run's seed=%s", checkpoint, recorded["seed"])
    check_resume(recorded, {**config, **updates}, config["training"].get("resume_changes") or [], checkpoint)
    return updates


@dataclass
class Batches:
    """What training reads: the training stream, the validation batches (or None), the sets the
    end-of-run evaluations score (None: the data's training and test parts) and anything to record."""

    train: Any
    val: Iterable[dict] | None = None
    eval_sets: Mapping[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def data_batches(data: DataParts, config: Mapping[str, Any], seed: int, rank: int = 0, world_size: int = 1) -> Batches:
    """The default: shuffled training batches (``training.sampler``; with the dataset's transforms, seeded by ``seed``;
    this process's slice of each global batch in data-parallel training) and the validation part
    in order, if it has any examples."""
    training, dataset = config["training"], config["dataset"]
    sampler = SAMPLERS[training.get("sampler", "shuffle")]
    train = sampler(data.train, training["batch_size"], seed=seed, transform=compose(dataset["transforms"]),
                            rank=rank, world_size=world_size)  # fmt: skip
    val = None
    if data.val is not None and len(data.val):
        val = SequentialBatches(data.val, training["eval_batch_size"], transform=compose(dataset["eval_transforms"]))
    return Batches(train, val)


BatchesFn = Callable[..., Batches]


def train_and_evaluate(run, config: Mapping[str, Any], seed: int, batches: BatchesFn = data_batches) -> dict[str, float]:
    """The run of a genlab experiment, recorded into Sacred's ``run``:

    data (``config["dataset"]``, on the device) -> model (``config["model"]``, from the data's model
    inputs, optionally from another run's weights) -> objective and its optimisers
    (``config["training"]``) -> what the run needs to be rebuilt, in ``run.info`` -> training
    (``genlab.training.engines.fit``: metrics to ``run.log_scalar``, checkpoints in the run's folder,
    ``model.pt`` of the weights the results describe: the last, their moving average or the best) ->
    the end-of-run evaluations (``config["evaluation"]``) of those weights, logged at the final step.
    ``seed`` (Sacred's ``_seed`` of ``main``) orders the training batches; the data is drawn from
    the config's ``seed``. Returns the final validation and evaluation metrics, nested by split
    (``{"test": {"recon_nll": ...}}``, so that a MongoDB query on ``result.test.recon_nll`` finds
    them; the logged metrics keep the dotted names).

    With ``training.backend`` the same run is data-parallel (``genlab.training.distributed``): over
    ``training.nproc_per_node`` processes spawned here, or over the processes ``torchrun`` started
    (each runs this experiment; only rank 0 has observers). Either way rank 0 alone records.
    """
    config = plain(config)
    training = config["training"]
    backend, nproc = training["backend"], int(training["nproc_per_node"])
    directory = os.path.abspath(checkpoint_dir(run))
    heartbeat.serialise(run)
    if backend is None:
        if nproc != 1:
            raise ValueError("training.nproc_per_node > 1 needs training.backend (gloo on CPU, nccl on GPUs)")
        return nested(_train(run, config, seed, batches, directory))
    if nproc > 1:
        return nested(_spawn(run, config, seed, batches, directory, backend, nproc))
    with idist.Parallel(backend=backend) as parallel:  # processes started by torchrun
        box: dict[str, Any] = {}
        parallel.run(_in_process_group, run, config, seed, batches, directory, box)
        return nested(box.get("results", {}))


def nested(metrics: Mapping[str, float]) -> dict[str, Any]:
    """``{"test.recon_nll": v}`` -> ``{"test": {"recon_nll": v}}`` (split at the first dot)."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        split, _, quantity = name.partition(".")
        if quantity:
            out.setdefault(split, {})[quantity] = value
        else:
            out[name] = value
    return out


def _in_process_group(local_rank: int, run, config, seed, batches, directory, box) -> None:
    # each process is a Sacred run of its own: all take rank 0's seeds (Sacred draws one per process
    # when the command line gives none), and reseed as Sacred seeded rank 0
    seeds = idist.broadcast(torch.tensor([int(config["seed"]), int(seed)], dtype=torch.int64), src=0).tolist()
    config = {**config, "seed": seeds[0]}
    set_global_seed(seeds[0])
    box["results"] = _train(run if idist.get_rank() == 0 else NullRun(), config, seeds[1], batches, directory)


def _train(run, config: Mapping[str, Any], seed: int, batches: BatchesFn, directory: str) -> dict[str, float]:
    rank, world_size = world()
    device = idist.device() if world_size > 1 else resolve_device(config["device"])
    data = load_dataset(config["dataset"], device, config["seed"])
    model_cfg, training = config["model"], config["training"]
    net = build_model(model_cfg["kind"], model_cfg["options"], data.model_inputs).to(device)
    if model_cfg["init_from"] is not None and training["resume"] is None:
        run.info["init_from"] = load_weights(net, model_cfg["init_from"], strict=model_cfg["init_strict"])
    elif hasattr(net, "init_from_data"):  # an initialisation that reads the training data (VampPrior's pseudo-inputs)
        net.init_from_data(data.train)
    objective = build_objective(training["objective"], **training["loss"]).to(device)
    optimizers = objective.make_optimizers(net, optimizer_factory(training))
    for optimizer in optimizers.values():
        average_gradients(optimizer)
    parts = batches(data, config, seed, rank, world_size)
    run.info.update(data.info, model_inputs=data.model_inputs, device=str(device), **parts.info)
    if world_size > 1:
        run.info["processes"] = {"backend": training["backend"], "world_size": world_size}
    run.info["checkpoint_dir"] = directory
    changes = {}
    if training["resume"] is not None:
        _, recorded = checkpointed_config(training["resume"])
        changes = config_changes(recorded, config) if recorded is not None else {}
    if rank == 0:
        write_config(directory, config)

    def resumed(path: Path) -> None:  # the link to the run this one continues, recorded at once
        run.info.update(resumed_from=str(path.resolve()), resumed_at=iteration_of(path))
        if changes:
            applied = apply_to_optimizers(changes, optimizers)
            run.info["resume_changes"] = {k: {"checkpointed": a, "now": b, "applied_to_optimizers": k in applied}
                                          for k, (a, b) in changes.items()}  # fmt: skip
        heartbeat.flush(run)

    try:
        fitted: FitResult = fit(
            net, objective, optimizers, parts.train, val_batches=parts.val, log=run.log_scalar,
            checkpoint_dir=directory, on_checkpoint=lambda path, iteration: heartbeat.flush(run), on_resume=resumed,
            **fit_options(training, optimizers),
        )  # fmt: skip
    except NonFiniteLossError as err:
        run.info["last_finite_checkpoint"] = None if err.last_checkpoint is None else {
            "checkpoint": str(err.last_checkpoint), "iteration": err.last_iteration}  # fmt: skip
        run.info["nonfinite_at"] = err.step
        raise
    results = {f"val.{k}": float(v) for k, v in fitted.val_metrics.items()}
    if rank != 0:  # the end-of-run evaluations and the record are rank 0's
        return results
    record_fit(run, fitted, net)
    names, options = evaluation_settings(config["evaluation"])
    if names:
        ctx = EvalContext(fitted.eval_model, objective, data, device, sets=dict(parts.eval_sets or {}), history=fitted.val_history)
        metrics, extra = run_evaluations(ctx, names, options)
        log_final(run, metrics, fitted.iterations, results)
        run.info.update(extra)
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in ctx.artifacts.items():
                path = os.path.join(tmp, name)
                Path(path).write_bytes(payload)
                add_artifact(run, path, name=name)
    return results


# --- processes spawned by the run ------------------------------------------------------------------


class NullRun:
    """What ranks other than 0 record into: nothing."""

    def __init__(self):
        self.info: dict[str, Any] = {}

    def log_scalar(self, name, value, step=None) -> None:
        pass

    def add_artifact(self, path, name=None, **kwargs) -> None:
        pass


class QueueRun(NullRun):
    """Rank 0 of spawned processes: metrics go to the parent's run as they come; the info and the
    artifacts when the run is done."""

    def __init__(self, queue):
        super().__init__()
        self.queue, self.artifacts = queue, []

    def log_scalar(self, name, value, step=None) -> None:
        self.queue.put(("metric", name, float(value), step))

    def add_artifact(self, path, name=None, **kwargs) -> None:
        self.artifacts.append((name or os.path.basename(path), Path(path).read_bytes()))

    def flush(self) -> None:
        self.queue.put(("flush",))


def _spawned(local_rank: int, config, seed, batches, directory, queue) -> None:
    set_global_seed(config["seed"])  # as Sacred seeds the process it runs in
    run = QueueRun(queue) if idist.get_rank() == 0 else NullRun()
    results = _train(run, config, seed, batches, directory)
    if idist.get_rank() == 0:
        queue.put(("done", results, run.info, run.artifacts))


def _spawn(run, config, seed, batches, directory, backend: str, nproc: int) -> dict[str, float]:
    """Train in ``nproc`` processes (``idist.Parallel``); this process records what rank 0 sends."""
    queue = mp.get_context("spawn").Queue()
    outcome: dict[str, Any] = {}

    def relay() -> None:
        while True:
            message = queue.get()
            if message is None:
                return
            if message[0] == "metric":
                run.log_scalar(*message[1:])
            elif message[0] == "flush":
                heartbeat.flush(run)
            else:
                outcome["done"] = message[1:]
                return

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        with idist.Parallel(backend=backend, nproc_per_node=nproc, master_port=free_port()) as parallel:
            parallel.run(_spawned, config, seed, batches, directory, queue)
    finally:
        if "done" not in outcome:
            queue.put(None)
        reader.join()
    if "done" not in outcome:
        raise RuntimeError("the training processes ended without a result")
    results, info, artifacts = outcome["done"]
    run.info.update(info)
    with tempfile.TemporaryDirectory() as tmp:
        for name, payload in artifacts:
            path = os.path.join(tmp, name)
            Path(path).write_bytes(payload)
            add_artifact(run, path, name=name)  # raises if an observer could not store it
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain(value):
    """Sacred's read-only config as plain dicts and lists (picklable for spawned processes)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


__all__ = ["Batches", "data_batches", "genlab_experiment", "train_and_evaluate"]
