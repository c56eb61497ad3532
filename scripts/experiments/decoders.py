"""The ground-truth decoder of "The Role of Disentanglement in Generalisation" (docs/disent.md §2.3).

A decoder fed the true (normalised) factor values instead of a learned code, trained on the training
combinations of a generalisation split and scored with the same reconstruction NLL as the VAEs on the
training and excluded (test) combinations. Its disentanglement is 1 by construction.

    python -m experiments.decoders with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.higgins seed=1

The default training is the original's schedule (``training.gt_decoder``: 5,000 iterations, Adam 1e-3).
Logged: ``batch.*``, ``val.*``, and at the end ``train.recon_nll``, ``test.recon_nll``.
Artifact ``model.pt`` (its buffers hold the input transform).
"""

from __future__ import annotations

from configs import disent as paper
from ingredients.experiment import genlab_experiment, train_and_evaluate
from ingredients.observers import run_cli

ex = genlab_experiment(
    "decoders",
    dataset_kinds=["factor_images"],
    dataset=paper.dataset,
    model_kinds=["gt_decoder"],
    objectives=["gt_decoder"],
    training=[paper.training, paper.gt_decoder],
    evaluations=["objective_eval"],
    named=paper.DECODERS,
)


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed)


if __name__ == "__main__":
    run_cli(ex)
