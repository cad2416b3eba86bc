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
- ``LatentAffineScore``: embedding = a Gaussian-mixture latent law; the head is the affine
  map x = A v + b, and the score is the noised mixture's, in closed form.
- ``LinearScoreModel``: the well-specified linear score of ``linear_gaussian``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from sims.generators.gaussian_mixture import GaussianMixture
from sims.models import small_matrices
from sims.models.base import TrainedModel, mlp
from sims.models.flows import LearnedFrame, complement_scale
from sims.models.latent import MixtureLatent, moment_matched_head
from sims.models.linear_gaussian import add_linear_gaussian_parameters, lower_cholesky
from sims.sde import VPSDE


def _times(tau: float | Tensor, rows: int, like: Tensor) -> Tensor:
    """tau as a column (rows, 1) in the dtype and device of ``like``."""
    if isinstance(tau, Tensor):
        return tau.reshape(rows, 1).to(like)
    return torch.full((rows, 1), float(tau), dtype=like.dtype, device=like.device)


class ScoreModel(TrainedModel):
    """Shared by the score models: the noise prediction, the score and the DSM loss."""

    evaluation = "score"

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
    P = I - U U^T: a network on the subspace and an exact Gaussian score off it.

    A fresh frame starts at the principal directions of the training x (n, d_x) ``data``,
    and s_0 at the data's spread off the frame.
    """

    def __init__(
        self,
        d_x: int,
        d_h: int,
        data: Tensor,
        embedding: nn.Module | None = None,
        hidden: int = 128,
        layers: int = 3,
        sde: VPSDE | None = None,
        tau0: float = 1e-3,
    ):
        super().__init__(d_x, sde or VPSDE(), tau0)
        x = data.to(torch.get_default_dtype())
        self.embedding = embedding if embedding is not None else LearnedFrame.principal(x, d_h)
        self.head = mlp(d_h + 2, d_h, hidden, layers)
        with torch.no_grad():
            floor = complement_scale(x, self.embedding().to(x))
        self.log_floor = nn.Parameter(floor.log())

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

    Its training loss is the denoising score matching loss of ``ScoreModel`` with the
    expectation over the noise taken in closed form: with r = x_0 - m(z) and
    M = (alpha^2 S + sigma^2 I)^-1, E_eps |eps_hat - eps|^2 = sigma^2 alpha^2 |M r|^2 +
    tr((sigma^2 M - I)^2); the expectation over tau ~ U[tau_0, 1] is a Gauss-Legendre sum of
    ``quadrature_nodes`` nodes. The loss is then a deterministic function of the samples, and
    full-batch L-BFGS takes the model to its minimiser rather than near it. Its mean over
    the rows needs only their second moment R = mean(r r^T), as mean |M r|^2 = tr(M R M^T),
    so that memory grows with the rows, not with rows times nodes.
    """

    closed_form = "linear_score"

    def __init__(
        self,
        d_x: int,
        d_z: int,
        d_h: int,
        embedding: nn.Module | None = None,
        sde: VPSDE | None = None,
        tau0: float = 1e-3,
        quadrature_nodes: int = 64,
    ):
        super().__init__(d_x, sde or VPSDE(), tau0)
        self.noise_features = 0
        add_linear_gaussian_parameters(self, d_x, d_z, d_h, embedding)
        nodes, weights = np.polynomial.legendre.leggauss(quadrature_nodes)
        tau = tau0 + (1 - tau0) * (nodes + 1) / 2
        self.register_buffer("quadrature_tau", torch.from_numpy(tau))
        self.register_buffer("quadrature_weight", torch.from_numpy(weights / 2))

    def _moments(self, z: Tensor, tau: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The mean part m(z) (N, d_x), and at times tau (..., 1): alpha, sigma (..., 1) and
        M = (alpha^2 S + sigma^2 I)^-1 (..., d_x, d_x)."""
        alpha, sigma = self.sde.alpha_sigma(tau)
        eye = torch.eye(self.bias.shape[0], dtype=self.bias.dtype, device=self.bias.device)
        factor = lower_cholesky(self.cholesky_raw)
        covariance = alpha[..., None] ** 2 * (factor @ factor.T) + sigma[..., None] ** 2 * eye
        mean = self.embedding(z) @ self.weight.T + self.bias
        return mean, alpha, sigma, torch.linalg.inv(covariance)

    def predict_noise(self, x: Tensor, z: Tensor, tau: Tensor) -> Tensor:
        mean, alpha, sigma, precision = self._moments(z, tau)
        centred = (x - alpha * mean).unsqueeze(-1)
        return sigma * (precision @ centred).squeeze(-1)

    def forward(self, x: Tensor, z: Tensor, weight: Tensor, noise: Tensor) -> Tensor:
        """The expected denoising score matching loss (over noise and tau) of rows x (N, d_x),
        z (N, d_z) with weight (N,); ``noise`` is not used."""
        mean, alpha, sigma, precision = self._moments(z, self.quadrature_tau[:, None])
        eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        residual = x - mean
        second = residual.T @ (residual * weight[:, None]) / weight.sum()  # (d, d)
        signal = ((precision @ second) * precision).sum((-1, -2))  # tr(M R M^T), (Q,)
        signal = signal * (sigma * alpha).squeeze(-1) ** 2
        shrink = sigma[..., None] ** 2 * precision - eye
        trace = (shrink**2).sum((-1, -2))  # (Q,)
        return self.quadrature_weight @ (signal + trace)


class LatentAffineScore(ScoreModel):
    """The score of x = A v + b with v from a Gaussian-mixture latent law (the embedding part),
    in closed form at every tau: x_tau follows the mixture of
    N(alpha (A m_k + b), alpha^2 A C_k A^T + sigma^2 I). The head (A, b) has d_x^2 + d_x
    parameters.

    The head starts at ``moment_matched_head`` on the training x (n, d_x) ``data``, over
    ``candidates`` random rotations of either determinant sign (none for a fresh latent law).

    Args:
        d_x: dimension; data: the training x (n, d_x); embedding: the latent law (a module
        with ``components()``), a fresh ``MixtureLatent`` of ``components`` components when
        ``None``; sde, tau0: the forward process and the early-stopping time of training.
    """

    def __init__(
        self,
        d_x: int,
        data: Tensor,
        embedding: nn.Module | None = None,
        components: int = 8,
        sde: VPSDE | None = None,
        tau0: float = 1e-3,
        candidates: int = 128,
        latent_draws: int = 4096,
        scored_rows: int = 2048,
    ):
        super().__init__(d_x, sde or VPSDE(), tau0)
        fresh = embedding is None
        self.embedding = MixtureLatent(d_x, components) if fresh else embedding
        x = data[:scored_rows].to(torch.float64)

        def fit(weight: Tensor, bias: Tensor) -> Tensor:
            law = GaussianMixture(*(c.to(x) for c in self.embedding.components()))
            return law.affine(weight, bias).log_prob(x).mean()

        searched = 0 if fresh else candidates
        start = moment_matched_head(x, self.embedding, fit, searched, latent_draws)
        self.weight, self.bias = (nn.Parameter(t.to(torch.get_default_dtype())) for t in start)

    def predict_noise(self, x: Tensor, z: None, tau: Tensor) -> Tensor:
        log_weights, means, covariances = (c.to(x) for c in self.embedding.components())
        alpha, sigma = self.sde.alpha_sigma(tau)  # (N, 1)
        eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
        centres = means @ self.weight.T + self.bias  # (K, d)
        spreads = self.weight @ covariances @ self.weight.T  # (K, d, d)
        covariance = alpha[..., None, None] ** 2 * spreads + sigma[..., None, None] ** 2 * eye
        factor = small_matrices.cholesky(covariance)  # (N, K, d, d)
        offset = x[:, None, :] - alpha[:, None] * centres  # (N, K, d)
        solved = small_matrices.cholesky_solve(factor, offset)  # (N, K, d)
        log_dets = 2 * factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_components = -0.5 * ((offset * solved).sum(-1) + log_dets)
        responsibilities = torch.softmax(torch.log_softmax(log_weights, -1) + log_components, -1)
        score = -(responsibilities[..., None] * solved).sum(-2)
        return -sigma * score
