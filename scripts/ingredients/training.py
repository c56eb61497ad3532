"""The ``training`` ingredient: objective, optimiser and loop settings, captured for ``genlab.training``.

``training.objective`` is a key of ``genlab.objectives.OBJECTIVES``; ``training.loss`` holds that
objective's hyperparameters (its constructor's keyword arguments, defaults shown by
``print_config``), e.g. ``training.factor_vae training.loss.gamma=50``. A misspelt key is refused
by Sacred before anything runs.
"""

from __future__ import annotations

import inspect
import sys

from sacred import Ingredient

from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.objectives import OBJECTIVES, build_objective, check_hyperparameters
from genlab.training.engines import FitResult, fit
from ingredients.observers import checkpoint_dir, record_fit

training = Ingredient("training")


@training.config
def config():
    objective = "beta_vae"  # genlab.objectives.OBJECTIVES key
    loss = OBJECTIVES.get(objective).hyperparameters()  # the objective's hyperparameters
    batch_size = 64
    lr = 1e-4  # Adam, the model's optimiser (disent.md 4.1)
    weight_decay = 0.0
    epochs = 30  # passes over the training split ...
    max_iterations = None  # ... unless this many updates is given instead
    eval_every = 1000  # iterations between evaluations on the validation split
    eval_batch_size = 512
    log_every = 100  # iterations between logged means of the training-step quantities
    checkpoint_every = 1000
    n_saved = 2  # checkpoints kept
    early_stopping_patience = None  # evaluations without improvement of val.loss before stopping
    resume = None  # a checkpoint file or a run/checkpoint directory to continue from
    progress = "auto"  # tqdm progress bar: True, False, or "auto" (when stderr is a terminal)


@training.config_hook
def check_loss(config, command_name, logger):
    """A misspelt ``training.loss`` key fails at start-up, listing the objective's hyperparameters."""
    check_hyperparameters(config["training"]["objective"], config["training"]["loss"])
    return {}


@training.capture
def make_objective(objective, loss):
    return build_objective(objective, **loss)


@training.capture
def make_optimizers(objective_, model, lr, weight_decay):
    return objective_.make_optimizers(model, lr=lr, weight_decay=weight_decay)


@training.capture
def train(model, objective_, optimizers, train_data, val_data, log, checkpoint_dir, seed, batch_size, eval_batch_size) -> FitResult:
    """Run ``genlab.training.engines.fit`` on device-resident training/validation data."""
    return fit_batches(
        model, objective_, optimizers, ShuffledBatches(train_data, batch_size, seed=seed),
        SequentialBatches(val_data, eval_batch_size) if val_data is not None and len(val_data) else None,
        log, checkpoint_dir,
    )


def train_recorded(run, model, objective_, optimizers, train_data, val_data, seed) -> FitResult:
    """``train`` into the run: its metrics to ``run.log_scalar``, checkpoints in ``checkpoint_dir(run)``
    (recorded in ``info``), then ``record_fit`` (iterations, resume origin, ``model.pt``)."""
    run.info["checkpoint_dir"] = checkpoint_dir(run)
    fitted = train(model, objective_, optimizers, train_data, val_data, run.log_scalar, run.info["checkpoint_dir"], seed)
    record_fit(run, fitted, model)
    return fitted


@training.capture
def fit_batches(
    model, objective_, optimizers, train_batches, val_batches, log, checkpoint_dir,
    epochs, max_iterations, eval_every, log_every, checkpoint_every, n_saved, early_stopping_patience, resume, progress,
) -> FitResult:
    """Run ``genlab.training.engines.fit`` on prebuilt batch iterables: ``train_batches`` as
    ``ShuffledBatches`` (``len`` = batches per epoch, ``bind``; e.g. ``genlab.data.triplets.TripletBatches``),
    ``val_batches`` any iterable of batches or None."""
    return fit(
        model, objective_, optimizers, train_batches,
        max_iterations=int(max_iterations) if max_iterations is not None else int(epochs) * len(train_batches),
        val_batches=val_batches,
        eval_every=eval_every, log=log, log_every=log_every,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, n_saved=n_saved,
        resume=resume, early_stopping_patience=early_stopping_patience,
        progress=sys.stderr.isatty() if progress == "auto" else bool(progress),
    )


@training.command(unobserved=True)
def show(objective, loss, batch_size, lr, epochs, max_iterations):
    """Print the objective, its hyperparameters and the optimisation settings (``training.show with ...``)."""
    cls = OBJECTIVES.get(objective)
    print(f"objective {objective!r}: {cls.__module__}.{cls.__qualname__}")
    print(inspect.cleandoc(sys.modules[cls.__module__].__doc__ or "").split("\n\n")[0])
    for key, value in loss.items():
        print(f"  loss.{key} = {value!r}")
    length = f"{max_iterations} iterations" if max_iterations is not None else f"{epochs} epochs"
    print(f"Adam lr {lr}, batch {batch_size}, {length}")


from configs import training as _named_configs  # noqa: E402,F401  (registers training.<name>)
