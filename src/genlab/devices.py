"""Device choice shared by every experiment: ``auto`` picks CUDA when present."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but CUDA is not available; use device=auto or cpu")
    return dev


def keep_freed_memory() -> bool:
    """Stop glibc returning large freed buffers to the OS after every training step.

    A conv VAE step allocates and frees the same large activation buffers each iteration; with
    glibc's defaults every one of them is an ``mmap``/``munmap`` pair, so each step pays page faults
    (measured here: 20-40 % of a CPU training step). Raising the mmap and trim thresholds keeps the
    buffers in the heap for reuse; it does not change any result. Process-wide, so experiments and
    benchmarks call it at start-up, not the library. Returns False where glibc is not available.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20)
        ok &= libc.mallopt(m_trim_threshold, 1 << 30)
        ok &= libc.mallopt(m_top_pad, 256 << 20)
        return bool(ok)
    except (OSError, AttributeError):
        return False
