"""The end-of-run evaluation of a binary-latent HVAE (Flach, Schlesinger & Shekhovtsov, AISTATS 2024;
docs/symvae.md §3.4, §4): image grids of what the model does, and the two FIDs of its table.

- ``grid.png``: the training-time grid of docs/symvae.md §3.4, ``columns`` images a row: (1) data
  images as the model saw them (before the training noise), (2) their one-step reconstructions x ->
  z ~ q(z|x) -> mean of p(x|z1), (3) random-code means, (4) the means of a ``columns``-image limiting
  chain of ``chain_steps`` steps started from the variant's start (docs/symvae.md §4.2 draws it
  from noise; here the same start as the FID material, so the row shows what the FID scores).
- ``samples.pt``: those rows as tensors, and 40 images of each FID set (random code, limiting) as
  the FID sees them (thresholded at 0.5 for Bernoulli decoders, docs/symvae.md §4.3).
- ``train.fid_random_code`` and ``train.fid_limiting``: FID (``genlab.metrics.fid``, pytorch-fid's
  preprocessing and formula) of ``fid_images`` generated images against as many training images
  (the original: all 70,000 against all 70,000, the reference binarised as in training, §4.4). The
  limiting set is ``chain_steps`` steps of x -> z ~ q(z|x) -> x ~ p(x|z) from the variant's start,
  then one encode and the decoder mean (§4.3). The reference statistics are cached per dataset,
  preprocessing and size.

Defaults are the paper's (1000 chain steps, 70,000 images); a smoke run (``training.smoke`` or
``evaluation.smoke``, i.e. ``max_examples`` set) uses 20 steps and 256 images unless they are set, and skips the FID (saying so in the run's info) when the
Inception weights have not been fetched (``bin/get-data fid``); any other run refuses to start
without them (``experiments.symvae``).
"""

from __future__ import annotations

import io
import logging
import time
from typing import Iterator

import torch

from genlab.data.sources import sample
from genlab.evaluations.base import EvalContext, register_evaluation

logger = logging.getLogger("genlab.evaluation")

PAPER_CHAIN_STEPS = 1000  # docs/symvae.md §4.2, §4.3
PAPER_FID_IMAGES = 70_000  # docs/symvae.md §4.3: every training image, and as many generated ones
SMOKE_CHAIN_STEPS = 20
SMOKE_FID_IMAGES = 256
INCEPTION_BATCH = 100  # images per Inception pass: about 1.5 GB of activations on a CPU (1000 at once took 12-15 GB)
SHOWN = 40  # images of each FID set kept in samples.pt (generate.py's 4 x 10 grids, §4.2)


def settings(chain_steps: int | None, fid_images: int | None, smoke: bool) -> tuple[int, int]:
    """The chain length and FID size a run uses: the given ones, else the paper's (a smoke run's)."""
    steps = chain_steps if chain_steps is not None else (SMOKE_CHAIN_STEPS if smoke else PAPER_CHAIN_STEPS)
    images = fid_images if fid_images is not None else (SMOKE_FID_IMAGES if smoke else PAPER_FID_IMAGES)
    if steps < 0 or images < 0:
        raise ValueError(f"evaluation.chain_steps and evaluation.fid_images must be >= 0, got {steps}, {images}")
    return int(steps), int(images)


def png(images: torch.Tensor, columns: int) -> bytes:
    """A torchvision grid of (N, 1, H, W) images in [0, 1] (padding 2, black, as the original's), as PNG bytes."""
    from torchvision.utils import save_image

    buffer = io.BytesIO()
    save_image(images.detach().float().clamp(0, 1).cpu(), buffer, nrow=columns, padding=2, format="png")
    return buffer.getvalue()


def generated(make, n: int, chunk: int) -> Iterator[torch.Tensor]:
    """``n`` images from ``make(count)``, ``chunk`` at a time."""
    for start in range(0, n, chunk):
        yield make(min(chunk, n - start))


@register_evaluation("symvae_samples")
@torch.no_grad()
def symvae_samples(ctx: EvalContext, columns: int = 10, chain_steps: int | None = None, fid_images: int | None = None,
                   fid_batch_size: int = 1000, fid_weights: str | None = None, sample_seed: int = 0,
                   max_examples: int | None = None) -> tuple[dict, dict]:  # fmt: skip
    """``chain_steps`` (None: 1000, smoke 20), ``fid_images`` (None: 70,000 or every training image if
    fewer; smoke 256; 0: no FID), ``fid_batch_size`` images generated at a time (scored ``INCEPTION_BATCH`` = 100 at a time),
    ``fid_weights`` the Inception TorchScript file (None: the verified default of ``bin/get-data
    fid``; an own file's FIDs are not comparable with published ones), ``sample_seed`` seeds every
    draw here (the same images for the same weights), ``max_examples`` (set by ``evaluation.smoke``
    and ``training.smoke``) makes it a smoke evaluation: at most that many FID images, 20 chain steps
    and 256 FID images unless set, and no FID when the weights are absent."""
    from genlab.metrics import fid

    model, train = ctx.model.eval(), ctx.data.train
    smoke = max_examples is not None
    steps, n_fid = settings(chain_steps, fid_images, smoke)
    n_fid = n_fid if max_examples is None else min(n_fid, int(max_examples))
    device = next(model.parameters()).device
    g = torch.Generator(device).manual_seed(int(sample_seed))

    shown_rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(sample_seed)))[:columns]
    data = train.batch(shown_rows.sort().values.to(train.device))["x"].to(device)
    rows = {
        "data": data,
        "reconstruction": model.reconstruct(data, generator=g),
        "random_code": model.random_code(len(data), generator=g, binary=False),
        "limiting": model.limiting_chain(len(data), steps=steps, generator=g, binary=False),
    }
    shown = {
        "random_code_fid": model.random_code(SHOWN, generator=g),
        "limiting_fid": model.limiting_chain(SHOWN, steps=steps, generator=g),
    }
    ctx.artifacts["grid.png"] = png(torch.cat(list(rows.values())), columns)
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in {**rows, **shown}.items()}, buffer)
    ctx.artifacts["samples.pt"] = buffer.getvalue()

    info: dict = {"chain_steps": steps, "chain_start": getattr(model, "chain_start", None)}
    metrics: dict[str, float] = {}
    n_fid = min(n_fid, len(train))
    if n_fid == 0:
        return metrics, {"symvae_samples": {**info, "fid": "not computed (evaluation.fid_images=0)"}}
    try:
        extractor = fid.InceptionFeatures(fid_weights, device=device)
    except fid.MissingFile as err:
        if not smoke:
            raise
        logger.warning("smoke run: FID skipped (%s)", err)
        return metrics, {"symvae_samples": {**info, "fid": f"skipped in a smoke run: {err}"}}
    start = time.monotonic()
    reference_rows = sample(train, n_fid, seed=int(sample_seed))
    reference = fid.reference_statistics(
        f"{ctx.data.name}-{reference_key(ctx.data.info)}-n{n_fid}-seed{sample_seed}",
        lambda: (reference_rows.batch(slice(s, s + fid_batch_size))["x"] for s in range(0, n_fid, fid_batch_size)),
        extractor, batch_size=INCEPTION_BATCH,
    )  # fmt: skip
    for name, make in (("random_code", lambda k: model.random_code(k, generator=g)),
                       ("limiting", lambda k: model.limiting_chain(k, steps=steps, generator=g))):  # fmt: skip
        stats = fid.Statistics.from_features(fid.features(generated(make, n_fid, fid_batch_size), extractor, batch_size=INCEPTION_BATCH))
        metrics[f"train.fid_{name}"] = fid.frechet_distance(stats, reference)
        logger.info("FID %s (%d vs %d images): %.4f", name, n_fid, n_fid, metrics[f"train.fid_{name}"])
    info.update(fid_images=n_fid, fid_seconds=round(time.monotonic() - start, 1), fid_weights=extractor.describe())
    return metrics, {"symvae_samples": info}


def reference_key(info: dict) -> str:
    """What the reference images depend on besides the dataset's name (source, split, binarisation)."""
    keys = ("source", "split", "binarize", "threshold", "n")
    return "-".join(f"{k}{info[k]}" for k in keys if k in info and info[k] is not None)
