"""Named random streams: one seed, independent streams for the independent parts of a family."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from sims.validation import check_seed


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A numpy generator for the stream named ``names`` under ``seed``.

    Distinct names give independent streams, so one random part of a family (say the
    source head) stays the same when a knob that governs another part changes.
    """
    keys = [zlib.crc32(name.encode()) for name in names]
    return np.random.default_rng(np.random.SeedSequence([check_seed(seed), *keys]))


def seeded_generator(seed: int, *names: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on ``device`` for the stream named ``names`` under ``seed`` (see
    ``seeded_rng``). Generators of different devices draw different numbers from one seed."""
    state = seeded_rng(seed, *names).integers(0, 2**63 - 1)
    return torch.Generator(device=device).manual_seed(int(state))
