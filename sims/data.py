"""One member's samples, the unit that methods split, the engine trains on and models
standardise on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Dataset:
    """One member's samples: x (n, d_x) and z (n, d_z) or ``None``."""

    x: Tensor
    z: Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def split(
        self, fraction: float, seed: int, at_most: int | None = None
    ) -> tuple[Dataset, Dataset]:
        """(train, held-out) with ``round(fraction * n)`` rows held out at random (at least 1,
        and at most ``at_most`` where given)."""
        n = len(self)
        held = max(1, round(fraction * n))
        if at_most is not None:
            held = min(held, at_most)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        keep, out = order[held:], order[:held]
        pick = lambda rows: Dataset(self.x[rows], None if self.z is None else self.z[rows])  # noqa: E731
        return pick(keep), pick(out)

    def repeated(self, times: int) -> Dataset:
        """The rows ``times`` over."""
        z = None if self.z is None else self.z.repeat(times, 1)
        return Dataset(self.x.repeat(times, 1), z)

    @staticmethod
    def union(first: Dataset, second: Dataset) -> Dataset:
        """The rows of both (same dimensions)."""
        z = None if first.z is None else torch.cat([first.z, second.z])
        return Dataset(torch.cat([first.x, second.x]), z)
