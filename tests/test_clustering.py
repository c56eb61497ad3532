"""k-means NMI and t-SNE of codes (genlab.metrics.clustering), MIM's clustering score (docs/mim.md §6.3).

Known answers: well-separated blobs give NMI 1, relabelling the classes changes nothing, labels
independent of the codes give about 0; the cluster count follows the labels; the input checks;
and a t-SNE embedding's shape, finiteness and determinism.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from genlab.metrics.clustering import kmeans_nmi, tsne_embedding


def blobs(n_per: int, k: int, d: int = 3, spread: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.standard_normal((k, d))
    labels = np.repeat(np.arange(k), n_per)
    z = centres[labels] + spread * rng.standard_normal((n_per * k, d))
    order = rng.permutation(len(z))
    return z[order], labels[order]


def test_separated_blobs_give_one():
    z, y = blobs(100, 5)
    assert kmeans_nmi(z, y) == pytest.approx(1.0, abs=1e-9)
    assert kmeans_nmi(torch.from_numpy(z).float(), torch.from_numpy(y)) == pytest.approx(1.0, abs=1e-9)


def test_relabelling_changes_nothing():
    z, y = blobs(60, 4, spread=3.0, seed=1)  # overlapping blobs: NMI strictly between 0 and 1
    base = kmeans_nmi(z, y)
    assert 0.2 < base < 0.999
    relabel = np.array([3, 0, 2, 1])
    assert kmeans_nmi(z, relabel[y]) == pytest.approx(base, abs=1e-12)
    names = np.array(["a", "b", "c", "d"])
    assert kmeans_nmi(z, names[y]) == pytest.approx(base, abs=1e-12)


def test_independent_labels_give_about_zero():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((2000, 4))
    y = rng.integers(0, 5, size=2000)
    assert kmeans_nmi(z, y) < 0.05


def test_n_clusters_follows_the_labels():
    z, y = blobs(50, 3, seed=3)
    assert kmeans_nmi(z, y) == pytest.approx(1.0, abs=1e-9)
    assert kmeans_nmi(z, y, n_clusters=3) == pytest.approx(1.0, abs=1e-9)
    # 6 clusters on 3 balanced classes refine them: I = H(y), so the max-normalised NMI is
    # H(y) / H(clusters), at least log 3 / log 6 and below 1
    six = kmeans_nmi(z, y, n_clusters=6)
    assert np.log(3) / np.log(6) - 1e-9 <= six < 0.99
    # the labels are all sklearn's k-means sees of them: the same clustering as the explicit default
    from sklearn.cluster import KMeans

    pred = KMeans(n_clusters=3, random_state=177, n_init=10).fit_predict(z)
    assert kmeans_nmi(z, y) == normalized_mutual_info_score(y, pred, average_method="max")


def test_errors():
    z, y = blobs(10, 3)
    with pytest.raises(ValueError, match="same length"):
        kmeans_nmi(z, y[:-1])
    with pytest.raises(ValueError, match="at least 5 points"):
        kmeans_nmi(z[:4], np.arange(4), n_clusters=5)
    with pytest.raises(ValueError, match="at least 3 points"):
        kmeans_nmi(z[:2], np.array([0, 1]), n_clusters=3)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_nmi(z, y, n_clusters=0)
    with pytest.raises(ValueError, match="shape"):
        kmeans_nmi(z[:, :, None], y)
    with pytest.raises(ValueError, match="labels"):
        kmeans_nmi(z, y[:, None])
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        kmeans_nmi(bad, y)


def test_tsne_embedding():
    z, _ = blobs(50, 5, d=8, seed=4)  # 250 points, the first 200 embedded
    a = tsne_embedding(z[:200], seed=0)
    assert a.shape == (200, 2) and a.dtype.kind == "f" and np.isfinite(a).all()
    b = tsne_embedding(torch.from_numpy(z), seed=0, max_points=200)  # same seed, same points: same embedding
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="perplexity"):
        tsne_embedding(z[:30])
    with pytest.raises(ValueError, match="max_points"):
        tsne_embedding(z, max_points=0)
