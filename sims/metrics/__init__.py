"""Rulers: divergences from an exact truth to a model, and sample-only distances."""

from sims.metrics.divergences import divergences, log_ratio_divergences, pinsker_holds
from sims.metrics.estimate import Estimate
from sims.metrics.gaussian import gaussian_kl, linear_gaussian_kl
from sims.metrics.two_sample import energy_distance, mmd, sliced_w2, w2

__all__ = [
    "Estimate",
    "divergences",
    "energy_distance",
    "gaussian_kl",
    "linear_gaussian_kl",
    "log_ratio_divergences",
    "mmd",
    "pinsker_holds",
    "sliced_w2",
    "w2",
]
