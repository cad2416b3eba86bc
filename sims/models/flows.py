"""Normalizing flows (zuko neural spline flows) with an explicit embedding part and a head.

- ``ConditionalFlow``: embedding z -> R^{d_h} (a network, or a known map), whose output is the
  context of a conditional spline flow over x.
- ``SubspaceFlow``: embedding = an orthonormal frame U (d_x, d_h); the head is a spline flow
  over w = U^T x and an isotropic Gaussian on the orthogonal complement.
- ``LatentAffineFlow``: embedding = a latent law (a spline flow, or a known mixture); the
  head is an affine map x = A v + b of the latent v.
"""

from __future__ import annotations

import torch
import zuko
from torch import Tensor, nn

from sims.generators.gaussian_mixture import GaussianMixture
from sims.models.base import LOG_2PI, DensityModel, Standardiser, mlp


def spline_flow(features: int, context: int, hidden: int, transforms: int, bins: int) -> nn.Module:
    """A zuko neural spline flow; splines act on [-5, 5], so inputs come standardised."""
    return zuko.flows.NSF(
        features, context, bins=bins, transforms=transforms, hidden_features=[hidden] * 2
    )


class ConditionalFlow(DensityModel):
    """p(x | z) = NSF(x; context = embedding(z)).

    Args:
        d_x, d_z, d_h: dimensions of x, z and the embedding.
        standardiser: fixed standardisation of x (part of the head).
        embedding: a module z (N, d_z) -> (N, d_h); a fresh network when ``None``.
        hidden, transforms, bins: size of the networks and of the spline flow.
    """

    def __init__(
        self,
        d_x: int,
        d_z: int,
        d_h: int,
        standardiser: Standardiser,
        embedding: nn.Module | None = None,
        hidden: int = 64,
        transforms: int = 3,
        bins: int = 8,
    ):
        super().__init__()
        self.embedding = embedding if embedding is not None else mlp(d_z, d_h, hidden)
        self.standardiser = standardiser
        self.head = spline_flow(d_x, d_h, hidden, transforms, bins)

    def log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        u, log_jacobian = self.standardiser(x)
        return self.head(self.embedding(z)).log_prob(u) + log_jacobian

    @torch.no_grad()
    def sample(self, z: Tensor) -> Tensor:
        """One draw of x (N, d_x) per condition z (N, d_z), from torch's global generator."""
        u = self.head(self.embedding(z)).sample()
        return u * self.standardiser.scale + self.standardiser.shift


class LearnedFrame(nn.Module):
    """An orthonormal frame U (d, k): the Q factor of an unconstrained (d, k) matrix."""

    def __init__(self, d: int, k: int):
        super().__init__()
        self.matrix = nn.Parameter(torch.randn(d, k))

    def forward(self) -> Tensor:
        return torch.linalg.qr(self.matrix).Q


class FixedFrame(nn.Module):
    """A known orthonormal frame U (d, k), e.g. the truth's for the ``oracle`` method."""

    def __init__(self, frame: Tensor):
        super().__init__()
        self.register_buffer("frame", frame.to(torch.get_default_dtype()))

    def forward(self) -> Tensor:
        return self.frame


class SubspaceFlow(DensityModel):
    """p(x) = NSF(U^T u) N(P u; 0, s^2 I) |du/dx| with u the standardised x, P = I - U U^T.

    The complement of span(U) carries an isotropic Gaussian with one learned scale s, so the
    law has a density on all of R^{d_x}. An isotropic standardiser keeps span(U) meaningful
    across tasks.
    """

    def __init__(
        self,
        d_x: int,
        d_h: int,
        standardiser: Standardiser,
        embedding: nn.Module | None = None,
        hidden: int = 64,
        transforms: int = 3,
        bins: int = 8,
    ):
        super().__init__()
        self.embedding = embedding if embedding is not None else LearnedFrame(d_x, d_h)
        self.standardiser = standardiser
        self.head = spline_flow(d_h, 0, hidden, transforms, bins)
        self.log_noise = nn.Parameter(torch.zeros(()))
        self.d_complement = d_x - d_h

    def log_prob(self, x: Tensor, z: None = None) -> Tensor:
        u, log_jacobian = self.standardiser(x)
        frame = self.embedding()
        w = u @ frame
        residual = u - w @ frame.T
        complement = -0.5 * (residual**2).sum(-1) * torch.exp(-2 * self.log_noise)
        complement = complement - self.d_complement * (self.log_noise + 0.5 * LOG_2PI)
        return self.head().log_prob(w) + complement + log_jacobian

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws of x (n, d_x) from torch's global generator."""
        frame = self.embedding()
        w = self.head().sample((n,))
        noise = torch.randn(n, frame.shape[0]) * self.log_noise.exp()
        u = w @ frame.T + noise - (noise @ frame) @ frame.T
        return u * self.standardiser.scale + self.standardiser.shift


class LatentFlow(nn.Module):
    """A learned latent law on R^d: an unconditional spline flow."""

    def __init__(self, d: int, hidden: int = 64, transforms: int = 3, bins: int = 8):
        super().__init__()
        self.flow = spline_flow(d, 0, hidden, transforms, bins)

    def log_prob(self, v: Tensor) -> Tensor:
        return self.flow().log_prob(v)

    def sample(self, n: int) -> Tensor:
        return self.flow().sample((n,))


class FixedLatent(nn.Module):
    """A known latent Gaussian mixture, e.g. the truth's for the ``oracle`` method."""

    def __init__(self, law: GaussianMixture):
        super().__init__()
        self.register_buffer("log_weights", law.log_weights)
        self.register_buffer("means", law.means)
        self.register_buffer("covariances", law.covariances)

    def law(self) -> GaussianMixture:
        return GaussianMixture(self.log_weights, self.means, self.covariances)

    def log_prob(self, v: Tensor) -> Tensor:
        return self.law().log_prob(v.to(torch.float64)).to(v.dtype)

    def sample(self, n: int) -> Tensor:
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        return self.law().sample(n, generator).to(torch.get_default_dtype())


class LatentAffineFlow(DensityModel):
    """p(x): u = standardised x = A v + b with v from the latent law (the embedding part).

    log p(x) = log p_latent(A^{-1}(u - b)) - log |det A| + log |du/dx|; the head (A, b) has
    d_x^2 + d_x parameters.
    """

    def __init__(self, d_x: int, standardiser: Standardiser, embedding: nn.Module | None = None):
        super().__init__()
        self.embedding = embedding if embedding is not None else LatentFlow(d_x)
        self.standardiser = standardiser
        self.weight = nn.Parameter(torch.eye(d_x))
        self.bias = nn.Parameter(torch.zeros(d_x))

    def log_prob(self, x: Tensor, z: None = None) -> Tensor:
        u, log_jacobian = self.standardiser(x)
        v = torch.linalg.solve(self.weight, (u - self.bias).T).T
        log_det = torch.linalg.slogdet(self.weight).logabsdet
        return self.embedding.log_prob(v) - log_det + log_jacobian

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws of x (n, d_x) from torch's global generator."""
        u = self.embedding.sample(n) @ self.weight.T + self.bias
        return u * self.standardiser.scale + self.standardiser.shift
