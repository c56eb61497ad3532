"""The ``dataset`` ingredient: which data, which generalisation split, captured for
``genlab.data.load_split_data``.

``dataset.name`` is a key of ``genlab.data.DATASETS`` (each dataset is also a named config, e.g.
``dataset.dsprites``); ``dataset.condition`` / ``dataset.variant`` name a split of
``genlab.data.splits`` (disent.md 1.4). Unknown names fail at start-up, before any data is read.
"""

from __future__ import annotations

import numpy as np
from sacred import Ingredient

from genlab.data import DATASETS, check_split, load_split_data

dataset = Ingredient("dataset")


@dataset.config
def config():
    name = "dsprites"  # genlab.data.DATASETS key
    source = "file"  # "file": the published file; "generated": rendered offline (dSprites)
    path = None  # the published file, if not at data/raw/<name>/<its file name>
    strides = None  # per-factor strides: a sub-grid for smoke runs (e.g. [1, 2, 4, 4, 4])
    condition = None  # generalisation condition (extrp, recomb2range, recomb2element); None: no split
    variant = None  # the condition's variant (e.g. blank_side); None: the condition's default
    val_fraction = 0.05  # training combinations held out for validation
    split_seed = 0  # seed of the validation hold-out


@dataset.config_hook
def check_names(config, command_name, logger):
    """Refuse unknown names at start-up and record the variant a condition defaults to."""
    cfg = config["dataset"]
    variant = check_split(cfg["name"], cfg["condition"], cfg["variant"])
    return {"variant": variant} if variant != cfg["variant"] else {}


for _name in DATASETS:
    dataset.add_named_config(_name, {"name": _name})
dataset.add_named_config("generated", {"source": "generated"})
dataset.add_named_config("tiny", {"strides": [1, 2, 4, 4, 4]})


@dataset.capture
def load_data(device, name, source, path, strides, condition, variant, val_fraction, split_seed):
    return load_split_data(
        name, condition, variant, val_fraction, split_seed, device=device, source=source, path=path, strides=strides
    )


@dataset.command(unobserved=True)
def show(name, condition, variant):
    """Print the factor grid and, once loaded, the size of each split (``dataset.show with ...``)."""
    spec = DATASETS.get(name)
    print(f"{name}: images {list(spec.image_shape)}, {len(spec.grid):,} factor combinations")
    for factor, values in zip(spec.grid.names, spec.grid.values):
        shown = np.array2string(np.asarray(values), precision=3, threshold=8, max_line_width=90)
        print(f"  {factor:<12} {len(values):>3} values  {shown}")
    data = load_data("cpu")
    print(f"split: condition={condition} variant={data.variant}")
    for split, part in data.splits().items():
        print(f"  {split:<5} {len(part):>9,} images")
