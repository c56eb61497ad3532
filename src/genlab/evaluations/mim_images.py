"""The end-of-run statistics of MIM's image experiments, on the best checkpoint (Livne, Swersky & Fleet
2019; docs/mim.md §6.3), under the original's names where it has them:

- ``test.nll``: the importance-sampled negative log-likelihood, -mean log p(x) in nats, with
  ``is_samples`` samples per test image (5,000 in the original) drawn ``is_chunk`` at a time on the
  device (``genlab.metrics.importance_sampling``); every model is scored with the VAE's weights
  log p(x, z1, z2) - log q(z1, z2|x), MIM models included (as the original), on ``nll_examples`` test
  images (None: all); ``test.nll_std`` is the spread of -log p(x) over the images;
- ``test.elbo_loss``: the one-sample -ELBO, mean over the test images;
- ``test.MI_ksg``: KSG (k = 5) between the first ``ksg_points`` (3,000) binary test images (784-D)
  and their sampled codes z = [z1, z2] (80-D); the original's README warns it "cannot be reliably
  measured" here;
- ``test.NMI``: KMeans (as many clusters as test labels, ``kmeans_seed`` 177) on the test codes
  against the labels, NMI with the max normalisation (``genlab.metrics.clustering``);
- ``test.clf_acc_KNN{1,3,5,10}``: KNN classifiers fit on the codes of every training image
  (binarised once) and scored on the test codes (``genlab.metrics.knn``).

Artifacts (the original's image files and what the notebooks redraw): ``generations.png`` (64 prior
samples: the convHVAE's Bernoulli means, the PixelHVAE's final probability map), ``reconstructions.png``
(the first 64 test images above their reconstructions), ``pseudoinputs.png`` (VampPrior only),
``z_embed.png`` (a t-SNE of the first ``tsne_points`` test codes coloured by label) and
``mim_images.npz`` holding all of them as arrays (``samples``, ``real``, ``reconstructions``,
``pseudo_inputs``, ``tsne``, ``tsne_labels``). Codes are one posterior sample, drawn with generators
seeded by ``seed``, so evaluating a checkpoint twice gives the same numbers.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.evaluations.symvae_samples import png
from genlab.metrics.clustering import kmeans_nmi, tsne_embedding
from genlab.metrics.importance_sampling import importance_nll
from genlab.metrics.knn import knn_accuracies
from genlab.metrics.ksg import ksg_mi
from genlab.objectives.mim_images import vae_loss

SHOWN = 64  # images of each grid (the original's 64)


def encoded(model, batches, max_examples: int | None) -> dict[str, torch.Tensor]:
    """One pass: x, labels, sampled codes [z1, z2] and the one-sample -ELBO of every example."""
    parts, seen = [], 0
    for batch in batches:
        t = model.terms(batch["x"])
        parts.append({"x": batch["x"], "y": batch["y"], "z": torch.cat([t["z1"], t["z2"]], dim=1), "elbo_loss": vae_loss(t, 1.0)})
        seen += len(batch["x"])
        if max_examples is not None and seen >= max_examples:
            break
    out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return {k: v[:max_examples] for k, v in out.items()} if max_examples is not None else out


def scatter_png(points: np.ndarray, labels: np.ndarray, title: str) -> bytes:
    """A 2-D embedding coloured by label, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10" if labels.max() < 10 else "nipy_spectral", s=3)
    ax.set(title=title, xticks=[], yticks=[])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


@register_evaluation("mim_images")
def mim_images(ctx: EvalContext, is_samples: int = 5000, is_chunk: int = 100, nll_examples: int | None = None,
               ksg_k: int = 5, ksg_points: int = 3000, knn_ks: tuple = (1, 3, 5, 10), kmeans_seed: int = 177,
               tsne_points: int = 10_000, seed: int = 0, max_examples: int | None = None):  # fmt: skip
    model = ctx.model
    model.eval()
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        test = encoded(model, ctx.sets["test"], max_examples)
        train = encoded(model, ctx.sets["train"], max_examples)
        cap = min(x for x in (nll_examples, max_examples, len(test["x"])) if x is not None)
        nll = importance_nll(model.log_importance_weights, ctx.sets["test"], samples=is_samples, chunk=is_chunk, max_examples=cap)
        real = test["x"][:SHOWN]
        images = {"samples": model.generate(SHOWN), "real": real, "reconstructions": model.reconstruct(real)}
        if model.prior == "vampprior":
            images["pseudo_inputs"] = model.pseudo_inputs()[:SHOWN]
    n = min(len(test["x"]), ksg_points)
    x_np, z_np, y_np = test["x"].flatten(1).cpu().numpy(), test["z"].cpu().numpy(), test["y"].cpu().numpy()
    metrics = {
        "nll": nll["nll"], "nll_std": nll["nll_std"], "elbo_loss": float(test["elbo_loss"].mean()),
        "MI_ksg": ksg_mi(x_np[:n], z_np[:n], k=ksg_k), "NMI": kmeans_nmi(z_np, y_np, random_state=kmeans_seed),
    }  # fmt: skip
    metrics.update(knn_accuracies(train["z"], train["y"], test["z"], test["y"], ks=tuple(knn_ks)))
    m = min(len(z_np), tsne_points)
    tsne = tsne_embedding(z_np[:m], seed=seed)
    arrays = {k: v.float().cpu().numpy() for k, v in images.items()}
    arrays.update(tsne=tsne, tsne_labels=y_np[:m])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    ctx.artifacts["mim_images.npz"] = buffer.getvalue()
    ctx.artifacts["generations.png"] = png(images["samples"], 8)
    ctx.artifacts["reconstructions.png"] = png(torch.cat([real, images["reconstructions"]]), 8)
    if "pseudo_inputs" in images:
        ctx.artifacts["pseudoinputs.png"] = png(images["pseudo_inputs"], 8)
    ctx.artifacts["z_embed.png"] = scatter_png(tsne, y_np[:m], "t-SNE of the test codes")
    info = {"mim_images": {"train_examples": len(train["x"]), "test_examples": len(test["x"]), "nll_examples": nll["examples"],
                           "is_samples": is_samples, "ksg_points": n, "tsne_points": m}}  # fmt: skip
    return {f"test.{k}": float(v) for k, v in metrics.items()}, info


__all__ = ["mim_images"]
