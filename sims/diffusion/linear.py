"""The linear score model and the exact laws of its reverse-time sampler and its ODE.

With s(x, tau | z) = -P_tau (x - alpha_tau mu(z)), P_tau = (alpha_tau^2 S + sigma_tau^2 I)^-1
and mu(z) = C z + b, the reverse-time SDE is linear in x, so its output given z is Gaussian.
In reverse time r = 1 - tau, starting from N(0, I) at tau = 1,

    dx/dr = A_r x + lambda beta P alpha mu + sqrt((2 lambda - 1) beta) dW,
    A_r = beta (I / 2 - lambda P),

with lambda = 1 for the reverse SDE and lambda = 1/2 for the probability-flow ODE (half the
score, no noise). So the mean is M(r) mu(z) and the covariance K(r) with

    dM/dr = A_r M + lambda beta alpha P,   M(0) = 0;
    dK/dr = A_r K + K A_r^T + (2 lambda - 1) beta I,   K(0) = I.

Integrating these (adaptive Runge-Kutta, tight tolerance) gives the continuous-time
sampler's law and the ODE's; the Euler-Maruyama recursion of ``reverse_sde_sample`` is
linear too, and its law follows the same update step by step. All are ``LinearGaussianFit``
laws of x given z.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy.integrate import quad, solve_ivp
from torch import Tensor

from sims.metrics import linear_gaussian_kl
from sims.models.linear_gaussian import LinearGaussianFit
from sims.sde import VPSDE


@dataclass(frozen=True)
class LinearScore:
    """s(x, tau | z) = -(alpha^2 S + sigma^2 I)^-1 (x - alpha (C z + b)), float64.

    Attributes:
        coefficients: C (d_x, d_z); bias: b (d_x,); covariance: S (d_x, d_x), positive definite.
    """

    coefficients: Tensor
    bias: Tensor
    covariance: Tensor
    sde: VPSDE

    @classmethod
    def of_truth(cls, params: dict[str, Tensor], sde: VPSDE) -> LinearScore:
        """The exact score of a ``linear_gaussian`` task from its ``params`` (W, B, b, Sigma)."""
        p = {name: value.cpu() for name, value in params.items()}
        return cls(p["B"] @ p["W"], p["b"], p["Sigma"], sde)

    @cached_property
    def _spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (d_x,) and eigenvectors (d_x, d_x) of S."""
        return np.linalg.eigh(self.covariance.detach().cpu().numpy())

    def precision_array(self, tau: float) -> np.ndarray:
        """P_tau = (alpha^2 S + sigma^2 I)^-1, (d_x, d_x), from one eigendecomposition of S
        (the exact laws evaluate it thousands of times)."""
        values, vectors = self._spectrum
        alpha, sigma = self.sde.alpha(tau), self.sde.sigma(tau)
        return (vectors / (alpha**2 * values + sigma**2)) @ vectors.T

    def precision(self, tau: float) -> Tensor:
        """P_tau, (d_x, d_x), float64."""
        return torch.from_numpy(self.precision_array(tau))

    def __call__(self, x: Tensor, z: Tensor, tau: float) -> Tensor:
        mean = self.sde.alpha(tau) * (z @ self.coefficients.T + self.bias)
        return -(x - mean) @ self.precision(tau).to(x)

    def at(self, tau: float) -> LinearGaussianFit:
        """The law whose score this is at tau: N(alpha (C z + b), alpha^2 S + sigma^2 I)."""
        alpha = self.sde.alpha(tau)
        return LinearGaussianFit(
            alpha * self.coefficients, alpha * self.bias, torch.linalg.inv(self.precision(tau))
        )


def _law(score: LinearScore, mean_map: np.ndarray, covariance: np.ndarray) -> LinearGaussianFit:
    mean_map = torch.from_numpy(mean_map)
    return LinearGaussianFit(
        mean_map @ score.coefficients, mean_map @ score.bias, torch.from_numpy(covariance)
    )


def _drift(
    score: LinearScore, tau: float, share: float = 1.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """A (d, d), the mean forcing share beta alpha P (d, d), and beta at tau, for the
    reverse SDE (``share`` 1) or the probability-flow ODE (1/2): the SDE's reverse drift,
    negated for the reverse time r = 1 - tau, of the score's linear part -P and of its
    forcing alpha P."""
    sde = score.sde
    precision = score.precision_array(tau)
    d = precision.shape[0]
    a = -sde.reverse_drift(np.eye(d), -precision, tau, share)
    forcing = -sde.reverse_drift(np.zeros((d, d)), sde.alpha(tau) * precision, tau, share)
    return a, forcing, sde.beta(tau)


def _continuous_law(
    score: LinearScore, tau0: float, share: float, rtol: float, atol: float
) -> LinearGaussianFit:
    """Exact law at tau_0 of the reverse-time dynamics with ``share`` of the score (1: the
    SDE, 1/2: the ODE), started from N(0, I) at tau = 1."""
    d = len(score.bias)
    noise = (2 * share - 1) * np.eye(d)

    def rates(r: float, state: np.ndarray) -> np.ndarray:
        mean_map, covariance = state[: d * d].reshape(d, d), state[d * d :].reshape(d, d)
        a, forcing, beta = _drift(score, min(max(1.0 - r, 0.0), 1.0), share)
        d_mean = a @ mean_map + forcing
        d_covariance = a @ covariance + covariance @ a.T + beta * noise
        return np.concatenate([d_mean.ravel(), d_covariance.ravel()])

    start = np.concatenate([np.zeros(d * d), np.eye(d).ravel()])
    solution = solve_ivp(rates, (0.0, 1.0 - tau0), start, method="DOP853", rtol=rtol, atol=atol)
    final = solution.y[:, -1]
    return _law(score, final[: d * d].reshape(d, d), final[d * d :].reshape(d, d))


def sampler_law(
    score: LinearScore, tau0: float = 1e-3, rtol: float = 1e-10, atol: float = 1e-12
) -> LinearGaussianFit:
    """Exact law at tau_0 of the continuous-time reverse SDE driven by ``score``."""
    return _continuous_law(score, tau0, 1.0, rtol, atol)


def ode_law(
    score: LinearScore, tau0: float = 1e-3, rtol: float = 1e-10, atol: float = 1e-12
) -> LinearGaussianFit:
    """Exact law at tau_0 of the probability-flow ODE driven by ``score``, started from
    N(0, I): the law whose log-density ``ode_log_prob`` computes."""
    return _continuous_law(score, tau0, 0.5, rtol, atol)


def euler_maruyama_law(
    score: LinearScore, tau0: float = 1e-3, steps: int = 1000
) -> LinearGaussianFit:
    """Exact law at tau_0 of ``reverse_sde_sample`` with ``score`` and ``steps`` steps."""
    d = len(score.bias)
    dtau = (1.0 - tau0) / steps
    mean_map, covariance = np.zeros((d, d)), np.eye(d)
    for step in range(steps):
        a, forcing, beta = _drift(score, 1.0 - step * dtau)
        transition = np.eye(d) + a * dtau
        mean_map = transition @ mean_map + forcing * dtau
        covariance = transition @ covariance @ transition.T + beta * dtau * np.eye(d)
    return _law(score, mean_map, covariance)


def prior_kl_exact(truth: LinearScore) -> float:
    """KL(p_1 || N(0, I)) in nats, exactly, for the law whose score is ``truth``, averaged
    over z ~ N(0, I)."""
    law = truth.at(1.0)
    d = len(law.bias)
    zero = torch.zeros_like(law.coefficients)
    return linear_gaussian_kl(
        law.coefficients, law.bias, law.covariance, zero, zero[:, 0], torch.eye(d).to(zero)
    ).item()


def score_error_exact(
    score: LinearScore, truth: LinearScore, tau0: float = 1e-3, rtol: float = 1e-10
) -> float:
    """int_{tau_0}^1 beta(tau) E |grad log p_tau - s|^2 dtau in nats, exactly (adaptive
    quadrature over tau of a closed form), x ~ p_tau(. | z) of ``truth``, z ~ N(0, I).

    With the truth's precision P and mean alpha m(z), the model's P_hat and alpha m_hat(z),
    the score gap is (P_hat - P)(x - alpha m) + alpha P_hat (m - m_hat), so its mean square is
    tr((P_hat - P) P^-1 (P_hat - P)) + alpha^2 (|P_hat db|^2 + |P_hat dC|_F^2), with
    (dC, db) the gap of the mean maps.
    """
    gap_c = (truth.coefficients - score.coefficients).detach().numpy()
    gap_b = (truth.bias - score.bias).detach().numpy()

    def integrand(tau: float) -> float:
        precision = truth.precision_array(tau)
        fitted = score.precision_array(tau)
        difference = fitted - precision
        spread = np.trace(difference @ np.linalg.solve(precision, difference))
        mean = np.sum((fitted @ gap_b) ** 2) + np.sum((fitted @ gap_c) ** 2)
        return score.sde.beta(tau) * (spread + score.sde.alpha(tau) ** 2 * mean)

    value, _ = quad(integrand, tau0, 1.0, epsabs=0.0, epsrel=rtol, limit=200)
    return value
