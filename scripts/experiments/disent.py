"""The Role of Disentanglement in Generalisation (Montero et al., ICLR 2021; disent.md).

Train a VAE-family model without supervision on the training combinations of a generalisation
split, then measure the posterior-mean reconstruction NLL on the training, validation and excluded
(test) combinations, and the DCI disentanglement of the training split.

    python -m experiments.disent with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.kim training.factor_vae training.loss.gamma=50 seed=3

Logged metrics: ``batch.*`` (training-step means), ``val.*`` (every ``training.eval_every``), and at
the end ``{train,test}.recon_nll``, ``train.dci_*``, ``train.mig`` and ``train.factorvae_score``. Artifact: ``model.pt`` (state dict);
``info["input_shape"]`` is the real image shape.
"""

from __future__ import annotations

from sacred import Experiment

from genlab.devices import resolve_device
from genlab.metrics.representations import disentanglement_scores
from genlab.training.engines import create_evaluator, evaluate_parts
from genlab.training.handlers import log_metrics
from ingredients.dataset import dataset, load_data, record_data
from ingredients.model import make_model, model
from ingredients.observers import add_torch_artifact, checkpoint_dir, prepare, run_cli
from ingredients.training import make_objective, make_optimizers, train, training

ex = prepare(Experiment("disent", ingredients=[dataset, model, training]))


@ex.config
def config():
    device = "auto"  # "auto" picks CUDA when present
    eval_samples = None  # images per split for the end-of-run NLL (None: the whole split)
    dci_samples = None  # training images DCI and MIG see (None: the whole training split)
    dci_alpha = 0.02  # Lasso penalty of DCI (disent.md 5.2)
    mig_bins = 20  # equal-width bins per latent for MIG (Chen et al. 2018)
    factorvae_votes = 800  # training and evaluation votes of the FactorVAE score (Kim & Mnih 2018)


@ex.main
def main(_run, _seed, device, eval_samples, dci_samples, dci_alpha, mig_bins, factorvae_votes, training):
    dev = resolve_device(device)
    data = load_data(device=dev)
    net = make_model(data.image_shape).to(dev)
    objective = make_objective().to(dev)
    optimizers = make_optimizers(objective, net)
    record_data(_run, data, dev)
    _run.info["checkpoint_dir"] = checkpoint_dir(_run)

    fitted = train(net, objective, optimizers, data.train, data.val, _run.log_scalar, _run.info["checkpoint_dir"], _seed)
    _run.info["iterations"] = fitted.iterations
    if fitted.resumed_from is not None:
        _run.info["resumed_from"] = str(fitted.resumed_from)
    add_torch_artifact(_run, net.state_dict(), "model.pt")

    step = fitted.iterations
    results = {}
    if fitted.val_metrics:  # the validation split was evaluated when training completed
        results["val.recon_nll"] = fitted.val_metrics["recon_nll"]
    parts = {"train": data.train, "test": data.test}
    for split, metrics in evaluate_parts(create_evaluator(net, objective), parts, eval_samples, training["eval_batch_size"]).items():
        log_metrics(_run.log_scalar, split, {"recon_nll": metrics["recon_nll"], "kl": metrics["kl"]}, step)
        results[f"{split}.recon_nll"] = metrics["recon_nll"]

    net.eval()
    scores, extra = disentanglement_scores(
        lambda x: net.encode(x)[0], data.train, dci_samples, dci_alpha, mig_bins, factorvae_votes, training["eval_batch_size"]
    )
    log_metrics(_run.log_scalar, "train", scores, step)
    results.update({f"train.{k}": v for k, v in scores.items()})
    _run.info.update(extra)
    return results


if __name__ == "__main__":
    run_cli(ex)
