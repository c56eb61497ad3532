"""The composition task of "The Role of Disentanglement in Generalisation" (Montero et al., ICLR 2021;
disent.md 2.4). The original named this experiment 'disent' too (disent.md 8.11); here it is
``composition``.

A composer (shared VAE encoder, a mixer, the VAE's decoder) sees a reference image, a transform image
and a one-hot action naming a factor d, and must render the reference with its class on d replaced
by the transform's. It trains on triplets drawn within the training part of a generalisation split
(``genlab.data.triplets``), then is scored on fixed triplets:

- ``train``: reference, transform and target all from the training part;
- ``test``: the target's combination lies in the test part (the excluded combinations: the question
  is whether the composer can render a combination it never saw); reference and transform are drawn
  from anywhere in the dataset, because a reference one factor away from an excluded combination is
  itself often excluded (in an extrapolation split, always unless d is the extrapolated factor);
- ``val`` (during training): targets in the validation part, references and transforms from the
  training side (training + validation images), never from the test part.

    python -m experiments.composition with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.burgess_v2 model.linear_mixer seed=3

``training.composer`` (composer objective, beta 1, batch 64, Adam 1e-4, 30 epochs of ``n_samples``
= 10,000 triplets; disent.md 4.1) is applied first on the command line, so other ``training.*``
settings given there override it.

Logged: ``batch.*``, ``val.*`` (every ``training.eval_every``), and at the end ``train.recon_nll``,
``test.recon_nll`` (Bernoulli NLL of the target rendered from posterior means, nats per image, on
``eval_triplets`` fixed triplets drawn from ``triplet_seed``), and ``train.dci_*``, ``train.mig``,
``train.factorvae_score`` of the composer's encoder (posterior means) on the training part. Artifact ``model.pt``;
``info["input_shape"]`` and ``info["n_actions"]`` rebuild the model with
``genlab.models.composer.build_composer(**config["model"], ...)``.
"""

from __future__ import annotations

from sacred import Experiment

from genlab.data.triplets import TripletBatches, split_triplets
from genlab.devices import resolve_device
from genlab.training.engines import create_evaluator
from genlab.training.handlers import evaluate
from ingredients.composer import make_composer, model
from ingredients.dataset import dataset, load_data, record_data
from ingredients.evaluation import encoder_scores, evaluation
from ingredients.observers import checkpoint_dir, log_final, prepare, record_fit, run_cli
from ingredients.training import fit_batches, make_objective, make_optimizers, training

DEFAULTS = ["training.composer"]  # named configs applied before the user's

ex = prepare(Experiment("composition", ingredients=[dataset, model, training, evaluation]))


@ex.config
def config():
    device = "auto"  # "auto" picks CUDA when present
    n_samples = 10_000  # training triplets per epoch (the original's fixed epoch, disent.md 2.4)
    eval_triplets = 5_000  # fixed triplets of each part (train, val, test) for the NLLs
    triplet_seed = 0  # seed of the fixed evaluation triplets


@ex.main
def main(_run, _seed, _log, device, n_samples, eval_triplets, triplet_seed, training):
    if training["objective"] != "composer":
        raise ValueError(f"experiments.composition trains the 'composer' objective, not {training['objective']!r}")
    dev = resolve_device(device)
    data = load_data(device=dev)
    # a split without training triplets fails here, before any model is built
    train_batches = TripletBatches(data.train, training["batch_size"], n_samples=n_samples, seed=_seed)
    fixed = split_triplets(data, eval_triplets, triplet_seed, training["eval_batch_size"])
    n_actions = len(data.factor_names)
    net = make_composer(data.image_shape, n_actions).to(dev)
    objective = make_objective().to(dev)
    optimizers = make_optimizers(objective, net)
    record_data(_run, data, dev)
    inert = train_batches.sampler.inert_factors
    if inert:
        _log.warning("no training triplet can change %s: those actions are never trained", ", ".join(inert))
    _run.info.update(n_actions=n_actions, inert_factors=inert, checkpoint_dir=checkpoint_dir(_run))

    fitted = fit_batches(net, objective, optimizers, train_batches, fixed.get("val"), _run.log_scalar, _run.info["checkpoint_dir"])
    record_fit(_run, fitted, net)

    step = fitted.iterations
    results = {"val.recon_nll": fitted.val_metrics["recon_nll"]} if fitted.val_metrics else {}
    evaluator = create_evaluator(net, objective)
    for split in ("train", "test"):
        if split in fixed:
            metrics = evaluate(evaluator, fixed[split])
            log_final(_run, split, {"recon_nll": metrics["recon_nll"], "kl": metrics["kl"]}, step, results)
    scores, extra = encoder_scores(net, data.train)
    log_final(_run, "train", scores, step, results)
    _run.info.update(extra)
    return results


if __name__ == "__main__":
    run_cli(ex, defaults=DEFAULTS)
