"""Random Fourier series: smooth random functions as sums of cosines,

    f(u) = sum_m c_m cos(<w_m, u> + phi_m) + offset,

with two laws of the frequencies w_m and coefficients c_m (phases uniform on [0, 2 pi)):

- ``matern``: random Fourier features of the Matérn-nu kernel of lengthscale l (Rahimi &
  Recht 2007). w_m is drawn from the kernel's spectral density, a multivariate Student-t
  with 2 nu degrees of freedom scaled by 1/l, and c_m ~ N(0, (2/M) I), so that over draws
  E f(u) f(u')^T = k_nu,l(u - u') I exactly, for every M. A draw behaves like a Matérn-nu
  sample path: smoothness nu, and a complexity that grows with the input dimension D, so
  that it is learned at n^(-2 nu / (2 nu + D)) (van der Vaart & van Zanten 2011).
- ``ridge``: one direction omega_k per integer frequency k, with amplitude k^-(beta + 1/2).
  Along any direction its Sobolev norm of order s, sum_k k^{2s} k^{-(2 beta + 1)}, is finite
  exactly when s < beta; but it is a sum of one-dimensional ridge functions, learned at the
  one-dimensional rate whatever D is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class FourierSeries:
    """f(u) = sum_k coefficients_k cos(<frequencies_k, u> + phases_k) + offset.

    Attributes:
        frequencies: (K, d_in) frequency vectors.
        phases: (K,) phases.
        coefficients: (K, d_out) output coefficients (decay and amplitude included).
        offset: (d_out,) constant term.
    """

    frequencies: Tensor
    phases: Tensor
    coefficients: Tensor
    offset: Tensor

    @classmethod
    def matern(
        cls,
        rng: np.random.Generator,
        d_in: int,
        d_out: int,
        nu: float,
        lengthscale: float,
        n_features: int,
    ) -> FourierSeries:
        """Random Fourier features of the Matérn-nu kernel of ``lengthscale`` (its value at 0
        is 1): frequencies z sqrt(2 nu / u) / l with z ~ N(0, I), u ~ chi^2 with 2 nu degrees
        of freedom; ``n_features`` terms M, coefficients N(0, 2/M) per output."""
        gaussian = rng.standard_normal((n_features, d_in))
        scale = np.sqrt(2 * nu / rng.chisquare(2 * nu, size=(n_features, 1))) / lengthscale
        phases = rng.uniform(0.0, 2 * np.pi, size=n_features)
        coefficients = math.sqrt(2.0 / n_features) * rng.standard_normal((n_features, d_out))
        return cls(
            frequencies=torch.from_numpy(gaussian * scale),
            phases=torch.from_numpy(phases),
            coefficients=torch.from_numpy(coefficients),
            offset=torch.zeros(d_out, dtype=torch.float64),
        )

    @classmethod
    def ridge(
        cls, rng: np.random.Generator, d_in: int, d_out: int, beta: float, n_terms: int
    ) -> FourierSeries:
        """A random ridge series of smoothness beta, scaled so each output has variance
        about 1."""
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

    def standardised(self) -> FourierSeries:
        """The same series shifted and scaled to mean 0, variance 1 under u ~ N(0, I)."""
        mean, variance = self.gaussian_moments()
        scale = variance.rsqrt()
        return FourierSeries(
            self.frequencies, self.phases, self.coefficients * scale, (self.offset - mean) * scale
        )

    def combine(self, other: FourierSeries, weight: float, other_weight: float) -> FourierSeries:
        """weight * self + other_weight * other, itself a Fourier series with the terms of both."""
        return FourierSeries(
            torch.cat([self.frequencies, other.frequencies]),
            torch.cat([self.phases, other.phases]),
            torch.cat([weight * self.coefficients, other_weight * other.coefficients]),
            weight * self.offset + other_weight * other.offset,
        )
