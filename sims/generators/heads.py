"""Task-specific heads: maps from an embedding e (N, d_h) to the law of x given e."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sims.generators.fourier import FourierSeries
from sims.generators.gaussian_mixture import GaussianMixture


@dataclass(frozen=True)
class AffineMap:
    """e -> e B^T + b, with B (d_x, d_h) and b (d_x,)."""

    weight: Tensor
    bias: Tensor

    def __call__(self, e: Tensor) -> Tensor:
        return e @ self.weight.T + self.bias


@dataclass(frozen=True)
class GaussianHead:
    """x | e ~ N(mean(e), covariance), covariance (d_x, d_x)."""

    mean: Callable[[Tensor], Tensor]
    covariance: Tensor

    def __call__(self, e: Tensor) -> GaussianMixture:
        means = self.mean(e).unsqueeze(-2)
        log_weights = torch.zeros(means.shape[:-1], dtype=means.dtype, device=means.device)
        return GaussianMixture(log_weights, means, self.covariance.unsqueeze(0))


@dataclass(frozen=True)
class MixtureHead:
    """x | e ~ sum_k softmax(logits(e))_k N(centres_k + displacement(e)_k, scale^2 I).

    Attributes:
        logits: ridge series R^{d_h} -> R^K.
        centres: (K, d_x) fixed component centres.
        displacement: ridge series R^{d_h} -> R^{K d_x}, moving the centres with e.
        scale: component standard deviation.
    """

    logits: FourierSeries
    centres: Tensor
    displacement: FourierSeries
    scale: float

    def __call__(self, e: Tensor) -> GaussianMixture:
        n_components, d_x = self.centres.shape
        means = self.centres + self.displacement(e).view(-1, n_components, d_x)
        eye = torch.eye(d_x, dtype=means.dtype, device=means.device).expand(n_components, d_x, d_x)
        return GaussianMixture(self.logits(e), means, self.scale**2 * eye)
