"""The variance-preserving diffusion forward process (VP-SDE).

    dx = -1/2 beta(tau) x dtau + sqrt(beta(tau)) dW,   tau in [0, 1],

with beta linear from ``beta_min`` to ``beta_max``. Diffusion time is ``tau`` throughout the
suite (``t`` names the target task). Given x_0, x_tau ~ N(alpha_tau x_0, sigma_tau^2 I) with
alpha_tau = exp(-1/2 int_0^tau beta) and sigma_tau^2 = 1 - alpha_tau^2, so a Gaussian
N(m, S) is carried to N(alpha m, alpha^2 S + sigma^2 I) and a mixture component by component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def check_tau(tau: float) -> float:
    """Return ``tau`` as a float, or raise ``ValueError`` if it lies outside [0, 1]."""
    tau = float(tau)
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"diffusion time tau={tau!r} is outside [0, 1]")
    return tau


@dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE with a linear noise schedule (Song et al., 2021).

    Attributes:
        beta_min: beta(0), in units of 1/time.
        beta_max: beta(1), in units of 1/time.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self):
        if not 0.0 < self.beta_min <= self.beta_max:
            raise ValueError(
                f"need 0 < beta_min <= beta_max, got beta_min={self.beta_min!r}, "
                f"beta_max={self.beta_max!r}"
            )

    def beta(self, tau: float) -> float:
        """Noise rate beta(tau)."""
        tau = check_tau(tau)
        return self.beta_min + tau * (self.beta_max - self.beta_min)

    def integrated_beta(self, tau: float) -> float:
        """int_0^tau beta(s) ds."""
        tau = check_tau(tau)
        return self.beta_min * tau + 0.5 * tau**2 * (self.beta_max - self.beta_min)

    def alpha(self, tau: float) -> float:
        """Signal scale alpha_tau = exp(-1/2 int_0^tau beta)."""
        return math.exp(-0.5 * self.integrated_beta(tau))

    def sigma(self, tau: float) -> float:
        """Noise scale sigma_tau = sqrt(1 - alpha_tau^2), accurate for small tau."""
        return math.sqrt(-math.expm1(-self.integrated_beta(tau)))

    def alpha_sigma(self, tau: Tensor) -> tuple[Tensor, Tensor]:
        """alpha_tau and sigma_tau for a tensor of times (no range check), shapes of ``tau``."""
        integral = self.beta_min * tau + 0.5 * tau**2 * (self.beta_max - self.beta_min)
        return torch.exp(-0.5 * integral), torch.sqrt(-torch.expm1(-integral))

    def sde(self, x: Tensor, tau: float) -> tuple[Tensor, float]:
        """Drift f(x, tau) = -1/2 beta x, shape of ``x``, and diffusion g(tau) = sqrt(beta)."""
        beta = self.beta(tau)
        return -0.5 * beta * x, math.sqrt(beta)

    def reverse_drift(self, x, score, tau: float, share: float = 1.0):
        """Drift f(x, tau) - share g(tau)^2 s of the dynamics run backwards in tau: the
        reverse SDE (``share`` 1) or the probability-flow ODE (1/2), for x and the score s at
        x (tensors or arrays of one shape; also their linear parts, which the drift maps
        alike); shape of ``x``."""
        drift, diffusion = self.sde(x, tau)
        return drift - share * diffusion**2 * score

    def probability_flow_drift(self, x, score, tau: float):
        """Drift f(x, tau) - g(tau)^2 s / 2 of the probability-flow ODE, shape of ``x``."""
        return self.reverse_drift(x, score, tau, share=0.5)

    def marginal_prob(self, x0: Tensor, tau: float) -> tuple[Tensor, float]:
        """Mean (shape of ``x0``) and standard deviation of x_tau given x_0."""
        return self.alpha(tau) * x0, self.sigma(tau)

    def marginal(self, mean: Tensor, cov: Tensor, tau: float) -> tuple[Tensor, Tensor]:
        """Carry N(mean, cov) to time tau.

        Args:
            mean: (..., d) means.
            cov: (..., d, d) covariances.

        Returns:
            (alpha mean, alpha^2 cov + sigma^2 I), shapes of the inputs.
        """
        alpha, sigma = self.alpha(tau), self.sigma(tau)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return alpha * mean, alpha**2 * cov + sigma**2 * eye

    def prior_logp(self, x: Tensor) -> Tensor:
        """Log-density of the prior N(0, I) at ``x`` of shape (..., d); returns (...)."""
        d = x.shape[-1]
        return -0.5 * (x**2).sum(-1) - 0.5 * d * math.log(2 * math.pi)
