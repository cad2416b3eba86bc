"""Latent laws for ``shared_latent`` models, and the moment-matched start of their affine head.

A ``shared_latent`` task is x = A v + b with v from a latent law shared across tasks; its
models hold the latent law as their embedding part and (A, b) as their head. The latent laws
here are Gaussian mixtures: the truth's (``FixedLatent``) or a learned one
(``MixtureLatent``). Both give ``components()``: log-weights (K,), means (K, d) and
covariances (K, d, d).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sims.generators.gaussian_mixture import GaussianMixture
from sims.models.linear_gaussian import lower_cholesky


class MixtureLaw(nn.Module):
    """What both latent laws share: their ``components()`` as a ``GaussianMixture``, and
    draws from it."""

    def components(self) -> tuple[Tensor, Tensor, Tensor]:
        """Log-weights (K,), means (K, d) and covariances (K, d, d)."""
        raise NotImplementedError

    def law(self) -> GaussianMixture:
        return GaussianMixture(*self.components())

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws (n, d) in the default dtype, seeded from torch's global generator."""
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        return self.law().sample(n, generator).to(torch.get_default_dtype())


class FixedLatent(MixtureLaw):
    """A known latent Gaussian mixture, e.g. the truth's for the ``oracle`` method."""

    def __init__(self, law: GaussianMixture):
        super().__init__()
        self.register_buffer("log_weights", law.log_weights)
        self.register_buffer("means", law.means)
        self.register_buffer("covariances", law.covariances)

    def components(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.log_weights, self.means, self.covariances

    def log_prob(self, v: Tensor) -> Tensor:
        return self.law().log_prob(v.to(torch.float64)).to(v.dtype)


class MixtureLatent(MixtureLaw):
    """A learned latent Gaussian mixture of ``components`` components in R^d, each with its
    own weight, mean and full covariance (a Cholesky factor with a log-scale diagonal).

    It starts with means drawn from N(0, 0.8^2 I) and covariances 0.6^2 I, so that the
    whole law has about unit covariance, as the moment-matched head expects.
    """

    def __init__(self, d: int, components: int = 8):
        super().__init__()
        self.log_weights = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(0.8 * torch.randn(components, d))
        diagonal = torch.full((components, d), 0.6).log()
        self.cholesky_raw = nn.Parameter(torch.diag_embed(diagonal))

    def components(self) -> tuple[Tensor, Tensor, Tensor]:
        factor = lower_cholesky(self.cholesky_raw)
        return self.log_weights, self.means, factor @ factor.transpose(-1, -2)


def orthogonal_candidates(d: int, count: int) -> Tensor:
    """(2 count, d, d) Haar orthogonal matrices from torch's global generator, each also with
    its first column negated, so that both signs of the determinant are represented."""
    q, r = torch.linalg.qr(torch.randn(count, d, d))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    reflected = q.clone()
    reflected[:, :, 0] *= -1
    return torch.cat([q, reflected])


def _moments(v: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (d,) and covariance (d, d) of the rows of v (n, d)."""
    return v.mean(0), torch.cov(v.T).reshape(v.shape[1], v.shape[1])


def _symmetric_power(matrix: Tensor, power: float) -> Tensor:
    eigenvalues, basis = torch.linalg.eigh(matrix)
    return (basis * eigenvalues.clamp(min=1e-12) ** power) @ basis.T


@torch.no_grad()
def moment_matched_head(
    u: Tensor,
    latent: nn.Module,
    log_likelihood: Callable[[Tensor, Tensor], Tensor],
    candidates: int,
    latent_draws: int = 4096,
) -> tuple[Tensor, Tensor]:
    """The affine head (A, b) whose push-forward A v + b of the latent matches the mean and
    covariance of the data, the likeliest over orthogonal R: A = C^{1/2} R S^{-1/2},
    b = m_u - A m_v, with R among ``candidates`` random orthogonal matrices and their
    reflections (R = I when ``candidates`` is 0, e.g. for a fresh latent law, which fits
    every rotation alike).

    Gradient steps cannot change the sign of det A, and a latent law need not be rotation
    invariant, so a fixed start (A = I) can leave the head in the wrong basin.

    Args:
        u: (n, d) data; latent: a module with ``sample(m)``, drawn ``latent_draws`` times
            for its moments.
        log_likelihood: (A, b) -> mean log-likelihood of u, a scalar.

    Returns:
        A (d, d) and b (d,), in the dtype of u.
    """
    d = u.shape[1]
    rotations = orthogonal_candidates(d, candidates) if candidates else torch.eye(d)[None]
    u_mean, u_covariance = _moments(u)
    v_mean, v_covariance = _moments(latent.sample(latent_draws).to(u))
    root = _symmetric_power(u_covariance, 0.5)
    inverse_root = _symmetric_power(v_covariance, -0.5)
    weights = root @ rotations.to(u) @ inverse_root
    biases = u_mean - weights @ v_mean
    fits = torch.stack([log_likelihood(a, b) for a, b in zip(weights, biases, strict=True)])
    best = int(torch.nan_to_num(fits, nan=-torch.inf).argmax())
    return weights[best], biases[best]
