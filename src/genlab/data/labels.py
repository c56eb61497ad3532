"""Label selection for ``labelled_images`` datasets: the "kept" and "held-out" classes of the ICE-BeeM
image experiments (Khemakhem et al. 2020; docs/icebeem.md §1, §5c).

ICE-BeeM trains its feature extractors on the kept classes ``0 .. n_labels-1`` (``n_labels`` 8 for
MNIST, FashionMNIST and CIFAR-10, 85 for CIFAR-100) and transfers them to the held-out classes
``n_labels .. C-1``, re-indexed from 0, each time on the first N examples of the filtered training
part. Three keys at the top level of the ``dataset`` config say which (``genlab.data.CONFIG_KEYS``):

- ``labels``: ``"all"`` (default: every class, labels unchanged), ``"kept"`` (classes
  ``0 .. n_labels-1``, labels unchanged) or ``"held_out"`` (classes ``n_labels .. C-1``, label
  ``y - n_labels``);
- ``n_labels``: the number of kept classes, an integer ``1 <= n_labels < C`` (required unless
  ``labels="all"``);
- ``first_n``: None (all) or a positive integer: keep the first ``first_n`` examples, in dataset
  order, of the filtered training part only (the test part is filtered by label, not cut). Filtering
  comes first: these are the first N points overall, not N per class (docs/icebeem.md §5c, §10.9).

The ``index`` of each batch keeps the original row numbers; ``model_inputs["n_classes"]`` becomes the
number of selected classes and ``info["labels"]`` records the selection.
"""

from __future__ import annotations

import numbers
from dataclasses import replace

import torch

from genlab.data.images import LabelledImages
from genlab.data.sources import BatchSource, DataParts, subset
from genlab.errors import ConfigError

LABELS = ("all", "kept", "held_out")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_selection(labels, n_labels, first_n, n_classes: int | None) -> None:
    """Refuse a selection that cannot work, before any data is read (``ConfigError`` naming the problem).
    ``n_classes`` is the dataset's number of classes (None: it has no class labels)."""
    if labels not in LABELS:
        raise ConfigError(f"unknown dataset.labels={labels!r}; valid: {', '.join(LABELS)} (all classes, the kept "
                          "classes 0..n_labels-1, or the held-out classes n_labels.., re-indexed from 0)")  # fmt: skip
    if labels != "all" and n_classes is None:
        raise ConfigError(f"dataset.labels={labels} needs a dataset with class labels (model input n_classes); "
                          "this one has none: use dataset.labels=all")  # fmt: skip
    if labels != "all" and n_labels is None:
        raise ConfigError(f"dataset.labels={labels} needs dataset.n_labels, the number of kept classes "
                          f"0..n_labels-1 (an integer from 1 to {n_classes - 1}; ICE-BeeM: 8, or 85 for CIFAR-100)")  # fmt: skip
    if n_labels is not None:
        if not _is_int(n_labels):
            raise ConfigError(f"dataset.n_labels={n_labels!r} must be an integer (the number of kept classes)")
        if n_classes is not None and not 1 <= n_labels < n_classes:
            raise ConfigError(f"dataset.n_labels={n_labels} must be from 1 to {n_classes - 1}: the dataset has "
                              f"{n_classes} classes, and n_labels >= {n_classes} leaves no held-out classes")  # fmt: skip
    if first_n is not None and (not _is_int(first_n) or first_n < 1):
        raise ConfigError(f"dataset.first_n={first_n!r} must be None (all training examples) or a positive integer")


def selected_classes(labels: str, n_labels: int | None, n_classes: int) -> list[int]:
    """The original class ids a selection keeps, in the order of their new labels."""
    if labels == "kept":
        return list(range(n_labels))
    if labels == "held_out":
        return list(range(n_labels, n_classes))
    return list(range(n_classes))


def _ids(classes: list[int]) -> str:
    if len(classes) <= 4:
        return ", ".join(str(c) for c in classes)
    return f"{classes[0]}..{classes[-1]}"


def describe_selection(labels: str, n_labels: int | None, first_n: int | None, n_classes: int | None) -> str:
    """One line, e.g. ``labels: held_out (classes 8, 9 -> 0, 1), first 500 training examples``."""
    if labels == "all" or n_classes is None:
        line = "labels: all" + (f" ({n_classes} classes)" if n_classes is not None else "")
    else:
        classes = selected_classes(labels, n_labels, n_classes)
        line = f"labels: {labels} (classes {_ids(classes)} -> {_ids(list(range(len(classes))))})"
    return line + (f", first {first_n:,} training examples" if first_n is not None else ", all training examples")


def _labels_of(source: BatchSource) -> torch.Tensor:
    labels = getattr(source, "labels", None)
    return labels if isinstance(labels, torch.Tensor) else source.batch(slice(None))["y"]


class Relabelled:
    """A batch source whose ``y`` is the wrapped source's ``y`` minus ``offset`` (for sources that
    cannot store new labels themselves)."""

    def __init__(self, source: BatchSource, offset: int):
        self.source, self.offset = source, offset

    @property
    def device(self) -> torch.device:
        return self.source.device

    def __len__(self) -> int:
        return len(self.source)

    def batch(self, index):
        batch = dict(self.source.batch(index))
        batch["y"] = batch["y"] - self.offset
        return batch

    def subset(self, index) -> "Relabelled":
        return Relabelled(subset(self.source, index), self.offset)


def _relabelled(source: BatchSource, offset: int) -> BatchSource:
    if offset == 0:
        return source
    if isinstance(source, LabelledImages):
        return LabelledImages(source.images, source.labels - offset, source.rows, source.levels, source.name)
    return Relabelled(source, offset)


def select_labels(parts: DataParts, labels: str = "all", n_labels: int | None = None,
                  first_n: int | None = None) -> DataParts:  # fmt: skip
    """``parts`` with only the rows of the selected classes (every part), labels re-indexed to
    ``0 .. k-1``, and the training part cut to its first ``first_n`` rows (``ConfigError`` when fewer
    are left). See the module docstring."""
    n_classes = parts.model_inputs.get("n_classes")
    check_selection(labels, n_labels, first_n, n_classes)
    classes = selected_classes(labels, n_labels, n_classes) if n_classes is not None else None
    offset = n_labels if labels == "held_out" else 0
    new = {}
    for part in ("train", "val", "test"):
        source = getattr(parts, part)
        if source is None:
            new[part] = None
            continue
        if labels != "all":
            y = _labels_of(source)
            keep = (y >= classes[0]) & (y <= classes[-1])
            if part == "train" and not keep.any():
                raise ConfigError(f"dataset.labels={labels} (classes {_ids(classes)}) leaves none of the {len(y):,} "
                                  f"training examples of {parts.name}; the builder's n (and dataset.tiny) keep the "
                                  "first examples before the selection: use dataset.first_n instead")  # fmt: skip
            source = _relabelled(subset(source, torch.nonzero(keep).flatten()), offset)
        if part == "train" and first_n is not None:
            if first_n > len(source):
                what = f"{labels} classes ({_ids(classes)})" if labels != "all" else "all classes"
                raise ConfigError(f"dataset.first_n={first_n:,} exceeds the {len(source):,} training examples of the "
                                  f"{what} of {parts.name}: use a first_n of at most {len(source):,}")  # fmt: skip
            source = subset(source, torch.arange(first_n, device=source.device))
        new[part] = source
    sizes = {part: len(source) for part, source in new.items() if source is not None}
    info = {**parts.info, "labels": {"labels": labels, "n_labels": n_labels, "first_n": first_n, "classes": classes,
                                     "sizes": sizes}}  # fmt: skip
    model_inputs = dict(parts.model_inputs)
    if classes is not None:
        model_inputs["n_classes"] = len(classes)
    return replace(parts, **new, info=info, model_inputs=model_inputs)


__all__ = ["LABELS", "Relabelled", "check_selection", "describe_selection", "select_labels", "selected_classes"]
