"""Figures drawn from reloaded runs: reconstructions, latent traversals, Hinton diagrams,
NLL vs disentanglement. Each function draws on matplotlib and returns the Figure; nothing trains."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _show(ax, image: torch.Tensor | np.ndarray) -> None:
    img = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _canvas(fig, size):
    """A new figure, or the given Figure/SubFigure to draw into."""
    return plt.figure(figsize=size, layout="constrained") if fig is None else fig


@torch.no_grad()
def reconstructions(renderers: Mapping[str, Callable[[dict], torch.Tensor]], batches: Mapping[str, dict], fig=None):
    """Rows: the originals, then each model's rendering of them (sigmoid of the logits that
    ``renderers[name](batch)`` returns: a VAE's posterior-mean reconstruction of ``batch["x"]``, a
    ground-truth decoder's image of ``batch["factors"]``); one block of columns per set of images
    (e.g. ``{"train": batch, "test": batch}``)."""
    n_cols = sum(len(b["x"]) for b in batches.values())
    rows = ["original", *renderers]
    fig = _canvas(fig, (1.1 * n_cols, 1.15 * len(rows)))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    col = 0
    for split, batch in batches.items():
        x = batch["x"]
        outs = {name: torch.sigmoid(render(batch)) for name, render in renderers.items()}
        for i in range(len(x)):
            _show(axes[0, col + i], x[i])
            for r, name in enumerate(renderers, start=1):
                _show(axes[r, col + i], outs[name][i])
        axes[0, col].set_title(split, loc="left", fontsize=9)
        col += len(x)
    for r, name in enumerate(rows):
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    return fig


@torch.no_grad()
def traversals(model: torch.nn.Module, x: torch.Tensor, dims: Sequence[int] | None = None, span: float = 2.5, steps: int = 9, fig=None):
    """Decode the posterior mean of one image with one latent at a time swept over [-span, span].
    Rows are the latents by decreasing KL to the prior (in the label), so inactive ones come last."""
    model.eval()
    mu, logvar = model.encode(x[None])
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()))[0]
    dims = kl.argsort(descending=True).tolist() if dims is None else list(dims)
    values = torch.linspace(-span, span, steps, device=mu.device)
    fig = _canvas(fig, (1.0 * steps, 1.05 * len(dims)))
    axes = fig.subplots(len(dims), steps, squeeze=False)
    for r, d in enumerate(dims):
        z = mu.repeat(steps, 1)
        z[:, d] = values
        decoded = torch.sigmoid(model.decode(z))
        for c in range(steps):
            _show(axes[r, c], decoded[c])
        axes[r, 0].set_ylabel(f"z{d}\nKL {kl[d]:.2f}", rotation=0, ha="right", va="center", fontsize=8)
    for c in range(steps):
        axes[-1, c].set_xlabel(f"{values[c]:+.1f}", fontsize=7)
    return fig


def hinton(R: np.ndarray, factor_names: Sequence[str], ax=None, title: str | None = None):
    """Hinton diagram of a DCI importance matrix R (latents x factors): square area ~ |R_ik|."""
    R = np.abs(np.asarray(R, dtype=float))
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * R.shape[1] + 1.5, 0.35 * R.shape[0] + 1))
    ax.set_facecolor("0.92")
    scale = R.max() or 1.0
    for (i, k), w in np.ndenumerate(R):
        side = np.sqrt(w / scale) * 0.9
        ax.add_patch(plt.Rectangle((k - side / 2, i - side / 2), side, side, color="0.15"))
    ax.set_xlim(-0.6, R.shape[1] - 0.4)
    ax.set_ylim(R.shape[0] - 0.4, -0.6)
    ax.set_xticks(range(R.shape[1]), factor_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(R.shape[0]), [f"z{i}" for i in range(R.shape[0])], fontsize=8)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def nll_vs_disentanglement(table, label: str = "model", ax=None, title: str | None = None, log: bool = False):
    """The paper's scatter: for every model, its train and test NLL at its disentanglement, joined
    by a line (columns ``disentanglement``, ``train_nll``, ``test_nll`` and ``label``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    if log:
        ax.set_yscale("log")
    for _, row in table.iterrows():
        d = row["disentanglement"]
        line = ax.plot([d, d], [row["train_nll"], row["test_nll"]], "-", alpha=0.5)[0]
        ax.plot(d, row["train_nll"], "o", color=line.get_color(), label=row[label])
        ax.plot(d, row["test_nll"], "s", color=line.get_color(), mfc="none")
    ax.set_xlabel("disentanglement (DCI)")
    ax.set_ylabel("reconstruction NLL (nats)")
    ax.set_xlim(-0.05, 1.05)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, title="o train   □ test", title_fontsize=7)
    return ax.figure
