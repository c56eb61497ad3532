"""Clustering score and 2-D embeddings of codes: MIM's k-means NMI and its t-SNE latent figures.

Livne, Swersky & Fleet 2019, "MIM: Mutual Information Machine", the image experiments
(docs/mim.md §6.3):

* the clustering score: k-means (MacQueen 1967; Lloyd's algorithm with k-means++ seeding, Arthur &
  Vassilvitskii 2007) with as many clusters as there are classes is fit on the codes z, and the
  predicted clusters are compared with the labels by their normalized mutual information
  NMI = I(labels; clusters) / max(H(labels), H(clusters)) (Strehl & Ghosh 2002; the "max"
  normalisation), 1 for a clustering that matches the classes up to relabelling, about 0 for one
  independent of them. The original ran scikit-learn 0.21, whose ``KMeans`` default was
  ``n_init=10`` restarts (newer scikit-learn defaults to ``"auto"``, one restart with k-means++),
  so ``n_init=10`` is passed explicitly, with ``random_state=177``.
* the "Latent Embeddings" figures: a 2-D t-SNE (van der Maaten & Hinton 2008) of the codes,
  scikit-learn's ``TSNE(n_components=2, init="pca", learning_rate="auto")``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import normalized_mutual_info_score

__all__ = ["kmeans_nmi", "tsne_embedding"]


def _as_codes(z, name: str = "z") -> np.ndarray:
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"{name} must be (N, d) codes, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"{name} has non-finite values (nan or inf)")
    return z


def _as_labels(labels) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {labels.shape}")
    return labels


def kmeans_nmi(z, labels, random_state: int = 177, n_clusters: int | None = None) -> float:
    """NMI between the labels and a k-means clustering of the codes (MIM's clustering score).

    Args:
        z: (N, d) codes, numpy or torch (a 1-D input is one dimension).
        labels: (N,) class labels, any values ``np.unique`` can sort.
        random_state: the k-means seed (MIM uses 177).
        n_clusters: the number of clusters; ``None`` uses the number of distinct labels.

    Returns:
        ``normalized_mutual_info_score(labels, clusters, average_method="max")``, in [0, 1].

    Raises:
        ValueError: on mismatched lengths, bad shapes, non-finite codes, n_clusters that is not a
            positive integer, or fewer points than clusters.
    """
    z = _as_codes(z)
    labels = _as_labels(labels)
    if len(z) != len(labels):
        raise ValueError(f"z and labels must have the same length, got {len(z)} and {len(labels)}")
    if n_clusters is None:
        n_clusters = len(np.unique(labels))
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if len(z) < n_clusters:
        raise ValueError(f"k-means with {n_clusters} clusters needs at least {n_clusters} points, got {len(z)}")
    pred = KMeans(n_clusters=int(n_clusters), random_state=random_state, n_init=10).fit_predict(z)
    return float(normalized_mutual_info_score(labels, pred, average_method="max"))


def tsne_embedding(z, seed: int = 0, max_points: int | None = None) -> np.ndarray:
    """A 2-D t-SNE embedding of the codes, for the "Latent Embeddings" figures.

    Args:
        z: (N, d) codes, numpy or torch.
        seed: ``TSNE``'s random_state; the same seed and codes give the same embedding.
        max_points: embed only the first ``max_points`` codes; ``None`` embeds all.

    Returns:
        (N, 2) float array (N after ``max_points``).

    Raises:
        ValueError: on bad shapes, non-finite codes, max_points that is not a positive integer, or
            no more points than t-SNE's perplexity (30).
    """
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1
    ):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}")
    z = _as_codes(z)
    if max_points is not None:
        z = z[:max_points]
    tsne = TSNE(n_components=2, random_state=seed, init="pca", learning_rate="auto")
    if len(z) <= tsne.perplexity:
        raise ValueError(f"t-SNE needs more points than its perplexity ({tsne.perplexity}), got {len(z)}")
    return np.asarray(tsne.fit_transform(z))
