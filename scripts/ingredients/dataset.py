"""The ``dataset`` ingredient of an experiment: which data, which split, which per-batch transforms,
captured for ``genlab.data.load_dataset``.

``dataset_ingredient(kinds, defaults, named)`` makes one for an experiment: ``kinds`` are the kinds
of dataset it takes (``genlab.data.KINDS``), ``defaults`` the paper's defaults (a config function of
``configs/<paper>.py``), ``named`` the paper's named configs. Every registered dataset of those kinds
is a named config too (``dataset.dsprites``, ``dataset.8gaussians``), as is ``dataset.tiny``.

``dataset.name`` is a key of ``genlab.data.DATASETS``; the builder's options are the kind's loader
keys at the top level (``dataset.source``, ``dataset.n_train`` ...) and the rest under
``dataset.options`` (shown with their defaults); ``dataset.condition`` / ``dataset.variant`` name a
generalisation split (factor datasets only); ``dataset.labels`` / ``dataset.n_labels`` /
``dataset.first_n`` (experiments that take ``labelled_images`` only) select the kept or held-out
classes and the first training examples (``genlab.data.labels``); ``dataset.transforms`` lists per-batch transforms of the
training batches (``genlab.data.transforms``), ``dataset.eval_transforms`` those of evaluation
batches. Unknown names and options fail at start-up, before any data is read.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sacred import Ingredient

from genlab.data import DATASETS, check_dataset, load_dataset, names_of_kinds, selection
from genlab.data.labels import describe_selection
from genlab.data.streams import stream_batch
from genlab.data.transforms import parse as parse_transforms
from genlab.registry import UnknownNameError


# commands that describe the config without reading the data: they work without the data files
DESCRIBING = ("print_config", "print_named_configs", "print_dependencies", "save_config", "model.show", "training.show")


def _common():
    options = {}  # the dataset builder's own options (filled with their defaults)
    transforms = []  # per-batch transforms of training batches, e.g. [["flip_pixels", {"p": 0.001}]] (genlab.data.transforms)
    eval_transforms = []  # per-batch transforms of evaluation batches (seeded the same at every evaluation)
    tiny = False  # the dataset's smoke-size version


def _label_selection():
    labels = "all"  # labelled_images: all classes, "kept" (0..n_labels-1) or "held_out" (n_labels.., re-indexed from 0)
    n_labels = None  # the number of kept classes (ICE-BeeM: 8, or 85 for CIFAR-100); needed unless labels="all"
    first_n = None  # keep the first first_n training examples after the label selection (None: all; test parts uncut)


def _filled(name, options):
    options = {**(DATASETS.get(name).options() if name in DATASETS else {}), **options}  # with their defaults


def dataset_ingredient(kinds: Sequence[str], defaults: Callable, named: Sequence[Callable] = ()) -> Ingredient:
    kinds = tuple(kinds)
    dataset = Ingredient("dataset")
    dataset.config(_common)
    if "labelled_images" in kinds:  # genlab.data.labels: the kept / held-out classes of ICE-BeeM (docs/icebeem.md §5c)
        dataset.config(_label_selection)
    dataset.config(defaults)
    dataset.config(_filled)

    @dataset.config_hook
    def check(config, command_name, logger):
        """Refuse unknown names and options at start-up; show the builder's options with their
        defaults and record the variant a condition defaults to."""
        cfg = config["dataset"]
        if cfg["name"] not in names_of_kinds(kinds):
            if cfg["name"] in DATASETS:
                check_dataset(cfg, kinds)  # explains the kind mismatch
            raise UnknownNameError(f"{' or '.join(kinds)} dataset", cfg["name"], names_of_kinds(kinds))
        variant = check_dataset(cfg, kinds, data=command_name not in DESCRIBING)
        parse_transforms(cfg["transforms"])
        parse_transforms(cfg["eval_transforms"])
        return {"variant": variant} if "variant" in cfg and variant != cfg["variant"] else {}

    for name in names_of_kinds(kinds):
        dataset.add_named_config(name, {"name": name})
    dataset.add_named_config("tiny", {"tiny": True})
    for fn in named:
        dataset.named_config(fn)

    @dataset.command(unobserved=True)
    def show(_config):
        """Print the dataset (kind, shape, factor grid, options) and the size of each part once loaded."""
        spec = DATASETS.get(_config["name"])
        print(f"{spec.name} ({spec.kind}): examples {list(spec.shape)}. {spec.description}")
        if spec.grid is not None:
            print(f"  {len(spec.grid):,} factor combinations")
            for factor, values in zip(spec.grid.names, spec.grid.values):
                shown = np.array2string(np.asarray(values), precision=3, threshold=8, max_line_width=90)
                print(f"  {factor:<18} {len(values):>3} values  {shown}")
        data = load_dataset(_config, "cpu", 0)  # after the label selection: the sizes below are the selected ones
        if getattr(data, "variant", None) is not None:
            print(f"split: condition={_config.get('condition')} variant={data.variant}")
        if "labels" in _config:
            labels, n_labels, first_n = selection(_config)
            print("  " + describe_selection(labels, n_labels, first_n, spec.model_inputs().get("n_classes")))
        for part, source in (("train", data.train), ("val", data.val), ("test", data.test)):
            if source is not None:
                print(f"  {part:<5} {len(source):>9,} examples")
        batch = data.train.batch(slice(0, 100_000)) if hasattr(data.train, "batch") else stream_batch(data.train, 10_000)
        x = batch["x"]
        print("  batch: " + ", ".join(f"{k} {list(v.shape[1:])}" for k, v in batch.items()))
        if x.dim() == 2:  # vectors: their sample statistics
            print(f"  training mean {_fmt(x.mean(0))}, std {_fmt(x.std(0))}, range [{x.min():.2f}, {x.max():.2f}]")
        if "u" in batch and "s" in batch:  # segments with true sources: each segment's statistics
            segment = batch["u"].argmax(1)
            print("  segment  points  source mean / std per component")
            for k in segment.unique().tolist():
                s_k = batch["s"][segment == k]
                print(f"  {k:>7} {len(s_k):>7}  mean {_fmt(s_k.mean(0))}  std {_fmt(s_k.std(0))}")

    return dataset


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.2f}" for v in values) + "]"
