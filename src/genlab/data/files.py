"""Checks shared by every reader of a published data file: the missing-file message, the
malformed-file error, and the per-factor strides of a sub-grid.

A missing file stops a run before any compute with a message that says which file was looked for,
who publishes it, where to put it (or how to point to it), the command that fetches it on a machine
with internet, and the offline alternative where there is one.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from genlab import paths
from genlab.data.base import FactorGrid
from genlab.errors import ConfigError, CorruptFile, MissingFile

# what reading a damaged compressed archive raises: a CRC mismatch, a corrupt deflate stream, a cut one
CORRUPT_ARCHIVE = (zipfile.BadZipFile, zlib.error, EOFError)


def corrupt_message(error: BaseException) -> str:
    """The malformed-file detail for a damaged archive (see ``CORRUPT_ARCHIVE``)."""
    return f"is corrupt ({type(error).__name__}: {error}): fetch it again, or check the copy against its published checksum"


@dataclass(frozen=True)
class DataFile:
    """A published data file a reader expects under ``data/raw/<folder>/<filename>``."""

    title: str  # e.g. "dSprites"
    filename: str
    folder: str  # data/raw/<folder>/
    origin: str  # who publishes it, and where
    url: str  # a direct download address
    alternative: str = ""  # what to do without the file (e.g. a generated or stand-in source)
    path_key: str = "dataset.path"  # the config key that points to another location

    def default_path(self) -> Path:
        return paths.raw_dir(self.folder) / self.filename

    def fetch_command(self) -> str:
        return f"mkdir -p {self.default_path().parent} && curl -L -o {self.default_path()} {self.url}"

    def missing_message(self, path: Path | str) -> str:
        """One line: the file looked for, who publishes it, where to put it, how to fetch it."""
        parts = [
            f"{self.title} file not found: {path}",
            f"{self.filename} is published by {self.origin}",
            f"put it at {self.default_path()} (the default path) or point to it with {self.path_key}=/path/to/{self.filename}",
            f"with internet access fetch it with: {self.fetch_command()}",
            "with no internet access (genlab never downloads at run time) copy it in by hand",
        ]
        if self.alternative:
            parts.append(f"or {self.alternative}")
        return "; ".join(parts)

    def require(self, path: str | Path | None) -> Path:
        """``path`` (default :meth:`default_path`) if it is a file; else ``MissingFile`` with the message above."""
        file = Path(path) if path is not None else self.default_path()
        if not file.is_file():
            raise MissingFile(self.missing_message(file))
        return file

    def check_source(self, dataset: str, source: str, sources: Sequence[str], path: str | Path | None, hint: str = "") -> None:
        """The checks of a loader's ``source`` and ``path`` that read no data: ``source`` is one of
        ``sources``; with ``source="file"`` the file exists (else ``MissingFile``), otherwise no
        ``path`` is given. ``hint`` follows the unknown-source message."""
        if source not in sources:
            raise ConfigError(f"unknown {dataset} source {source!r}; valid sources: {', '.join(sources)}{hint}")
        if source == "file":
            self.require(path)
        elif path is not None:
            raise ConfigError(f"dataset.path is only read with dataset.source=file (not source={source})")

    def bad(self, path: Path | str, what: str, expected: str = "") -> CorruptFile:
        """The error for a file that exists but is not in the published format."""
        form = f" ({expected})" if expected else ""
        return CorruptFile(f"{path}: not a valid {self.title} file{form}: {what}")


def check_strides(strides: Sequence[int], grid: FactorGrid) -> tuple[int, ...]:
    """One positive stride per factor of ``grid``, as ints."""
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(grid.sizes) or any(s < 1 for s in strides):
        raise ConfigError(f"strides must be {len(grid.sizes)} positive ints ({', '.join(grid.names)}), got {strides}")
    return strides


def strided_classes(grid: FactorGrid, strides: Sequence[int] | None) -> np.ndarray:
    """Full-grid class indices (N, K) of the sub-grid ``grid.subgrid(strides)``, row-major (all of
    ``grid`` if ``strides`` is None)."""
    if strides is None:
        return grid.classes()
    strides = check_strides(strides, grid)
    return grid.subgrid(strides).classes() * np.asarray(strides)
