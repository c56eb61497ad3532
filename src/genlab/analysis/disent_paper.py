"""The published numbers of "The Role of Disentanglement in Generalisation" (docs/disent.md §7).

Saved output of the original's ``notebooks/postproc.ipynb`` (rounded there): posterior-mean Bernoulli
NLL per image in nats on the training and test (excluded) combinations, and DCI disentanglement on
the training split (the ground-truth decoder is defined as 1). dSprites: r2e = leave1out, r2r =
shape2tx, extrp = blank_side. 3DShapes: r2e = leave1out, r2r = shape2ohue, extrp = fhue_gt50. No
MPI3D or composition numbers were published.
"""

from __future__ import annotations

import pandas as pd

MODELS = ["VAE", "β-VAE (β=8)", "β-VAE (β=12)", "FactorVAE (γ=20)", "FactorVAE (γ=50)", "FactorVAE (γ=100)", "GT decoder"]
SPLITS = {
    "dsprites": {"recomb2element": "leave1out", "recomb2range": "shape2tx", "extrp": "blank_side"},
    "shapes3d": {"recomb2element": "leave1out", "recomb2range": "shape2ohue", "extrp": "fhue_gt50"},
}

# per model: (train NLL, test NLL, D) for r2e, r2r, extrp, in that order
_DSPRITES = [
    (8.59, 8.06, .286, 18.82, 200.36, .278, 29.04, 3576.80, .286),
    (34.95, 24.62, .765, 102.90, 215.95, .474, 45.81, 2810.55, .510),
    (37.34, 24.92, .556, 54.21, 154.90, .503, 117.65, 3127.94, .806),
    (27.64, 27.53, .483, 28.00, 130.56, .356, 24.43, 2007.42, .688),
    (23.77, 22.58, .391, 27.99, 153.98, .387, 25.41, 2386.45, .729),
    (32.39, 24.88, .503, 57.40, 100.61, .612, 37.13, 3962.40, .809),
    (49.80, 60.81, 1.0, 46.83, 138.97, 1.0, 40.67, 2188.76, 1.0),
]
_SHAPES3D = [
    (3481.1, 3923.3, .217, 3482.3, 4294.9, .191, 3466.4, 15761.5, .188),
    (3487.8, 3927.4, .724, 3486.0, 4482.6, .460, 3478.6, 16011.9, .568),
    (3500.7, 3940.5, .835, 3496.2, 5077.1, .573, 3469.8, 15790.6, .722),
    (3497.8, 3936.0, .901, 3499.9, 4602.6, .697, 3483.6, 16879.4, .908),
    (3503.0, 3943.7, .586, 3503.6, 5275.7, .815, 3484.0, 21371.3, .865),
    (3520.1, 3958.1, .535, 3500.1, 5095.8, .629, 3502.2, 20858.7, .692),
    (3519.9, 3961.0, 1.0, 3520.5, 3944.9, 1.0, 3486.8, 13215.3, 1.0),
]


def paper_table() -> pd.DataFrame:
    """One row per (dataset, condition, variant, model): ``train_nll``, ``test_nll``, ``disentanglement``."""
    rows = []
    for dataset, table in (("dsprites", _DSPRITES), ("shapes3d", _SHAPES3D)):
        for model, values in zip(MODELS, table):
            for i, (condition, variant) in enumerate(SPLITS[dataset].items()):
                train, test, d = values[3 * i : 3 * i + 3]
                rows.append(dict(dataset=dataset, condition=condition, variant=variant, model=model,
                                 train_nll=train, test_nll=test, disentanglement=d))
    return pd.DataFrame(rows)
