"""Score models s(x, tau | z) with an explicit embedding part and a head, trained by
denoising score matching.

Each predicts the noise eps of x_tau = alpha_tau x_0 + sigma_tau eps, and its score is
-eps_hat / sigma_tau. The training loss is E |eps_hat(x_tau, tau) - eps|^2 with
tau = tau_0 + (1 - tau_0) U, U uniform: denoising score matching weighted by sigma_tau^2.
The engine supplies the randomness (U through the normal CDF, and eps) from each member's
own stream.

- ``ConditionalScore``: embedding z -> R^{d_h} (a network, or a known map) feeding a
  network of (x_tau, e, tau).
- ``SubspaceScore``: embedding = an orthonormal frame U; the head scores w = U^T x with a
  network and the orthogonal complement analytically, as N(0, alpha^2 s_0^2 + sigma^2) with
  a learned floor s_0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sims.models.base import TrainedModel, mlp
from sims.models.flows import LearnedFrame
from sims.models.linear_gaussian import add_linear_gaussian_parameters, lower_cholesky
from sims.sde import VPSDE


def _times(tau: float | Tensor, rows: int, like: Tensor) -> Tensor:
    """tau as a column (rows, 1) in the dtype and device of ``like``."""
    if isinstance(tau, Tensor):
        return tau.reshape(rows, 1).to(like)
    return torch.full((rows, 1), float(tau), dtype=like.dtype, device=like.device)


class ScoreModel(TrainedModel):
    """Shared by the score models: the noise prediction, the score and the DSM loss."""

    def __init__(self, d_x: int, sde: VPSDE, tau0: float):
        super().__init__()
        self.sde, self.tau0 = sde, tau0
        self.noise_features = d_x + 1

    def predict_noise(self, x: Tensor, z: Tensor | None, tau: Tensor) -> Tensor:
        """eps_hat (N, d_x) at x_tau (N, d_x), tau (N, 1)."""
        raise NotImplementedError

    def score(self, x: Tensor, z: Tensor | None, tau: float | Tensor) -> Tensor:
        """s(x, tau | z) = -eps_hat / sigma_tau, (N, d_x); tau a float or (N,) times."""
        tau = _times(tau, x.shape[0], x)
        _, sigma = self.sde.alpha_sigma(tau)
        return -self.predict_noise(x, z, tau) / sigma

    def forward(self, x: Tensor, z: Tensor | None, weight: Tensor, noise: Tensor) -> Tensor:
        """Weighted denoising score matching loss on rows x (N, d_x) with noise (N, d_x + 1)."""
        uniform = 0.5 * (1 + torch.erf(noise[:, :1] / math.sqrt(2)))
        tau = self.tau0 + (1 - self.tau0) * uniform
        alpha, sigma = self.sde.alpha_sigma(tau)
        eps = noise[:, 1:]
        squared = ((self.predict_noise(alpha * x + sigma * eps, z, tau) - eps) ** 2).sum(-1)
        return (squared * weight).sum() / weight.sum()


def _time_features(tau: Tensor, sde: VPSDE) -> Tensor:
    """(N, 2): tau and log sigma_tau."""
    return torch.cat([tau, torch.log(sde.alpha_sigma(tau)[1])], dim=-1)


class ConditionalScore(ScoreModel):
    """eps_hat = network(x_tau, embedding(z), tau, log sigma_tau).

    Args:
        d_x, d_z, d_h: dimensions; embedding: z -> R^{d_h}, a fresh network when ``None``;
        hidden, layers: size of the networks; sde, tau0: the forward process and the
        early-stopping time of training.
    """

    def __init__(
        self,
        d_x: int,
        d_z: int,
        d_h: int,
        embedding: nn.Module | None = None,
        hidden: int = 128,
        layers: int = 3,
        sde: VPSDE | None = None,
        tau0: float = 1e-3,
    ):
        super().__init__(d_x, sde or VPSDE(), tau0)
        self.embedding = embedding if embedding is not None else mlp(d_z, d_h, hidden)
        self.head = mlp(d_x + d_h + 2, d_x, hidden, layers)

    def predict_noise(self, x: Tensor, z: Tensor, tau: Tensor) -> Tensor:
        features = [x, self.embedding(z), _time_features(tau, self.sde)]
        return self.head(torch.cat(features, dim=-1))


class SubspaceScore(ScoreModel):
    """eps_hat = U eps_w(U^T x_tau, tau) + sigma P x_tau / (alpha^2 s_0^2 + sigma^2),
    P = I - U U^T: a network on the subspace and an exact Gaussian score off it."""

    def __init__(
        self,
        d_x: int,
        d_h: int,
        embedding: nn.Module | None = None,
        hidden: int = 128,
        layers: int = 3,
        sde: VPSDE | None = None,
        tau0: float = 1e-3,
    ):
        super().__init__(d_x, sde or VPSDE(), tau0)
        self.embedding = embedding if embedding is not None else LearnedFrame(d_x, d_h)
        self.head = mlp(d_h + 2, d_h, hidden, layers)
        self.log_floor = nn.Parameter(torch.tensor(-1.0))

    def predict_noise(self, x: Tensor, z: None, tau: Tensor) -> Tensor:
        frame = self.embedding()
        w = x @ frame
        alpha, sigma = self.sde.alpha_sigma(tau)
        on = self.head(torch.cat([w, _time_features(tau, self.sde)], dim=-1)) @ frame.T
        variance = alpha**2 * torch.exp(2 * self.log_floor) + sigma**2
        return on + sigma * (x - w @ frame.T) / variance


class LinearScoreModel(ScoreModel):
    """The well-specified score of ``linear_gaussian``, float64:

        s(x, tau | z) = -(alpha^2 S + sigma^2 I)^-1 (x - alpha (B W z + b)),  S = L L^T,

    with the embedding W (d_h, d_z) and the head (B, b, L); ``linear_fit`` gives (B W, b, S),
    the parameters of the ``sims.diffusion.linear.LinearScore`` whose sampler law is exact.
    """

    def __init__(
        self,
        d_x: int,
        d_z: int,
        d_h: int,
        embedding: nn.Module | None = None,
        sde: VPSDE | None = None,
        tau0: float = 1e-3,
    ):
        super().__init__(d_x, sde or VPSDE(), tau0)
        add_linear_gaussian_parameters(self, d_x, d_z, d_h, embedding)

    def predict_noise(self, x: Tensor, z: Tensor, tau: Tensor) -> Tensor:
        alpha, sigma = self.sde.alpha_sigma(tau)
        eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        factor = lower_cholesky(self.cholesky_raw)
        covariance = alpha[..., None] ** 2 * (factor @ factor.T) + sigma[..., None] ** 2 * eye
        mean = alpha * (self.embedding(z) @ self.weight.T + self.bias)
        score = -torch.linalg.solve(covariance, (x - mean).unsqueeze(-1)).squeeze(-1)
        return -sigma * score
