"""The Role of Disentanglement in Generalisation (Montero et al., ICLR 2021; docs/disent.md).

Train a VAE-family model without supervision on the training combinations of a generalisation
split, then measure the posterior-mean reconstruction NLL on the training, validation and excluded
(test) combinations, and the DCI disentanglement of the training split.

    python -m experiments.disent with dataset.dsprites dataset.condition=recomb2range \\
        dataset.variant=shape2tx model.kim training.factor_vae training.loss.gamma=50 seed=3

Logged metrics: ``batch.*`` (training-step means), ``val.*`` (every ``training.eval_every``), and at
the end ``{train,test}.recon_nll`` and ``.kl``, ``train.dci_*``, ``train.mig`` and
``train.factorvae_score``. Artifact: ``model.pt`` (state dict); ``info["model_inputs"]`` rebuilds it.
"""

from __future__ import annotations

from configs import disent as paper
from ingredients.experiment import genlab_experiment, train_and_evaluate
from ingredients.observers import run_cli

ex = genlab_experiment(
    "disent",
    dataset_kinds=["factor_images"],
    dataset=paper.dataset,
    model_kinds=["gaussian_vae"],
    objectives=["beta_vae", "cci_vae", "factor_vae", "vae"],
    training=[paper.training],
    evaluations=["objective_eval", "disentanglement"],
    named=paper.DISENT,
)


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed)


if __name__ == "__main__":
    run_cli(ex)
