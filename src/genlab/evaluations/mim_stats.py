"""The end-of-run statistics of MIM's toy and PCA experiments, on the best checkpoint (Livne, Swersky &
Fleet 2019; docs/mim.md §6.1, §6.2), under the original's names:

1. one pass of the training stream encoded (z a *sample* of q(z|x), not its mean) with its labels;
2. one pass of the test stream encoded the same way, with a sampled reconstruction x~ ~ p(x|z) and
   the densities at (x, z):

- ``test.MI_ksg``: KSG mutual information of the first ``ksg_points`` test pairs (x, z) (k = 5,
  max-norm, ``genlab.metrics.ksg``) and ``test.MI_ksg_l2_err`` = N^-1/2 + N^-1/(dx+dz);
- ``test.H_q_x``: -mean log q(x), the one-sample importance estimate (a one-sample -ELBO, the
  figures' "NLL");
- ``test.x_recon_err``: mean over test points of ||x - x~||_2 with x~ *sampled* (the figures'
  "Recon. RMSE", which is not a root-mean-square);
- ``test.clf_acc_KNN{1,3,5,10}``: scikit-learn's KNN classifier fitted on (train z, label), scored
  on (test z, label) (``genlab.metrics.knn``); the figures plot KNN5;
- ``test.MI`` = mean[log q(z|x) - log p(z)], ``test.H_p_z``, ``test.H_enc`` = -mean B,
  ``test.H_dec`` = -mean A, ``test.H_Msamp`` = -mean log(1/2 e^A + 1/2 e^B), ``test.H_mean``,
  ``test.Dkl_q_p``, ``test.Dkl_p_q`` (z ~ p(z)) and their mean ``test.Dkl``, ``test.H_P_z`` under
  the anchor N(0, I) and, for the mixtures, ``test.H_P_x`` under the true density.

For 2-D data ``toy_view.pt`` is recorded: the 6.2 figure's material (``view_points`` points of the
data drawn, the first 200 kept with their sampled reconstructions and the encoder's means and
stds; the figure's own MI (KSG on the first 3,000) and reconstruction error over all of them), which ``genlab.analysis.mim`` draws. With ``training.loss.frames`` (E1) ``toy_frames.pt`` holds the
200-point view of every in-training evaluation and the iterations they were made at (the animation's
frames). Everything is drawn with
generators seeded by ``seed``, so the evaluation of a checkpoint is reproducible.
"""

from __future__ import annotations

import io
import math

import torch

from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.metrics.knn import knn_accuracies
from genlab.metrics.ksg import ksg_l2_error, ksg_mi
from genlab.objectives.mim import encoding_pass, joints, log_mixture
from genlab.models.gaussian_mlp import normal_log_prob

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
SHOWN = 200  # points of the view drawn (docs/mim.md §6.2: the first 200 of 10,000)


def _standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return (-0.5 * z.square() - _HALF_LOG_2PI).sum(-1)


def _pass(model, batches, max_examples: int | None, q_x: str) -> dict[str, torch.Tensor]:
    """One pass encoded: every batch's terms (``genlab.objectives.mim.encoding_pass``) concatenated."""
    parts: list[dict[str, torch.Tensor]] = []
    seen = 0
    for batch in batches:
        t = encoding_pass(model, batch["x"], q_x)
        t["y"] = batch["y"]
        x_mean, x_std = t["p_mean"], t["p_std"]
        t["x_recon"] = x_mean + x_std * torch.randn_like(x_mean)
        z_p = model.sample_anchor(len(batch["x"]), batch["x"]) * (1.0 + model.std_floor)  # z ~ p(z)
        t["dkl_p_q"] = model.prior_log_prob(z_p) - normal_log_prob(z_p, t["q_mean"], t["q_std"])
        parts.append(t)
        seen += len(batch["x"])
        if max_examples is not None and seen >= max_examples:
            break
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


@register_evaluation("mim_stats")
def mim_stats(ctx: EvalContext, ksg_k: int = 5, ksg_points: int = 10_000, knn_ks: tuple = (1, 3, 5, 10),
              view_points: int = 10_000, seed: int = 0, max_examples: int | None = None):  # fmt: skip
    model = ctx.model
    q_x = getattr(ctx.objective, "q_x", "marginal")
    model.eval()
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        train = _pass(model, ctx.sets["train"], max_examples, q_x)
        test = _pass(model, ctx.sets["test"], max_examples, q_x)
    a, b = joints(test)
    n = min(len(test["x"]), ksg_points)
    x_np, z_np = test["x"][:n].cpu().numpy(), test["z"][:n].cpu().numpy()
    metrics = {
        "MI_ksg": ksg_mi(x_np, z_np, k=ksg_k),
        "MI_ksg_l2_err": ksg_l2_error(n, x_np.shape[1], z_np.shape[1]),
        "H_q_x": -test["log_qx"].mean(),
        "x_recon_err": (test["x"] - test["x_recon"]).norm(dim=-1).mean(),
        "MI": (test["log_qz_x"] - test["log_pz"]).mean(),
        "H_p_z": -test["log_pz"].mean(),
        "H_enc": -b.mean(),
        "H_dec": -a.mean(),
        "H_Msamp": -log_mixture(a, b).mean(),
        "Dkl_q_p": (test["log_qz_x"] - test["log_pz"]).mean(),
        "Dkl_p_q": test["dkl_p_q"].mean(),
        "H_P_z": -_standard_normal_log_prob(test["z"]).mean(),
    }
    metrics["H_mean"] = 0.5 * (metrics["H_enc"] + metrics["H_dec"])
    metrics["Dkl"] = 0.5 * (metrics["Dkl_q_p"] + metrics["Dkl_p_q"])
    density = getattr(ctx.data.test, "log_prob", None)
    if density is not None:
        metrics["H_P_x"] = -density(test["x"]).mean()
    metrics.update(knn_accuracies(train["z"], train["y"], test["z"], test["y"], ks=tuple(knn_ks)))
    out = {f"test.{k}": float(v) for k, v in metrics.items()}
    info = {"mim_stats": {"train_examples": len(train["x"]), "test_examples": len(test["x"]), "ksg_points": n}}
    if test["x"].shape[1] == 2 and hasattr(ctx.data.test, "draw"):
        ctx.artifacts["toy_view.pt"] = _toy_view(model, ctx, q_x, view_points, seed)
    frames = getattr(ctx.objective, "views", None)
    if frames:
        buffer = io.BytesIO()
        torch.save({"frames": frames, "evaluations": [i for i, _ in ctx.history]}, buffer)
        ctx.artifacts["toy_frames.pt"] = buffer.getvalue()
    return out, info


def _toy_view(model, ctx: EvalContext, q_x: str, n: int, seed: int) -> bytes:
    """docs/mim.md §6.2: ``n`` fresh data points, reconstructions and posteriors, and the figure's
    MI (KSG on the first 3,000) and reconstruction error, as a torch file."""
    from genlab.data.transforms import batch_generator

    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed + 1)
        batch = ctx.data.test.draw(0, 0, n, batch_generator(seed, 2**31, ctx.data.test.device))
        t = encoding_pass(model, batch["x"], q_x)
        x_recon = t["p_mean"] + t["p_std"] * torch.randn_like(t["p_mean"])
        z_prior = model.sample_anchor(n, batch["x"])
        x_prior = model.decode(z_prior)[0]
    k, s = min(3000, n), SHOWN
    view = {
        "x": batch["x"][:s].cpu(), "y": batch["y"][:s].cpu(), "x_recon": x_recon[:s].cpu(), "z": t["z"][:s].cpu(),
        "q_mean": t["q_mean"][:s].cpu(), "q_std": t["q_std"][:s].cpu(),
        "z_prior": z_prior[:s].cpu(), "x_prior_mean": x_prior[:s].cpu(),
        "MI_ksg": ksg_mi(batch["x"][:k].cpu().numpy(), t["z"][:k].cpu().numpy()),
        "x_recon_err": float((batch["x"] - x_recon).norm(dim=-1).mean()),
        "points": n,
    }  # fmt: skip
    buffer = io.BytesIO()
    torch.save(view, buffer)
    return buffer.getvalue()


__all__ = ["mim_stats"]
