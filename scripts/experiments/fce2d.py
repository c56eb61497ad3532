"""Flow contrastive estimation of an EBM against a Glow or MAF flow on 2D data (Gao et al., CVPR 2020;
docs/fce.md), and the flow-MLE baseline.

    python -m experiments.fce2d with dataset.8gaussians model.maf
    python -m experiments.fce2d with dataset.pinwheel model.glow training.flow_mle_2d

Logged metrics: ``batch.neg_value`` (-V; log 4 at equilibrium), ``batch.accuracy`` and
``batch.ebm_update`` (the fraction of EBM updates), as means over ``training.log_every``
iterations; every ``training.eval_every`` iterations on the fixed evaluation sample: ``val.neg_value``,
``val.accuracy``, ``val.flow_nll``, ``val.log_z`` and, for 8gaussians, ``val.mse_ebm``,
``val.mse_ebm_grid`` and ``val.mse_flow`` (flow-MLE runs log the flow's quantities only).
Artifact: ``model.pt`` (the EBM and the flow). Densities and curves: ``genlab.analysis.fce2d`` and
``notebooks/fce2d.ipynb``.
"""

from __future__ import annotations

from configs import fce2d as paper
from ingredients.experiment import genlab_experiment, train_and_evaluate
from ingredients.observers import run_cli

ex = genlab_experiment(
    "fce2d",
    dataset_kinds=["points"],
    dataset=paper.dataset,
    model_kinds=["energy_flow"],
    objectives=["fce", "flow_mle"],
    training=[paper.fce_2d],
    named=paper.FCE2D,
)


@ex.main
def main(_run, _config, _seed):
    return train_and_evaluate(_run, _config, _seed)


if __name__ == "__main__":
    run_cli(ex)
