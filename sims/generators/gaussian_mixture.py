"""Gaussian mixtures with batched parameters: the closed-form law behind every family.

Every ground-truth family is, given its condition, a Gaussian mixture; Gaussian noising by
the forward process keeps it one. The weights and means may differ per batch element (one
law per condition z); the component covariances are shared by the batch, which keeps the
log-density and score at one matrix product per component.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor

from sims.generators.linalg import random_spd
from sims.sde import VPSDE


class GaussianMixture:
    """sum_k pi_k N(m_k, C_k), batched over conditions.

    Args:
        log_weights: (..., K) unnormalised log-weights; normalised here.
        means: (..., K, d) component means.
        covariances: (K, d, d) symmetric positive-definite component covariances.

    The batch shape ``...`` of ``log_weights`` and ``means`` broadcasts against the batch
    of points passed to ``log_prob`` and ``score``. All computation is in the dtype of the
    inputs (float64 for ground truth).
    """

    def __init__(self, log_weights: Tensor, means: Tensor, covariances: Tensor):
        if means.shape[-2:] != (covariances.shape[0], covariances.shape[-1]):
            raise ValueError(
                f"means of shape {tuple(means.shape)} do not match covariances of shape "
                f"{tuple(covariances.shape)}: expected (..., K, d) and (K, d, d)"
            )
        self.log_weights = torch.log_softmax(log_weights, dim=-1)
        self.means = means
        self.covariances = covariances
        self.cholesky = torch.linalg.cholesky(covariances)
        self.precisions = torch.cholesky_inverse(self.cholesky)
        self.log_dets = 2 * self.cholesky.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    @property
    def dim(self) -> int:
        """Dimension d of the space."""
        return self.means.shape[-1]

    def to(self, device: str | torch.device) -> GaussianMixture:
        """The same mixture with its tensors on ``device`` (factors moved, not recomputed)."""
        moved = copy.copy(self)
        moved.__dict__.update({name: value.to(device) for name, value in vars(self).items()})
        return moved

    def noised(self, sde: VPSDE, tau: float) -> GaussianMixture:
        """The law of x_tau under the forward process when x_0 follows this mixture."""
        if tau == 0.0:
            return self
        means, covariances = sde.marginal(self.means, self.covariances, tau)
        return GaussianMixture(self.log_weights, means, covariances)

    def _components(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-component log-densities (..., K) and scores (..., K, d) at x of shape (..., d)."""
        diff = x.unsqueeze(-2) - self.means
        scores = -torch.einsum("...kd,kde->...ke", diff, self.precisions)
        mahalanobis = -(diff * scores).sum(-1)
        log_probs = -0.5 * (mahalanobis + self.log_dets + self.dim * math.log(2 * math.pi))
        return log_probs, scores

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density at x of shape (..., d); returns (...), in nats."""
        log_probs, _ = self._components(x)
        return torch.logsumexp(self.log_weights + log_probs, dim=-1)

    def score(self, x: Tensor) -> Tensor:
        """Score grad_x log p(x) at x of shape (..., d); returns (..., d)."""
        log_probs, scores = self._components(x)
        responsibilities = torch.softmax(self.log_weights + log_probs, dim=-1)
        return (responsibilities.unsqueeze(-1) * scores).sum(-2)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """(n, d) draws, one per batch element when the batch shape is (n,).

        An unbatched mixture (weights (K,), means (K, d)) gives n independent draws. The
        generator lives on the mixture's device.
        """
        options = {"generator": generator, "dtype": self.means.dtype, "device": self.means.device}
        cumulative = self.log_weights.exp().expand(n, -1).cumsum(-1)
        uniforms = torch.rand(n, 1, **options)
        last = cumulative.shape[-1] - 1
        component = (cumulative < uniforms).sum(-1).clamp(max=last)
        noise = torch.randn(n, self.dim, **options)
        x = self.means.expand(n, -1, -1)[torch.arange(n, device=self.means.device), component]
        for k, cholesky in enumerate(self.cholesky):
            rows = component == k
            x[rows] += noise[rows] @ cholesky.T
        return x

    def projected_cdf(self, x: Tensor, direction: Tensor) -> Tensor:
        """CDF of <direction, X> at <direction, x>, for x of shape (..., d); returns (...).

        The law of a 1-D projection of a Gaussian mixture is a 1-D Gaussian mixture, so
        this gives the probability integral transform used to test samples against the law.
        """
        centres = self.means @ direction
        scales = torch.einsum("d,kde,e->k", direction, self.covariances, direction).sqrt()
        standardised = ((x @ direction).unsqueeze(-1) - centres) / scales
        normal = torch.distributions.Normal(0.0, 1.0)
        return (self.log_weights.exp() * normal.cdf(standardised)).sum(-1)

    def affine(self, weight: Tensor, bias: Tensor, noise_variance: float = 0.0) -> GaussianMixture:
        """Law of weight @ X + bias + N(0, noise_variance I) for X from this unbatched mixture.

        Args:
            weight: (d_out, d) matrix.
            bias: (d_out,) offset.
            noise_variance: variance of independent isotropic noise added, >= 0.
        """
        eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
        covariances = weight @ self.covariances @ weight.T + noise_variance * eye
        return GaussianMixture(self.log_weights, self.means @ weight.T + bias, covariances)

    def blend(self, other: GaussianMixture, weight: float) -> GaussianMixture:
        """The two-part mixture (1 - weight) * self + weight * other, 0 < weight < 1."""
        log_weights = [self.log_weights + math.log1p(-weight), other.log_weights + math.log(weight)]
        return GaussianMixture(
            torch.cat(log_weights),
            torch.cat([self.means, other.means]),
            torch.cat([self.covariances, other.covariances]),
        )


def random_mixture(
    rng: np.random.Generator, d: int, n_components: int, separation: float, scale: float
) -> GaussianMixture:
    """A random unbatched mixture in R^d.

    Weights ~ Dirichlet(5, ..., 5); means ~ N(0, separation^2 I); each covariance has a
    random eigenbasis and eigenvalues uniform in [scale^2 / 2, 3 scale^2 / 2].
    """
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = separation * rng.standard_normal((n_components, d))
    covariances = torch.stack(
        [random_spd(rng, d, 0.5 * scale**2, 1.5 * scale**2) for _ in range(n_components)]
    )
    return GaussianMixture(torch.from_numpy(np.log(weights)), torch.from_numpy(means), covariances)
