"""One Sacred experiment of genlab: its ingredients from the paper's configs, and the run every
experiment shares (device, data, model, objective, optimisers, record, train, evaluate).

``genlab_experiment(name, ...)`` builds the experiment from what makes it itself: the dataset kinds
it takes, the model kinds it trains, the paper's default and named configs for each ingredient, the
end-of-run evaluations. Its ``main`` is then usually one line, ``return train_and_evaluate(_run,
_config, _seed)``; an experiment whose batches are not drawn from the data parts directly (the
composer's triplets) passes ``batches``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from sacred import Experiment

from genlab.data import DataParts, load_dataset
from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.data.transforms import compose
from genlab.devices import resolve_device
from genlab.evaluations import EvalContext, run_evaluations
from genlab.models import build_model, load_weights
from genlab.objectives import build_objective
from genlab.training.engines import FitResult, fit
from ingredients.dataset import dataset_ingredient
from ingredients.evaluation import evaluation_ingredient, evaluation_settings
from ingredients.model import model_ingredient
from ingredients.observers import checkpoint_dir, log_final, prepare, record_fit
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
    return ex


@dataclass
class Batches:
    """What training reads: the training stream, the validation batches (or None), the sets the
    end-of-run evaluations score (None: the data's training and test parts) and anything to record."""

    train: Any
    val: Iterable[dict] | None = None
    eval_sets: Mapping[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def data_batches(data: DataParts, config: Mapping[str, Any], seed: int) -> Batches:
    """The default: shuffled training batches (with the dataset's transforms, seeded by ``seed``)
    and the validation part in order, if it has any examples."""
    training, dataset = config["training"], config["dataset"]
    train = ShuffledBatches(data.train, training["batch_size"], seed=seed, transform=compose(dataset["transforms"]))
    val = None
    if data.val is not None and len(data.val):
        val = SequentialBatches(data.val, training["eval_batch_size"], transform=compose(dataset["eval_transforms"]))
    return Batches(train, val)


def train_and_evaluate(
    run, config: Mapping[str, Any], seed: int,
    batches: Callable[[DataParts, Mapping[str, Any], int], Batches] = data_batches,
) -> dict[str, float]:  # fmt: skip
    """The run of a genlab experiment, recorded into Sacred's ``run``:

    data (``config["dataset"]``, on the device) -> model (``config["model"]``, from the data's model
    inputs, optionally from another run's weights) -> objective and its optimisers
    (``config["training"]``) -> what the run needs to be rebuilt, in ``run.info`` -> training
    (``genlab.training.engines.fit``: metrics to ``run.log_scalar``, checkpoints in the run's folder,
    ``model.pt`` of the weights the results describe: the last, their moving average or the best) ->
    the end-of-run evaluations (``config["evaluation"]``) of those weights, logged at the final step.
    ``seed`` (Sacred's ``_seed`` of ``main``) orders the training batches; the data is drawn from
    the config's ``seed``. Returns the final validation and evaluation metrics.
    """
    device = resolve_device(config["device"])
    data = load_dataset(config["dataset"], device, config["seed"])
    model_cfg, training = config["model"], config["training"]
    net = build_model(model_cfg["kind"], model_cfg["options"], data.model_inputs).to(device)
    if model_cfg["init_from"] is not None and training["resume"] is None:
        run.info["init_from"] = load_weights(net, model_cfg["init_from"], strict=model_cfg["init_strict"])
    objective = build_objective(training["objective"], **training["loss"]).to(device)
    optimizers = objective.make_optimizers(net, optimizer_factory(training))
    parts = batches(data, config, seed)
    run.info.update(data.info, model_inputs=data.model_inputs, device=str(device), **parts.info)
    run.info["checkpoint_dir"] = checkpoint_dir(run)

    fitted: FitResult = fit(
        net, objective, optimizers, parts.train, val_batches=parts.val, log=run.log_scalar,
        checkpoint_dir=run.info["checkpoint_dir"], **fit_options(training, optimizers),
    )  # fmt: skip
    record_fit(run, fitted, net)

    results = {f"val.{k}": float(v) for k, v in fitted.val_metrics.items()}
    names, options = evaluation_settings(config["evaluation"])
    if names:
        ctx = EvalContext(fitted.eval_model, objective, data, device, sets=dict(parts.eval_sets or {}))
        metrics, extra = run_evaluations(ctx, names, options)
        log_final(run, metrics, fitted.iterations, results)
        run.info.update(extra)
    return results


__all__ = ["Batches", "data_batches", "genlab_experiment", "train_and_evaluate"]
