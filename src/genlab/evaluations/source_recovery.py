"""How well a nonlinear ICA model recovers the true sources: the MCC readouts of the ICE-BeeM
simulations (Khemakhem et al., NeurIPS 2020, section 5.1; docs/icebeem.md §7, §10.1-10.3).

Scored on the training points themselves, as in the paper (there is no held-out set). The model says
what it reads out (``model.readouts(x, u) -> {name: (N, d) code}``) and what the codes estimate
(``model.source_target``: the sources ``s``, or ``s_squared`` for TCL). Every readout is scored raw
(``train.mcc_<name>``) and after FastICA (``train.mcc_<name>_ica``), then two summaries are recorded
under names that say how they were made:

- ``train.mcc``: the intended readout of the final model (``model.intended_readout``), chosen
  without looking at the true sources: FastICA of the EBM's features f(x) for ICE-BeeM, the encoder
  mean for iVAE, FastICA of the features for TCL;
- ``train.mcc_paper``: the number as each method's published value was made: the best of
  ``model.paper_readouts`` (iVAE: sampled z, encoder mean, FastICA of the mean) and, for ICE-BeeM,
  the best of the in-training evaluations of ``model.paper_history`` (FastICA of the *flow's*
  latent after each EBM phase, docs/icebeem.md §10.1, §10.2). Both choose by the ground truth, so
  this is an optimistic number.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.metrics.mcc import recovery_scores, source_target


def _codes(model, source, batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every readout of every training point (in order) and the true sources."""
    out: dict[str, list[np.ndarray]] = {}
    sources = []
    for start in range(0, len(source), batch_size):
        batch = source.batch(slice(start, start + batch_size))
        for name, code in model.readouts(batch["x"], batch["u"]).items():
            out.setdefault(name, []).append(code.detach().cpu().numpy())
        sources.append(batch["s"].cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}, np.concatenate(sources)


@register_evaluation("source_recovery")
@torch.no_grad()
def source_recovery(ctx: EvalContext, correlation: str = "pearson", ica_seed: int = 0, batch_size: int = 100_000):
    """MCC (``correlation`` "pearson" as the paper, or "spearman") of each readout against the true
    sources; FastICA seeded with ``ica_seed``."""
    model = ctx.model
    model.eval()
    codes, s = _codes(model, ctx.data.train, int(batch_size))
    scores = recovery_scores(codes, source_target(s, model.source_target), correlation, int(ica_seed))
    metrics = {f"train.mcc_{k}": v for k, v in scores.items()}
    metrics["train.mcc"] = scores[model.intended_readout]
    paper = [scores[name] for name in model.paper_readouts]
    history = getattr(model, "paper_history", None)
    if history is not None:
        paper += [m[history] for _, m in ctx.history if history in m]
        if not paper:  # a run without in-training evaluations: the final model's flow readout
            paper.append(scores[history.removeprefix("mcc_")])
    metrics["train.mcc_paper"] = max(paper)
    info = {"source_recovery": {"readouts": sorted(codes), "intended": model.intended_readout,
                                "paper": list(model.paper_readouts) + ([history] if history else []),
                                "points": int(len(s))}}  # fmt: skip
    return metrics, info
