"""The ground-truth decoder of "The Role of Disentanglement in Generalisation" (disent.md 2.3).

A decoder fed the true (normalised) factor values instead of a learned code, trained on the training
combinations of a generalisation split and scored with the same reconstruction NLL as the VAEs on the
training and excluded (test) combinations. Its disentanglement is 1 by construction.

    python -m experiments.decoders with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.higgins seed=1

``training.gt_decoder`` (the original's schedule) is applied first on the command line, so any
other ``training.*`` setting given there overrides it.

Logged: ``batch.*``, ``val.*``, and at the end ``train.recon_nll``, ``test.recon_nll``.
Artifact ``model.pt`` (its buffers hold the input transform); ``info["input_shape"]``.
"""

from __future__ import annotations

from sacred import Experiment

from genlab.devices import resolve_device
from ingredients.dataset import dataset, load_data, record_data
from ingredients.decoder import make_decoder, model
from ingredients.evaluation import evaluation, final_nll
from ingredients.observers import log_final, prepare, run_cli
from ingredients.training import make_objective, make_optimizers, train_recorded, training

ex = prepare(Experiment("decoders", ingredients=[dataset, model, training, evaluation]))


@ex.config
def config():
    device = "auto"  # "auto" picks CUDA when present


@ex.main
def main(_run, _seed, device, dataset):
    dev = resolve_device(device)
    data = load_data(device=dev)
    net = make_decoder(dataset["name"], data.image_shape).to(dev)
    objective = make_objective().to(dev)
    optimizers = make_optimizers(objective, net)
    record_data(_run, data, dev)

    fitted = train_recorded(_run, net, objective, optimizers, data.train, data.val, _seed)

    results = {"val.recon_nll": fitted.val_metrics["recon_nll"]} if fitted.val_metrics else {}
    for split, metrics in final_nll(net, objective, {"train": data.train, "test": data.test}, ("recon_nll",)).items():
        log_final(_run, split, metrics, fitted.iterations, results)
    return results


if __name__ == "__main__":
    run_cli(ex, defaults=["training.gt_decoder"])
