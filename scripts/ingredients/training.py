"""The ``training`` ingredient of an experiment: objective, optimiser and loop settings, captured for
``genlab.training.engines.fit``.

``training_ingredient(defaults, named)`` makes one for an experiment: ``defaults`` are the paper's
default settings (config functions of ``configs/<paper>.py``, applied in order), ``named`` its named
configs (``training.factor_vae`` ...). The shared part below carries no paper's values.

``training.objective`` is a key of ``genlab.objectives.OBJECTIVES``; ``training.loss`` holds that
objective's hyperparameters (its constructor's keyword arguments, shown with their defaults), e.g.
``training.factor_vae training.loss.gamma=50``. ``training.optimizer`` is a key of
``genlab.training.optimizers.OPTIMIZERS`` with ``training.optimizer_options`` (shown with their
defaults). A misspelt key or name is refused before anything runs.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, Mapping, Sequence

from sacred import Ingredient

from genlab.data.batches import SAMPLERS
from genlab.objectives import OBJECTIVES, build_objective
from genlab.registry import UnknownNameError, check_options
from genlab.training.distributed import BACKENDS
from genlab.training.engines import Selection
from genlab.training.optimizers import OPTIMIZERS, OptimizerFactory, optimizer_options as optimizer_options_of
from genlab.training.phases import parse_phases
from genlab.training.reporting import check_every, progress_mode
from genlab.training.schedulers import SCHEDULERS, build_schedulers, scheduler_options as scheduler_options_of


def _common():
    objective = None  # genlab.objectives.OBJECTIVES key (each experiment sets its default)
    loss = {}  # the objective's hyperparameters (filled with their defaults)
    optimizer = "adam"  # genlab.training.optimizers.OPTIMIZERS key: the model's optimiser
    optimizer_options = {}  # its options (filled with their defaults), e.g. betas, weight_decay
    lr = None  # the optimiser's learning rate
    batch_size = None
    sampler = "shuffle"  # training batches: "shuffle" (a permutation per epoch) or "random_slices" (SymVAE's, genlab.data.batches)
    epochs = None  # passes over the training data ...
    max_iterations = None  # ... unless this many updates is given instead (with phases: the most updates of the run)
    phases = None  # or named phases, each {"name", "iterations" or "epochs", "optimizers", "stop", "lr", "finish_epoch", "evaluate"} (then epochs is not used)
    scheduler = None  # genlab.training.schedulers.SCHEDULERS key (plateau, noam, step), or None
    scheduler_options = {}  # its options (filled with their defaults), "optimizers": the ones it drives (None: all)
    eval_every = 1000  # iterations between evaluations on the validation data, "epoch", or "phase" (ends of phases with evaluate)
    eval_batch_size = 512
    log_every = 100  # iterations between logged means of the training-step quantities
    epoch_medians = []  # training-step quantities whose median over each epoch is logged as epoch.<q>_median
    checkpoint_every = 1000
    n_saved = 2  # checkpoints kept
    select = None  # keep the best evaluation's weights by this validation quantity (e.g. "val.loss"), or None
    select_mode = "min"  # "min" or "max": which values of it are better
    select_after = 0  # evaluations before this iteration do not count (for selection and early stopping)
    select_after_epochs = 0  # ... or before the end of this epoch (whichever is later)
    evaluate_best = False  # end-of-run evaluations and model.pt from the best weights (needs select)
    early_stopping_patience = None  # evaluations without improvement (of select, else val.loss) before stopping
    early_stopping_after_epochs = None  # evaluations before the end of this epoch never count towards the patience (None: from the selection gate)
    ema = None  # decay of an exponential moving average of the weights (e.g. 0.9999), or None
    ema_warmup = False  # its decay at a phase's t-th update is min(ema, (1 + t) / (10 + t)) (TensorFlow's num_updates)
    evaluate_ema = False  # validate, evaluate and save the moving average instead of the weights
    smoke = False  # a smoke run (set by training.smoke): the end-of-run evaluations are smoke-sized too
    resume = None  # a checkpoint file or a run/checkpoint directory to continue from exactly
    resume_changes = []  # config keys (or prefixes) allowed to differ from the checkpointed run's on resume, besides the run length
    progress = "auto"  # "bar" (tqdm, whole run), "log" (a line every progress_every s), "off"; "auto": a bar on a terminal, else log
    progress_every = 30  # seconds between progress lines (of training in "log" mode, and of the evaluations)
    backend = None  # data-parallel training: "gloo" (CPU) or "nccl" (GPUs); None: one process
    nproc_per_node = 1  # processes the run spawns (1 under torchrun, which starts them itself)


def _filled(objective, loss, optimizer, optimizer_options, scheduler, scheduler_options):
    # the objective's hyperparameters, the optimiser's and the schedule's options, with their
    # defaults (an unknown name is reported by the config hook, with the valid names)
    loss = {**(OBJECTIVES.get(objective).hyperparameters() if objective in OBJECTIVES else {}), **loss}
    optimizer_options = {**(optimizer_options_of(optimizer) if optimizer in OPTIMIZERS else {}), **optimizer_options}
    scheduler_options = {**(scheduler_options_of(scheduler) if scheduler in SCHEDULERS else {}), **scheduler_options}


REQUIRED = ("objective", "lr", "batch_size")


def smoke():
    """A few hundred iterations with frequent evaluation: a laptop-CPU check that everything runs,
    small end to end: the end-of-run evaluations are smoke-sized too (``evaluation.max_examples``
    2,000 unless set). Every experiment has it (``training.smoke``); add ``dataset.tiny`` (or a small
    ``dataset.n_train``) for small data."""
    smoke = True
    max_iterations = 200
    eval_every = 100
    log_every = 20
    checkpoint_every = 100


def training_ingredient(
    defaults: Sequence[Callable], named: Sequence[Callable] = (), objectives: Sequence[str] | None = None,
    experiment: str = "this experiment",
) -> Ingredient:
    """``objectives``: the objectives ``experiment`` can train (None: every registered one)."""
    training = Ingredient("training")
    training.config(_common)
    for fn in defaults:
        training.config(fn)
    training.config(_filled)

    @training.config_hook
    def check(config, command_name, logger):
        """Unknown names and misspelt hyperparameters or options fail at start-up, listing the valid
        ones; the objective's hyperparameters and the optimiser's options are shown with their defaults."""
        cfg = config["training"]
        unset = [k for k in REQUIRED if cfg.get(k) is None]
        if unset:
            raise ValueError(f"training.{unset[0]} is not set (this experiment's defaults must give {', '.join(REQUIRED)})")
        if cfg["phases"] is None and cfg["epochs"] is None and cfg["max_iterations"] is None:
            raise ValueError("give training.epochs, training.max_iterations or training.phases")
        if objectives is not None and cfg["objective"] not in objectives:
            OBJECTIVES.get(cfg["objective"])  # an unknown name lists every objective
            raise UnknownNameError(f"{experiment} objective", cfg["objective"], sorted(objectives))
        build_objective(cfg["objective"], **cfg["loss"])  # names and values (a constructor checks its values)
        OptimizerFactory(cfg["optimizer"], cfg["lr"], cfg["optimizer_options"])  # checks name and options
        if cfg["scheduler"] is not None:
            check_options(f"scheduler {cfg['scheduler']!r}", SCHEDULERS.get(cfg["scheduler"]),
                          {k: v for k, v in cfg["scheduler_options"].items() if k != "optimizers"}, skip=("optimizer",))
        parse_phases(cfg["phases"], iterations=cfg["max_iterations"], epochs=cfg["epochs"])
        selection(cfg)
        if cfg["evaluate_best"] and cfg["select"] is None:
            raise ValueError("training.evaluate_best needs training.select (the validation quantity that picks the best)")
        if cfg["backend"] is not None and cfg["backend"] not in BACKENDS:
            raise ValueError(f"unknown training.backend {cfg['backend']!r}; valid: {', '.join(BACKENDS)} (or None)")
        if not (isinstance(cfg["nproc_per_node"], int) and cfg["nproc_per_node"] >= 1):
            raise ValueError(f"training.nproc_per_node must be a positive integer, got {cfg['nproc_per_node']!r}")
        if cfg["nproc_per_node"] > 1 and cfg["backend"] is None:
            raise ValueError("training.nproc_per_node > 1 needs training.backend (gloo on CPU, nccl on GPUs)")
        if cfg["backend"] is not None and cfg["batch_size"] % cfg["nproc_per_node"]:
            raise ValueError(f"training.batch_size={cfg['batch_size']} cannot be split over {cfg['nproc_per_node']} processes")
        medians = cfg.get("epoch_medians") or []
        if not (isinstance(medians, (list, tuple)) and all(isinstance(q, str) and q for q in medians)):
            raise ValueError(f"training.epoch_medians must be a list of training-step quantity names, got {medians!r}")
        if cfg["sampler"] not in SAMPLERS:
            raise ValueError(f"unknown training.sampler {cfg['sampler']!r}; valid: {', '.join(SAMPLERS)}")
        progress_mode(cfg["progress"]), check_every(cfg["progress_every"])  # a wrong value lists the valid ones
        if cfg["eval_every"] not in ("epoch", "phase") and not (isinstance(cfg["eval_every"], int) and cfg["eval_every"] > 0):
            raise ValueError(f"training.eval_every must be a positive number of iterations, 'epoch' or 'phase', got {cfg['eval_every']!r}")
        return {}

    training.named_config(smoke)
    for fn in named:
        training.named_config(fn)

    @training.command(unobserved=True)
    def show(_config):
        """Print the objective, its hyperparameters and the optimisation settings (``training.show with ...``)."""
        cfg = _config
        cls = OBJECTIVES.get(cfg["objective"])
        print(f"objective {cfg['objective']!r}: {cls.__module__}.{cls.__qualname__}")
        print(inspect.cleandoc(sys.modules[cls.__module__].__doc__ or "").split("\n\n")[0])
        for key, value in cfg["loss"].items():
            print(f"  loss.{key} = {value!r}")
        length = f"{cfg['max_iterations']} iterations" if cfg["max_iterations"] is not None else f"{cfg['epochs']} epochs"
        if cfg["phases"] is not None:
            length = "phases " + ", ".join(str(dict(p)) for p in cfg["phases"])
        options = ", ".join(f"{k}={v!r}" for k, v in cfg["optimizer_options"].items())
        print(f"{cfg['optimizer']} lr {cfg['lr']} ({options}), batch {cfg['batch_size']}, {length}")

    return training


def optimizer_factory(cfg: Mapping[str, Any]) -> OptimizerFactory:
    """The run's optimiser choice, for ``Objective.make_optimizers``."""
    return OptimizerFactory(cfg["optimizer"], cfg["lr"], dict(cfg["optimizer_options"]))


def selection(cfg: Mapping[str, Any]) -> Selection | None:
    """The best-checkpoint rule of a ``training`` config (None without ``select``)."""
    if cfg["select"] is None:
        return None
    return Selection(cfg["select"], cfg["select_mode"], int(cfg["select_after"]), int(cfg.get("select_after_epochs", 0)))


def fit_options(cfg: Mapping[str, Any], optimizers: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``genlab.training.engines.fit`` a ``training`` config gives, once the
    objective's ``optimizers`` exist (schedules are built on them)."""
    return dict(
        phases=parse_phases(cfg["phases"], iterations=cfg["max_iterations"], epochs=cfg["epochs"]),
        max_iterations=cfg["max_iterations"] if cfg["phases"] is not None else None,  # a cap on phased runs (smoke)
        schedulers=build_schedulers(cfg["scheduler"], optimizers, cfg["scheduler_options"]),
        eval_every=cfg["eval_every"], log_every=cfg["log_every"], epoch_medians=tuple(cfg.get("epoch_medians") or ()),
        checkpoint_every=cfg["checkpoint_every"], n_saved=cfg["n_saved"], resume=cfg["resume"],
        select=selection(cfg), evaluate_best=bool(cfg["evaluate_best"]),
        early_stopping_patience=cfg["early_stopping_patience"], early_stopping_after_epochs=cfg.get("early_stopping_after_epochs"),
        ema_decay=cfg["ema"], ema_warmup=bool(cfg["ema_warmup"]), evaluate_ema=bool(cfg["evaluate_ema"]),
        progress=progress_mode(cfg["progress"]), progress_every=cfg["progress_every"],
    )  # fmt: skip
