"""Process-wide settings, made by the entry points (``run_all.py``'s tasks in each worker,
the benchmarks), never on import."""

from __future__ import annotations

import ctypes
import functools
import sys

import torch

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters
_TRIM_THRESHOLD = 2**30  # bytes


@functools.cache
def reuse_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for reuse instead of returning it at once.

    Each training step frees its activations (MiBs each) and allocates them again, and
    each held-out check and evaluation step allocates blocks of tens to hundreds of MiBs;
    by default glibc maps blocks above a threshold (at most 32 MiB) apart and hands them
    back to the system when freed, and fresh pages cost a page fault per 4 KiB: thousands
    of faults per step of a 32-member ensemble of score networks, up to a sixth of its time
    on a CPU. With this, every block comes from the heap (none is mapped apart), whose top
    is given back only beyond 1 GiB free, so the process keeps its peak memory. Nothing
    happens where malloc is not glibc's.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_MAX, 0)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def configure(threads: int) -> None:
    """Set this process up for training: ``threads`` torch threads, and freed memory kept
    for reuse."""
    torch.set_num_threads(threads)
    reuse_freed_memory()
