"""Symmetric equilibrium learning of binary-latent HVAEs (Flach, Schlesinger & Shekhovtsov, AISTATS
2024; docs/symvae.md): the symmetric game against the ZGR ELBO, on the three variants of the paper's
code, with random-code and limiting-chain samples and their FIDs.

    python -m experiments.symvae                                   # mnist_ladder, symmetric, 200k iterations
    python -m experiments.symvae with training.elbo                # the ELBO baseline
    python -m experiments.symvae with mnist_reverse training.elbo
    python -m experiments.symvae with fmnist_ladder paper_fmnist   # the paper's FashionMNIST run
    python -m experiments.symvae with training.smoke dataset.tiny  # a smoke run, nothing fetched

Logged: the per-unit losses of docs/symvae.md §3.3 as ``batch.*`` (sym ladder ``batch.ploss1``,
``batch.plossx``, ``batch.qloss0``, ``batch.qloss1``; ELBO ``batch.dloss``, ``batch.kl0loss`` ...) and
the ladder's MI monitors (``batch.pmi1``, ``batch.qmi0``, ``batch.qmi1``, §2.3); at the end
``train.fid_random_code`` and ``train.fid_limiting`` (``genlab.evaluations.symvae_samples``).
Artifacts: ``model.pt``, ``grid.png`` (§3.4), ``samples.pt``. The sweep: ``bin/symvae.sh``; the table:
``genlab.analysis.symvae`` and ``notebooks/symvae.ipynb``.
"""

from __future__ import annotations

from configs import symvae as paper
from ingredients.experiment import genlab_experiment, train_and_evaluate
from ingredients.observers import run_cli

ex = genlab_experiment(
    "symvae",
    dataset_kinds=["labelled_images"],
    dataset=paper.dataset,
    model_kinds=["binary_hvae"],
    objectives=["sym_equilibrium", "binary_elbo"],
    training=[paper.sym],
    named=paper.SYMVAE,
    evaluations=["symvae_samples"],
)
for variant in (*paper.VARIANTS, *paper.PAPER):
    ex.named_config(variant)


@ex.config_hook
def fid_weights_present(config, command_name, logger):
    """A run that will compute FIDs refuses to start without the Inception weights (a smoke run
    skips its FID instead, ``genlab.evaluations.symvae_samples``)."""
    evaluation = config["evaluation"]
    if command_name == "main" and "symvae_samples" in evaluation["run"] and evaluation.get("max_examples") is None \
            and evaluation.get("fid_images") != 0:  # fmt: skip
        from genlab.metrics.fid import weights_file

        weights_file(evaluation.get("fid_weights"))  # MissingFile names the file and bin/get-data fid
    return {}


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed)


if __name__ == "__main__":
    run_cli(ex)
