"""Semi-supervised classification with a linear probe on learned features (Khemakhem et al.,
"ICE-BeeM", NeurIPS 2020, section 5.3; docs/icebeem.md §5d, §7): a linear SVM (scikit-learn's
``LinearSVC``, C = 1, squared hinge, ``max_iter`` 2000) on standardised features, trained on one part
of the labelled points and scored on the rest (``train_test_split`` with ``test_size``).

``standardise``: ``"train"`` (the default) fits the z-scoring on the training part only; ``"all"`` is
the original's, which fitted it on every point before splitting (a mild leak of the test part into
the scaling, docs/icebeem.md §10.16).
"""

from __future__ import annotations

import warnings

import numpy as np

from genlab.errors import ConfigError

STANDARDISE = ("train", "all")


def svm_accuracy(features, labels, test_size: float, seed: int = 0, standardise: str = "train",
                 max_iter: int = 2000) -> float:  # fmt: skip
    """The test accuracy (%) of a linear SVM on ``features`` (N, m) with ``labels`` (N,), the split
    and the SVM seeded by ``seed``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if standardise not in STANDARDISE:
        raise ConfigError(f"unknown standardise {standardise!r}; valid: {', '.join(STANDARDISE)}")
    if not 0.0 < float(test_size) < 1.0:
        raise ConfigError(f"test_size must lie in (0, 1), got {test_size!r}")
    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features must be (N, m) with N labels, got {x.shape} and {y.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError("a classifier needs at least two classes")
    if standardise == "all":
        x = StandardScaler().fit_transform(x)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=float(test_size), random_state=int(seed))
    if standardise == "train":
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    with warnings.catch_warnings():  # an SVM that has not converged in max_iter is scored all the same, as in the original
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm = LinearSVC(random_state=int(seed), max_iter=int(max_iter)).fit(x_train, y_train)
    return float(100.0 * svm.score(x_test, y_test))


__all__ = ["STANDARDISE", "svm_accuracy"]
