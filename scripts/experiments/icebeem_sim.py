"""The nonlinear ICA simulations of ICE-BeeM (Khemakhem et al., NeurIPS 2020, section 5.1, figure
panels (e) and (f); docs/icebeem.md): ICE-BeeM, iVAE and TCL recovering the sources of the "TCL" and
IMCA data.

    python -m experiments.icebeem_sim with dataset.tcl dataset.options.n_layers=2 seed=0
    python -m experiments.icebeem_sim with training.ivae dataset.imca dataset.options.n_per_segment=500
    python -m experiments.icebeem_sim with training.tcl dataset.options.n_layers=4

Logged: ``batch.loss`` (and ICE-BeeM's ``batch.accuracy``, ``train.phase``); ICE-BeeM's MCC readouts
after each EBM phase (``val.mcc_flow_ica``, ``val.mcc_ebm_ica`` ... on the training points); at the
end (``genlab.evaluations.source_recovery``) ``train.mcc`` (the intended readout of the final model)
and ``train.mcc_paper`` (as the paper's number was made), with every readout's ``train.mcc_<name>``.
Artifact: ``model.pt``. The sweep: ``bin/icebeem/sims.sh``; the figure: ``genlab.analysis.icebeem_sim``
and ``notebooks/icebeem_sim.ipynb``.
"""

from __future__ import annotations

from configs import icebeem_sim as paper
from genlab.data.batches import SequentialBatches
from ingredients.experiment import data_batches, genlab_experiment, train_and_evaluate
from ingredients.observers import run_cli

ex = genlab_experiment(
    "icebeem_sim",
    dataset_kinds=["simulation"],
    dataset=paper.dataset,
    model_kinds=["icebeem", "ivae", "tcl"],
    objectives=["icebeem_fce", "ivae", "tcl"],
    training=[paper.icebeem],
    named=paper.ICEBEEM_SIM,
    evaluations=["source_recovery"],
)


def simulation_batches(data, config, seed, rank=0, world_size=1):
    """The shared training stream; the in-training evaluations score the whole training set in one
    batch, because MCC is a statistic of all the points, not a mean over batches."""
    batches = data_batches(data, config, seed, rank, world_size)
    batches.val = SequentialBatches(data.train, len(data.train))
    return batches


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed, batches=simulation_batches)


if __name__ == "__main__":
    run_cli(ex)
