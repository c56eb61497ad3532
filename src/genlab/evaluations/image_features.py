"""End-of-run evaluations of ICE-BeeM's image feature extractors (Khemakhem et al., NeurIPS 2020,
sections 5.2-5.3; docs/icebeem.md §5d, §7): the features f(x) of the test split, recorded for the
representation-identifiability pairs, and semi-supervised classification with a linear SVM on them.

``features_mode``: ``"eval"`` (the default: Dropout off, BatchNorm on its running statistics, so a
feature is a function of its image alone) or ``"train"`` (the original, which never switched to eval
mode, docs/icebeem.md §10.7: Dropout on and BatchNorm on the statistics of each batch of
``features_batch_size`` images, the batches in a seeded shuffled order for the semi-supervised
repetitions, as the original's shuffling loader, and in order for the test features).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from genlab.errors import ConfigError
from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.metrics.linear_probe import STANDARDISE, svm_accuracy

FEATURE_MODES = ("eval", "train")
SVM_SPLITS = ("per_repetition", "fixed")


@torch.no_grad()
def features_of(model, source, mode: str = "eval", batch_size: int = 63, shuffle_seed: int | None = None,
                max_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(features (N, m) float32, labels (N,) int64)`` of the images of ``source`` in its order,
    computed in ``mode`` on batches of ``batch_size`` (in a shuffled order when ``shuffle_seed`` is given;
    the features are returned in the source's order all the same)."""
    if mode not in FEATURE_MODES:
        raise ConfigError(f"unknown features_mode {mode!r}; valid: {', '.join(FEATURE_MODES)}")
    n = len(source) if max_examples is None else min(len(source), int(max_examples))
    order = torch.arange(n)
    if shuffle_seed is not None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(int(shuffle_seed)))
    was_training = model.training
    model.train(mode == "train")
    try:
        labels = np.empty(n, np.int64)
        out = None
        for start in range(0, n, int(batch_size)):
            rows = order[start:start + int(batch_size)]
            batch = source.batch(rows.to(source.device))
            f = model.features(batch["x"]).float().cpu()
            if out is None:
                out = torch.empty(n, f.shape[1])
            out[rows] = f
            labels[rows.numpy()] = batch["y"].cpu().numpy()
    finally:
        model.train(was_training)
    return out.numpy(), labels


def _check(features_mode: str, features_batch_size: int) -> None:
    if features_mode not in FEATURE_MODES:
        raise ConfigError(f"unknown evaluation.features_mode {features_mode!r}; valid: {', '.join(FEATURE_MODES)}")
    if not (isinstance(features_batch_size, int) and features_batch_size >= 2):
        raise ConfigError(f"evaluation.features_batch_size must be an integer >= 2, got {features_batch_size!r}")


@register_evaluation("test_features")
def test_features(ctx: EvalContext, features_mode: str = "eval", features_batch_size: int = 63,
                  max_examples: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:  # fmt: skip
    """The features f(x) of every test image, in order (the original's 10,000), as the artifact
    ``features.npz`` (``features`` (N, m) float32, ``labels`` (N,)): what the MCC pairs compare."""
    _check(features_mode, features_batch_size)
    source = ctx.data.test
    if source is None or not len(source):
        raise ConfigError(f"the test features need the dataset's test part; {ctx.data.name} was loaded without one "
                          "(dataset.options.split=train, and a source with test images)")  # fmt: skip
    features, labels = features_of(ctx.model, source, features_mode, features_batch_size, max_examples=max_examples)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=features, labels=labels)
    ctx.artifacts["features.npz"] = buffer.getvalue()
    return {"test.feature_std": float(features.std(0).mean())}, {
        "test_features": {"n": int(len(features)), "dim": int(features.shape[1]), "mode": features_mode}}  # fmt: skip


@register_evaluation("semisupervised_svm")
def semisupervised_svm(ctx: EvalContext, features_mode: str = "eval", features_batch_size: int = 63,
                       svm_test_size: float = 0.15, svm_repetitions: int = 5, svm_standardise: str = "train",
                       svm_split: str = "per_repetition", max_examples: int | None = None,
                       ) -> tuple[dict[str, float], dict[str, Any]]:  # fmt: skip
    """The accuracy (%) of a linear SVM on the standardised features of the loaded training part (the
    semi-supervised part loads the held-out classes of the test split there), mean and standard
    deviation (numpy's, ddof 0, as the original) over ``svm_repetitions``. ``svm_split``:
    ``"per_repetition"`` seeds repetition r's split and SVM with r; ``"fixed"`` seeds every one with 0
    (the original, where only train-mode features made repetitions differ)."""
    _check(features_mode, features_batch_size)
    if svm_standardise not in STANDARDISE:
        raise ConfigError(f"unknown evaluation.svm_standardise {svm_standardise!r}; valid: {', '.join(STANDARDISE)}")
    if svm_split not in SVM_SPLITS:
        raise ConfigError(f"unknown evaluation.svm_split {svm_split!r}; valid: {', '.join(SVM_SPLITS)}")
    if not (isinstance(svm_repetitions, int) and svm_repetitions >= 1):
        raise ConfigError(f"evaluation.svm_repetitions must be a positive integer, got {svm_repetitions!r}")
    accuracies = []
    features = labels = None
    for r in range(svm_repetitions):
        if features is None or features_mode == "train":  # eval-mode features are the same every time
            shuffle = r if features_mode == "train" else None
            features, labels = features_of(ctx.model, ctx.data.train, features_mode, features_batch_size, shuffle, max_examples)
        seed = r if svm_split == "per_repetition" else 0
        accuracies.append(svm_accuracy(features, labels, svm_test_size, seed=seed, standardise=svm_standardise))
    metrics = {"test.svm_accuracy": float(np.mean(accuracies)), "test.svm_accuracy_std": float(np.std(accuracies))}
    return metrics, {"svm_accuracies": accuracies, "svm_points": int(len(labels)),
                     "svm_classes": int(len(np.unique(labels)))}  # fmt: skip


__all__ = ["FEATURE_MODES", "SVM_SPLITS", "features_of", "semisupervised_svm", "test_features"]
