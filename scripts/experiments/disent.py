"""The Role of Disentanglement in Generalisation (Montero et al., ICLR 2021; disent.md).

Train a VAE-family model without supervision on the training combinations of a generalisation
split, then measure the posterior-mean reconstruction NLL on the training, validation and excluded
(test) combinations, and the DCI disentanglement of the training split.

    python -m experiments.disent with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.kim training.factor_vae training.loss.gamma=50 seed=3

Logged metrics: ``batch.*`` (training-step means), ``val.*`` (every ``training.eval_every``), and at
the end ``{train,val,test}.recon_nll`` and ``train.dci_*``. Artifact: ``model.pt`` (state dict);
``info["input_shape"]`` is the real image shape.
"""

from __future__ import annotations

import numpy as np
from sacred import Experiment

from genlab.data.base import sample
from genlab.data.batches import SequentialBatches
from genlab.devices import resolve_device
from genlab.metrics.dci import dci
from genlab.metrics.representations import posterior_means
from genlab.training.engines import create_evaluator
from genlab.training.handlers import evaluate, log_metrics
from ingredients.dataset import dataset, load_data
from ingredients.model import make_model, model
from ingredients.observers import add_torch_artifact, checkpoint_dir, prepare, run_cli
from ingredients.training import make_objective, make_optimizers, train, training

ex = prepare(Experiment("disent", ingredients=[dataset, model, training]))


@ex.config
def config():
    device = "auto"  # "auto" picks CUDA when present
    eval_samples = None  # images per split for the end-of-run NLL (None: the whole split)
    dci_samples = None  # training images the DCI regression sees (None: the whole training split)
    dci_alpha = 0.02  # Lasso penalty of DCI (disent.md 5.2)


@ex.main
def main(_run, _seed, device, eval_samples, dci_samples, dci_alpha, training):
    dev = resolve_device(device)
    data = load_data(device=dev)
    net = make_model(data.image_shape).to(dev)
    objective = make_objective().to(dev)
    optimizers = make_optimizers(objective, net)
    _run.info.update(
        input_shape=list(data.image_shape),
        factor_names=list(data.factor_names),
        split_sizes={k: len(v) for k, v in data.splits().items()},
        device=str(dev),
        checkpoint_dir=checkpoint_dir(_run),
    )

    fitted = train(net, objective, optimizers, data.train, data.val, _run.log_scalar, _run.info["checkpoint_dir"], _seed)
    _run.info["iterations"] = fitted.iterations
    if fitted.resumed_from is not None:
        _run.info["resumed_from"] = str(fitted.resumed_from)
    add_torch_artifact(_run, net.state_dict(), "model.pt")

    step = fitted.iterations
    evaluator = create_evaluator(net, objective)
    results = {}
    if fitted.val_metrics:  # the validation split was evaluated when training completed
        results["val.recon_nll"] = fitted.val_metrics["recon_nll"]
    for split in ("train", "test"):
        part = getattr(data, split)
        if len(part):
            metrics = evaluate(evaluator, SequentialBatches(sample(part, eval_samples, seed=1), training["eval_batch_size"]))
            log_metrics(_run.log_scalar, split, {"recon_nll": metrics["recon_nll"], "kl": metrics["kl"]}, step)
            results[f"{split}.recon_nll"] = metrics["recon_nll"]

    train_part = sample(data.train, dci_samples, seed=2)
    scores = dci(posterior_means(net, train_part, training["eval_batch_size"]).cpu().numpy(), train_part.values.cpu().numpy(), alpha=dci_alpha)
    dci_metrics = {
        "dci_disentanglement": scores["disentanglement"],
        "dci_completeness": scores["completeness"],
        "dci_informativeness": float(np.nanmean(scores["informativeness"])),  # mean held-out R^2
    }
    log_metrics(_run.log_scalar, "train", dci_metrics, step)
    results.update({f"train.{k}": v for k, v in dci_metrics.items()})
    _run.info["dci_R"] = scores["R"].tolist()
    return results


if __name__ == "__main__":
    run_cli(ex)
