"""MIM, the Mutual Information Machine, against the VAE and the AE on toy and PCA data (Livne, Swersky &
Fleet 2019; docs/mim.md): the five experiments of the original's README.

    python -m experiments.mim                                         # S-MIM on toy4, mid_dim 50
    python -m experiments.mim with e2 training.vae model.options.mid_dim=500 seed=3
    python -m experiments.mim with e3 training.mim_inv_h model.options.mid_dim=20
    python -m experiments.mim with e4 model.options.z_dim=8           # toy4_20
    python -m experiments.mim with e5 training.vae model.options.z_dim=10
    python -m experiments.mim with e1_mim                             # the animation's MIM panel
    python -m experiments.mim with training.smoke dataset.tiny        # a smoke run

The data are drawn afresh for every batch (``genlab.data.streams``): 78 training batches of 128 an
epoch for the toys, a fresh 9,984-point test stream after every epoch (seeded by the iteration, so a
resumed run draws the same). Logged: ``batch.loss``, ``batch.beta``, ``batch.recon_nll`` (S-MIM also
``batch.enc_loss``, ``batch.dec_loss``); after every epoch ``val.loss`` (what selects the best epoch and
stops the run), ``val.H_q_x``, ``val.MI_ksg``; at the end, on the best epoch's weights, the statistics
of ``genlab.evaluations.mim_stats`` under the original's names (``test.MI_ksg``, ``test.H_q_x``,
``test.x_recon_err``, ``test.clf_acc_KNN5`` ...). Artifacts: ``model.pt``; for 2-D data ``toy_view.pt``.
The sweeps: ``bin/mim/e{1..5}.sh``; the figures: ``genlab.analysis.mim`` and ``notebooks/mim.ipynb``.
"""

from __future__ import annotations

from configs import mim as paper
from genlab.data.streams import StreamBatches, StreamPasses
from ingredients.experiment import Batches, genlab_experiment, train_and_evaluate
from ingredients.model import check_model_values
from ingredients.observers import run_cli

FINAL_PASS = 2**30  # the key of the end-of-run evaluation's passes: apart from every training-time pass

ex = genlab_experiment(
    "mim",
    dataset_kinds=["stream"],
    dataset=paper.dataset,
    model_kinds=["gaussian_mlp"],
    objectives=["mim", "vae_mc", "ae"],
    training=[paper.mim_training],
    named=paper.MIM,
    evaluations=["mim_stats"],
)
for experiment in paper.EXPERIMENTS:
    ex.named_config(experiment)


@ex.config_hook
def model_values(config, command_name, logger):
    """The model's option values (an unknown activation, a zero width) are refused at start-up: the
    MLPs are built once here from the dataset's shape, which costs nothing."""
    check_model_values(config)
    return {}


def stream_batches(data, config, seed, rank=0, world_size=1) -> Batches:
    """Training batches drawn afresh, a fresh test pass at each evaluation, and one more pass of each
    stream for the end-of-run statistics (docs/mim.md §6.1)."""
    training = config["training"]
    size = training["eval_batch_size"]
    return Batches(
        train=StreamBatches(data.train, training["batch_size"], seed=seed, rank=rank, world_size=world_size),
        val=StreamPasses(data.test, size, seed=seed),
        eval_sets={"train": StreamPasses(data.train, size, seed=seed, fixed_key=FINAL_PASS),
                   "test": StreamPasses(data.test, size, seed=seed, fixed_key=FINAL_PASS)},
    )  # fmt: skip


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed, batches=stream_batches)


if __name__ == "__main__":
    run_cli(ex)
