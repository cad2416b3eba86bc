"""Random ridge series: smooth random functions whose Sobolev smoothness is set by beta.

    f(u) = sum_{k=1}^{K} k^{-(beta + 1/2)} a_k cos(k <omega_k, u> + phi_k),

with omega_k uniform on the unit sphere, a_k ~ N(0, c^2 I), phi_k ~ U[0, 2 pi). Along any
direction the k-th term oscillates at frequency k with amplitude k^{-(beta + 1/2)}, so the
Sobolev norm of order s, sum_k k^{2s} k^{-(2 beta + 1)}, is finite exactly when s < beta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class RidgeSeries:
    """f(u) = sum_k coefficients_k cos(<frequencies_k, u> + phases_k) + offset.

    Attributes:
        frequencies: (K, d_in) frequency vectors (k omega_k).
        phases: (K,) phases.
        coefficients: (K, d_out) output coefficients (decay and amplitude included).
        offset: (d_out,) constant term.
    """

    frequencies: Tensor
    phases: Tensor
    coefficients: Tensor
    offset: Tensor

    @classmethod
    def random(
        cls, rng: np.random.Generator, d_in: int, d_out: int, beta: float, n_terms: int
    ) -> RidgeSeries:
        """A random series of smoothness beta, scaled so each output has variance about 1."""
        k = np.arange(1, n_terms + 1, dtype=np.float64)
        decay = k ** -(beta + 0.5)
        amplitude = np.sqrt(2.0 / np.sum(decay**2))
        directions = rng.standard_normal((n_terms, d_in))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        phases = rng.uniform(0.0, 2 * np.pi, size=n_terms)
        coefficients = amplitude * decay[:, None] * rng.standard_normal((n_terms, d_out))
        return cls(
            frequencies=torch.from_numpy(k[:, None] * directions),
            phases=torch.from_numpy(phases),
            coefficients=torch.from_numpy(coefficients),
            offset=torch.zeros(d_out, dtype=torch.float64),
        )

    def __call__(self, u: Tensor) -> Tensor:
        """Evaluate at u of shape (N, d_in); returns (N, d_out)."""
        return torch.cos(u @ self.frequencies.T + self.phases) @ self.coefficients + self.offset

    def gaussian_moments(self) -> tuple[Tensor, Tensor]:
        """Exact mean (d_out,) and variance (d_out,) of f(u) for u ~ N(0, I).

        Uses E cos(<v, u> + phi) = cos(phi) exp(-|v|^2 / 2) and the product-to-sum identity
        for the second moments of pairs of terms.
        """
        v, phi, c = self.frequencies, self.phases, self.coefficients
        first = torch.cos(phi) * torch.exp(-0.5 * (v**2).sum(-1))
        gap = ((v[:, None] - v[None]) ** 2).sum(-1)
        span = ((v[:, None] + v[None]) ** 2).sum(-1)
        second = 0.5 * (
            torch.cos(phi[:, None] - phi[None]) * torch.exp(-0.5 * gap)
            + torch.cos(phi[:, None] + phi[None]) * torch.exp(-0.5 * span)
        )
        covariance = second - first[:, None] * first[None]
        mean = first @ c + self.offset
        variance = torch.einsum("ko,kl,lo->o", c, covariance, c)
        return mean, variance

    def standardised(self) -> RidgeSeries:
        """The same series shifted and scaled to mean 0, variance 1 under u ~ N(0, I)."""
        mean, variance = self.gaussian_moments()
        scale = variance.rsqrt()
        return RidgeSeries(
            self.frequencies, self.phases, self.coefficients * scale, (self.offset - mean) * scale
        )

    def combine(self, other: RidgeSeries, weight: float, other_weight: float) -> RidgeSeries:
        """weight * self + other_weight * other, itself a ridge series with the terms of both."""
        return RidgeSeries(
            torch.cat([self.frequencies, other.frequencies]),
            torch.cat([self.phases, other.phases]),
            torch.cat([weight * self.coefficients, other_weight * other.coefficients]),
            weight * self.offset + other_weight * other.offset,
        )
