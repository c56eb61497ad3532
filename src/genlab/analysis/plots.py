"""Figures drawn from reloaded runs: reconstructions, latent traversals, Hinton diagrams,
NLL vs disentanglement. Each function draws on matplotlib and returns the Figure; nothing trains."""

from __future__ import annotations

from pathlib import Path

import textwrap
from typing import Callable, Iterable, Mapping, Sequence

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


def hinton(R: np.ndarray, factor_names: Sequence[str], ax=None, title: str | None = None, scale: float | None = None):
    """Hinton diagram of a DCI importance matrix R (latents x factors): square area ~ |R_ik| / ``scale``
    (default: the largest |R_ik|, whose square fills 0.9 of its cell)."""
    R = np.abs(np.asarray(R, dtype=float))
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * R.shape[1] + 1.5, 0.35 * R.shape[0] + 1))
    ax.set_facecolor("0.92")
    scale = scale or R.max() or 1.0
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


def hinton_panels(panels: Mapping[str, tuple[np.ndarray, Sequence[str]]], fig=None):
    """One Hinton diagram per ``{title: (R, factor names)}``, side by side, all on one scale (the
    largest |R| over every panel, so that square areas compare across panels), which the figure's
    title states."""
    scale = max((float(np.abs(np.asarray(R, dtype=float)).max()) for R, _ in panels.values()), default=0.0) or 1.0
    fig = _canvas(fig, (3.2 * len(panels), 4.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, (R, names)) in zip(axes, panels.items()):
        hinton(R, names, ax=ax, title=title, scale=scale)
    fig.suptitle(f"DCI importance R (latents x factors): square area ∝ |R|, one scale for all panels "
                 f"(largest |R| = {scale:.3g} fills its cell)", fontsize=9)
    return fig


NOT_PAPER_SETTING = "not the paper's setting"


def note_not_paper_setting(fig, marks: Iterable[str]):
    """A footnote under ``fig`` listing what differs from the paper's setting for the runs drawn
    faded (each distinct ``differs_from_paper`` mark once); None when every mark is empty."""
    distinct = sorted({str(m) for m in marks if isinstance(m, str) and m})
    if not distinct:
        return None
    text = f"* {NOT_PAPER_SETTING} (drawn faded): " + " | ".join(distinct)
    width = max(40, int(fig.get_figwidth() * 15))
    return fig.text(0.01, -0.01, textwrap.fill(text, width), ha="left", va="top", fontsize=7)


def nll_vs_disentanglement(table, label: str = "model", ax=None, title: str | None = None, log: bool = False):
    """The paper's scatter: for every model, its train and test NLL at its disentanglement, joined
    by a line (columns ``disentanglement``, ``train_nll``, ``test_nll`` and ``label``). Rows with a
    non-empty ``differs_from_paper`` (runs outside the paper's setting) are drawn faded with a dotted
    line and labelled with a ``*`` (``note_not_paper_setting`` says what differs)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    if log:
        ax.set_yscale("log")
    for _, row in table.iterrows():
        d = row["disentanglement"]
        mark = row.get("differs_from_paper")
        outside = isinstance(mark, str) and mark != ""
        alpha, style, name = (0.4, ":", f"{row[label]} *") if outside else (1.0, "-", row[label])
        line = ax.plot([d, d], [row["train_nll"], row["test_nll"]], style, alpha=0.5 * alpha)[0]
        ax.plot(d, row["train_nll"], "o", color=line.get_color(), alpha=alpha, label=name)
        ax.plot(d, row["test_nll"], "s", color=line.get_color(), mfc="none", alpha=alpha)
    ax.set_xlabel("disentanglement (DCI)")
    ax.set_ylabel("reconstruction NLL (nats)")
    ax.set_xlim(-0.05, 1.05)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, title="o train   □ test", title_fontsize=7)
    return ax.figure


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` (its folder made if needed; 110 dpi, tight) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
