"""Flow contrastive estimation of an EBM against a Glow or MAF flow on 2D data (Gao et al., CVPR 2020;
fce.md), and the flow-MLE baseline.

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

from sacred import Experiment

from genlab.devices import resolve_device
from ingredients.energy_flow import make_model, model
from ingredients.observers import prepare, run_cli
from ingredients.toy2d import dataset, load_data, record_data
from ingredients.training import make_objective, make_optimizers, train_recorded, training

ex = prepare(Experiment("fce2d", ingredients=[dataset, model, training]))


@ex.config
def config():
    device = "auto"  # "auto" picks CUDA when present


@ex.main
def main(_run, _seed, seed, device):
    dev = resolve_device(device)
    objective = make_objective().to(dev)
    net = make_model(objective.uses_ebm).to(dev)  # the EBM first, then the flow: the original's RNG order
    data = load_data(dev, seed)  # the run's seed itself (Sacred's _seed is derived from it), so analysis can redraw the data
    optimizers = make_optimizers(objective, net)
    record_data(_run, data, dev)

    fitted = train_recorded(_run, net, objective, optimizers, data.train, data.eval, _seed)
    return {f"val.{name}": float(value) for name, value in fitted.val_metrics.items()}


if __name__ == "__main__":
    run_cli(ex, defaults=["training.fce_2d"])
