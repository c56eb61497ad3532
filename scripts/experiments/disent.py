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
from ingredients.dataset import dataset, load_data, record_data
from ingredients.evaluation import encoder_scores, evaluation, final_nll
from ingredients.model import make_model, model
from ingredients.observers import log_final, prepare, run_cli
from ingredients.training import make_objective, make_optimizers, train_recorded, training

ex = prepare(Experiment("disent", ingredients=[dataset, model, training, evaluation]))


@ex.config
def config():
    device = "auto"  # "auto" picks CUDA when present


@ex.main
def main(_run, _seed, device):
    dev = resolve_device(device)
    data = load_data(device=dev)
    net = make_model(data.image_shape).to(dev)
    objective = make_objective().to(dev)
    optimizers = make_optimizers(objective, net)
    record_data(_run, data, dev)

    fitted = train_recorded(_run, net, objective, optimizers, data.train, data.val, _seed)

    step, results = fitted.iterations, {}
    if fitted.val_metrics:  # the validation split was evaluated when training completed
        results["val.recon_nll"] = fitted.val_metrics["recon_nll"]
    for split, metrics in final_nll(net, objective, {"train": data.train, "test": data.test}, ("recon_nll", "kl")).items():
        log_final(_run, split, metrics, step, results)
    scores, extra = encoder_scores(net, data.train)
    log_final(_run, "train", scores, step, results)
    _run.info.update(extra)
    return results


if __name__ == "__main__":
    run_cli(ex)
