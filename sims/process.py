"""Process-wide settings, made by the entry points (``run_all.py``'s tasks in each worker,
the benchmarks), never on import."""

from __future__ import annotations

import ctypes
import functools
import sys

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_MMAP_THRESHOLD = 32 * 2**20  # bytes: glibc's largest
_TRIM_THRESHOLD = 2**30  # bytes


@functools.cache
def reuse_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for reuse instead of returning it at once.

    Each training step frees its activations (MiBs each) and allocates them again; by
    default glibc hands such blocks back to the system, and fresh pages cost a page fault
    per 4 KiB: thousands of faults per step of a 32-member ensemble of score networks, up
    to a sixth of its time on a CPU. With this, blocks up to 32 MiB come from the heap, whose top
    is given back only beyond 1 GiB free, so the process keeps its peak memory. Nothing
    happens where malloc is not glibc's.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def configure(threads: int) -> None:
    """Set this process up for training: ``threads`` torch threads, and freed memory kept
    for reuse."""
    torch.set_num_threads(threads)
    reuse_freed_memory()
