"""MIM on images: two-level VampPrior HVAEs trained as VAE, A-MIM and S-MIM on dynamic MNIST, dynamic
FashionMNIST and Omniglot (Livne, Swersky & Fleet 2019, "MIM: Mutual Information Machine"; docs/mim.md
§0 E6, the original's ``src/vae-as-mim-image.py``).

    python -m experiments.mim_images                                           # convHVAE VAE, VampPrior, dynamic MNIST
    python -m experiments.mim_images with training.smim seed=3                  # convHVAE S-MIM
    python -m experiments.mim_images with model.pixelhvae training.amim         # PixelHVAE A-MIM
    python -m experiments.mim_images with dynamic_fashion_mnist model.standard   # the standard prior
    python -m experiments.mim_images with omniglot dataset.options.path=/data/chardata.mat
    python -m experiments.mim_images with smoke                                 # a smoke run on the embedded digits

The settings: ``configs/mim_images.py``. Training batches are re-binarised every step (seeded by the
run's seed and the batch, so a resumed run draws the same); validation and test are binarised once
(seed 777); the training images the KNN classifiers are fit on are binarised once too (seed 778).
Logged: ``batch.loss``, ``batch.beta``, ``batch.recon_nll``, ``batch.kl`` (S-MIM also
``batch.enc_loss``, ``batch.dec_loss``); after every epoch ``val.loss`` (what selects the best epoch
and stops the run), ``val.elbo_loss``, ``val.recon_nll``, ``val.kl``; at the end, on the best epoch's
weights, ``genlab.evaluations.mim_images`` (``test.nll``, ``test.NMI``, ``test.clf_acc_KNN5`` ...) and
its images. The grid: ``bin/mim/images.sh``; the table and figures: ``genlab.analysis.mim`` and
``notebooks/mim.ipynb``.
"""

from __future__ import annotations

import logging

from configs import mim_images as paper

from genlab.data.batches import SequentialBatches
from genlab.data.transforms import compose
from genlab.errors import ConfigError
from ingredients.experiment import data_batches, genlab_experiment, train_and_evaluate
from ingredients.model import check_model_values
from ingredients.observers import run_cli

VAL_SEED, TRAIN_EVAL_SEED = 777, 778  # the fixed binarisations (the original seeds numpy with 777)
log = logging.getLogger("experiments.mim_images")

ex = genlab_experiment(
    "mim_images",
    dataset_kinds=["labelled_images"],
    dataset=paper.dataset,
    model_kinds=["hvae_vamp"],
    objectives=["hvae_vae", "hvae_mim"],
    training=[paper.training],
    named=paper.NAMED,
    evaluations=["mim_images"],
    evaluation=paper.evaluation,
)
for config in paper.DATASETS + (paper.smoke,):
    ex.named_config(config)


@ex.config_hook
def check_settings(config, command_name, logger):
    """What cannot work is refused at start-up: a bad model option; no validation part; S-MIM's VampPrior decoding pass draws from the first
    batch-size pseudo-inputs, so it needs at least that many; the PixelHVAE has no Bernoulli means
    to decode S-MIM's x with."""
    training, options = config["training"], config["model"]["options"]
    loss = training["loss"]
    if not config["dataset"].get("options", {}).get("n_val"):
        raise ConfigError("mim_images selects its model on a validation part: set dataset.options.n_val > 0 "
                          "(10,000 for dynamic MNIST / FashionMNIST, 1,345 for Omniglot)")  # fmt: skip
    if training["objective"] == "hvae_mim" and loss.get("sample"):
        batch = max(training["batch_size"], training["eval_batch_size"])
        if options.get("prior") == "vampprior" and batch > options.get("components", 0):
            raise ConfigError(f"S-MIM with the VampPrior draws its decoding pass from the first batch-size pseudo-inputs: "
                              f"training.batch_size / eval_batch_size of {batch} need model.options.components >= {batch}, "
                              f"got {options.get('components')}")  # fmt: skip
        if options.get("decoder") == "pixel" and loss.get("decoded_x") == "mean":
            raise ConfigError("training.loss.decoded_x='mean' is not defined for the PixelHVAE; use 'sample' or 'auto'")
    check_model_values(config)  # the option values (a misspelt decoder or prior): building costs ~0.1 s
    return {}


def image_batches(data, config, seed, rank=0, world_size=1):
    """Training batches re-binarised per batch; validation, test and the KNN's training images each
    binarised once with a fixed seed. The embedded digits of ``dataset.tiny`` have no test part: the
    smoke evaluation then scores the validation images (recorded in ``info["test_part"]``)."""
    batches = data_batches(data, config, seed, rank, world_size)
    size, fixed = config["training"]["eval_batch_size"], compose(config["dataset"]["eval_transforms"])
    test, part = (data.test, "test") if data.test is not None and len(data.test) else (data.val, "val")
    if part == "val":
        log.warning("%s has no test part: the end-of-run evaluation scores the validation images", data.name)
    batches.val = SequentialBatches(data.val, size, transform=fixed, seed=VAL_SEED)
    batches.eval_sets = {"train": SequentialBatches(data.train, size, transform=fixed, seed=TRAIN_EVAL_SEED),
                         "test": SequentialBatches(test, size, transform=fixed, seed=VAL_SEED)}  # fmt: skip
    batches.info["test_part"] = part
    return batches


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed, batches=image_batches)


if __name__ == "__main__":
    run_cli(ex)
