"""KNN accuracy: how well a code's nearest neighbours predict a label, MIM's ``clf_acc_KNN{k}``.

Livne, Swersky & Fleet 2019, "MIM: Mutual Information Machine", the toy and PCA statistics
(docs/mim.md §6.1): for each k in (1, 3, 5, 10), scikit-learn's ``KNeighborsClassifier(n_neighbors=k)``
with its defaults (uniform weights, Euclidean distance) is fit on (train z, train label) and its
``score`` is the accuracy on (test z, test label). KNN5 is the one the paper plots; chance is the
share of the most frequent test class (0.2 on toy4's 5 equally likely components).

One classifier is fit per k, so every answer, tie-breaking included (a vote tie goes to the smallest
label, an equidistant neighbour to the order scikit-learn's search returns), is scikit-learn's own.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

__all__ = ["knn_accuracies"]


def _as_array(a, name: str, codes: bool) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if codes and a.ndim == 1:
        a = a[:, None]
    want = 2 if codes else 1
    if a.ndim != want:
        shape = "(N, d) codes" if codes else "(N,) labels"
        raise ValueError(f"{name} must be {shape}, got shape {a.shape}")
    return a


def knn_accuracies(train_z, train_y, test_z, test_y, ks: Iterable[int] = (1, 3, 5, 10)) -> dict[str, float]:
    """Test accuracy of k-nearest-neighbour classifiers fit on the training codes, one per k.

    Args:
        train_z: (N_train, d) codes (numpy or torch; a 1-D input is one dimension).
        train_y: (N_train,) labels.
        test_z: (N_test, d) codes.
        test_y: (N_test,) labels.
        ks: the neighbour counts.

    Returns:
        ``{"clf_acc_KNN1": ..., "clf_acc_KNN3": ..., ...}``, accuracies in [0, 1], in the order of ``ks``.

    Raises:
        ValueError: on mismatched lengths, bad shapes, or a k that is not a positive integer or
            exceeds the number of training points.
    """
    train_z = _as_array(train_z, "train_z", codes=True)
    test_z = _as_array(test_z, "test_z", codes=True)
    train_y = _as_array(train_y, "train_y", codes=False)
    test_y = _as_array(test_y, "test_y", codes=False)
    if len(train_z) != len(train_y) or len(test_z) != len(test_y):
        raise ValueError(
            f"codes and labels must have the same length: train {len(train_z)} vs {len(train_y)}, "
            f"test {len(test_z)} vs {len(test_y)}"
        )
    if train_z.shape[1] != test_z.shape[1]:
        raise ValueError(f"train and test codes differ in dimension: {train_z.shape[1]} vs {test_z.shape[1]}")
    ks = list(ks)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(train_z):
            raise ValueError(f"each k must be an integer in [1, {len(train_z)}] (the training points), got {k!r}")
    out: dict[str, float] = {}
    for k in ks:
        clf = KNeighborsClassifier(n_neighbors=int(k)).fit(train_z, train_y)
        out[f"clf_acc_KNN{k}"] = float(clf.score(test_z, test_y))
    return out
