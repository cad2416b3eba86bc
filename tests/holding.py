"""A task for worker processes that keeps memory, in a module light enough to import fast."""

import time

import numpy as np

_HELD = []


def holding(megabytes: int) -> int:
    """Keep ``megabytes`` of memory in this process and outlast loky's 1 s interval between
    memory checks; returns ``megabytes``."""
    _HELD.append(np.ones(megabytes << 17))  # 2^17 float64 per MiB
    time.sleep(1.2)
    return megabytes
