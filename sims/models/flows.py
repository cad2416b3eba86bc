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

from sims.models.base import LOG_2PI, DensityModel, Standardiser, mlp
from sims.models.latent import moment_matched_head
from sims.models.splines import spline_log_prob


def spline_flow(features: int, context: int, hidden: int, transforms: int, bins: int) -> nn.Module:
    """A zuko neural spline flow; splines act on [-5, 5], so inputs come standardised.
    Its log-density is ``sims.models.splines.spline_log_prob``; zuko samples it."""
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
        return spline_log_prob(self.head, u, self.embedding(z)) + log_jacobian

    @torch.no_grad()
    def sample(self, z: Tensor) -> Tensor:
        """One draw of x (N, d_x) per condition z (N, d_z), from torch's global generator."""
        u = self.head(self.embedding(z)).sample()
        return u * self.standardiser.scale + self.standardiser.shift


class LearnedFrame(nn.Module):
    """An orthonormal frame U (d, k): the Q factor of an unconstrained (d, k) matrix.

    ``LearnedFrame.principal(x, k)`` starts it at the top-k principal directions of x (n, d)
    (uncentred: the models put the complement's mean at 0), which gradient steps would
    otherwise take thousands of steps to find from a random frame.
    """

    def __init__(self, d: int, k: int):
        super().__init__()
        self.matrix = nn.Parameter(torch.randn(d, k))

    @classmethod
    def principal(cls, x: Tensor, k: int) -> LearnedFrame:
        frame = cls(x.shape[1], k)
        with torch.no_grad():
            frame.matrix.copy_(torch.linalg.eigh(x.T @ x / len(x)).eigenvectors[:, -k:].flip(-1))
        return frame

    def forward(self) -> Tensor:
        return torch.linalg.qr(self.matrix).Q


class FixedFrame(nn.Module):
    """A known orthonormal frame U (d, k), e.g. the truth's for the ``oracle`` method."""

    def __init__(self, frame: Tensor):
        super().__init__()
        self.register_buffer("frame", frame.to(torch.get_default_dtype()))

    def forward(self) -> Tensor:
        return self.frame


def complement_scale(x: Tensor, frame: Tensor) -> Tensor:
    """Root mean square per coordinate of x (n, d) off span(frame) (d, k), a scalar; 1 when
    k = d."""
    d, k = frame.shape
    if k == d:
        return torch.ones((), dtype=x.dtype, device=x.device)
    residual = x - (x @ frame) @ frame.T
    return ((residual**2).sum() / (len(x) * (d - k))).sqrt().clamp(min=1e-6)


class SubspaceFlow(DensityModel):
    """p(x) = NSF(U^T u) N(P u; 0, s^2 I) |du/dx| with u the standardised x, P = I - U U^T.

    The complement of span(U) carries an isotropic Gaussian with one learned scale s, so the
    law has a density on all of R^{d_x}. An isotropic standardiser keeps span(U) meaningful
    across tasks.

    Args:
        d_x, d_h: dimensions of x and of the subspace.
        standardiser: fixed standardisation of x (part of the head).
        data: the training x (n, d_x); a fresh frame starts at its principal directions, and
            s at its spread off the frame.
        embedding: the frame, a module () -> U (d_x, d_h); fresh when ``None``.
        hidden, transforms, bins: size of the spline flow.
    """

    def __init__(
        self,
        d_x: int,
        d_h: int,
        standardiser: Standardiser,
        data: Tensor,
        embedding: nn.Module | None = None,
        hidden: int = 64,
        transforms: int = 3,
        bins: int = 8,
    ):
        super().__init__()
        u, _ = standardiser(data)
        self.embedding = embedding if embedding is not None else LearnedFrame.principal(u, d_h)
        self.standardiser = standardiser
        self.head = spline_flow(d_h, 0, hidden, transforms, bins)
        with torch.no_grad():
            scale = complement_scale(u, self.embedding().to(u))
        self.log_noise = nn.Parameter(scale.log().to(torch.get_default_dtype()))
        self.d_complement = d_x - d_h

    def log_prob(self, x: Tensor, z: None = None) -> Tensor:
        u, log_jacobian = self.standardiser(x)
        frame = self.embedding()
        w = u @ frame
        residual = u - w @ frame.T
        complement = -0.5 * (residual**2).sum(-1) * torch.exp(-2 * self.log_noise)
        complement = complement - self.d_complement * (self.log_noise + 0.5 * LOG_2PI)
        return spline_log_prob(self.head, w) + complement + log_jacobian

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws of x (n, d_x) from torch's global generator."""
        frame = self.embedding()
        w = self.head().sample((n,))
        noise = torch.randn(n, frame.shape[0], device=frame.device) * self.log_noise.exp()
        u = w @ frame.T + noise - (noise @ frame) @ frame.T
        return u * self.standardiser.scale + self.standardiser.shift


class LatentFlow(nn.Module):
    """A learned latent law on R^d: an unconditional spline flow."""

    def __init__(self, d: int, hidden: int = 64, transforms: int = 3, bins: int = 8):
        super().__init__()
        self.flow = spline_flow(d, 0, hidden, transforms, bins)

    def log_prob(self, v: Tensor) -> Tensor:
        return spline_log_prob(self.flow, v)

    def sample(self, n: int) -> Tensor:
        return self.flow().sample((n,))


class LatentAffineFlow(DensityModel):
    """p(x): u = standardised x = A v + b with v from the latent law (the embedding part).

    log p(x) = log p_latent(A^{-1}(u - b)) - log |det A| + log |du/dx|; the head (A, b) has
    d_x^2 + d_x parameters.

    The head starts at ``moment_matched_head`` on the training x (n, d_x) ``data``, over
    ``candidates`` random rotations of either determinant sign (none for a fresh latent flow).
    """

    def __init__(
        self,
        d_x: int,
        standardiser: Standardiser,
        data: Tensor,
        embedding: nn.Module | None = None,
        candidates: int = 128,
        latent_draws: int = 4096,
        scored_rows: int = 2048,
    ):
        super().__init__()
        self.standardiser = standardiser
        fresh = embedding is None
        self.embedding = LatentFlow(d_x) if fresh else embedding
        u = standardiser(data)[0][:scored_rows]
        fit = lambda weight, bias: self._log_prob_standardised(u, weight, bias).mean()  # noqa: E731
        searched = 0 if fresh else candidates
        start = moment_matched_head(u, self.embedding, fit, searched, latent_draws)
        self.weight, self.bias = (nn.Parameter(t.to(torch.get_default_dtype())) for t in start)

    def _log_prob_standardised(self, u: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """log p(u) (N,) of standardised rows u (N, d_x) under the head (weight, bias)."""
        v = torch.linalg.solve(weight, (u - bias).T).T
        return self.embedding.log_prob(v) - torch.linalg.slogdet(weight).logabsdet

    def log_prob(self, x: Tensor, z: None = None) -> Tensor:
        u, log_jacobian = self.standardiser(x)
        return self._log_prob_standardised(u, self.weight, self.bias) + log_jacobian

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws of x (n, d_x) from torch's global generator."""
        u = self.embedding.sample(n) @ self.weight.T + self.bias
        return u * self.standardiser.scale + self.standardiser.shift
