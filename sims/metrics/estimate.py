"""A Monte Carlo estimate with its standard error."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm


@dataclass(frozen=True)
class Estimate:
    """``value`` and its standard error ``se``, in the units of the quantity."""

    value: float
    se: float

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval at ``level``."""
        half_width = norm.ppf(0.5 + level / 2) * self.se
        return self.value - half_width, self.value + half_width

    def __str__(self) -> str:
        return f"{self.value:.4g} ± {self.se:.2g}"


def sample_mean(values) -> Estimate:
    """Mean of i.i.d. draws, a 1-D tensor, with its standard error std / sqrt(n)."""
    n = values.shape[0]
    se = values.std().item() / math.sqrt(n) if n > 1 else math.nan
    return Estimate(values.mean().item(), se)
