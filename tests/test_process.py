"""sims.process: a worker's memory settings, seen in the page faults they save."""

from __future__ import annotations

import subprocess
import sys

import pytest

# in a fresh process, as training steps do: fill a 64 MiB tensor and small ones, free them;
# 5 such steps to settle, then print the minor page faults of 5 more (16 384 a step when
# the large tensor's pages come fresh from the system)
REFILL_FAULTS = """
import resource, sys, torch
from sims.process import configure
if sys.argv[1] == "configured":
    configure(threads=1)
def step():
    block = torch.ones(16 * 2**20)
    small = [torch.ones(10) for _ in range(50)]
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def refill_faults(mode: str) -> int:
    """Minor page faults of 5 steps that each fill a 64 MiB tensor and free it, in a process
    set up by ``configure`` or not (``mode``: "configured" or "default")."""
    result = subprocess.run(
        [sys.executable, "-c", REFILL_FAULTS, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_a_configured_worker_reuses_freed_blocks_larger_than_glibcs_mmap_threshold():
    # 64 MiB is above the largest mmap threshold glibc allows (32 MiB): only a process
    # that maps no block apart takes the freed block back from its heap, without faults
    default, configured = refill_faults("default"), refill_faults("configured")
    assert default > 40_000, f"a default process should fault fresh pages in, got {default}"
    assert configured < 1000, f"a configured worker faulted {configured} times in 5 steps"
