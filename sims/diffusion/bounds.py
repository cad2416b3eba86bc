"""The exact score error and the path bound on KL, against the closed-form true score.

    score error  = int_{tau_0}^1 beta(tau) E_{p_tau} |s(x, tau) - grad log p_tau(x)|^2 dtau
    path bound   = KL(p_1 || N(0, I)) + 1/2 score error  >=  KL(p_tau_0 || p_hat_SDE)

(Song, Durkan, Murray & Ermon 2021, Thm 1). The tau integral uses Gauss-Legendre nodes in
log tau, which place nodes where the integrand changes fastest (near tau_0); each node has
its own fresh truth samples, so the standard error adds over nodes (quadrature error is not
in it: raise ``nodes`` to see it vanish).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sims.diffusion.sampling import Score
from sims.generators.tasks import Task
from sims.metrics import Estimate, divergences


def score_error(
    score: Score, truth: Task, tau0: float = 1e-3, n: int = 2000, seed: int = 0, nodes: int = 32
) -> Estimate:
    """int beta E |s - grad log p_tau|^2 dtau over [tau_0, 1], in nats, with its standard
    error; z drawn from the truth for conditional tasks."""
    sde = truth.sde
    points, weights = np.polynomial.legendre.leggauss(nodes)
    low = math.log(tau0)
    log_taus = low + (points + 1) * (-low) / 2
    total, variance = 0.0, 0.0
    for i, (log_tau, weight) in enumerate(zip(log_taus, weights * (-low) / 2, strict=True)):
        tau = math.exp(log_tau)
        z, x = truth.sample(n, seed * nodes + i, tau)
        with torch.no_grad():
            squared = ((score(x, z, tau) - truth.score(x, z, tau)) ** 2).sum(-1)
        factor = weight * sde.beta(tau) * tau
        total += factor * squared.mean().item()
        variance += (factor * squared.std().item()) ** 2 / n
    return Estimate(float(total), math.sqrt(variance))


def prior_kl(truth: Task, n: int = 20_000, seed: int = 0) -> Estimate:
    """KL(p_1 || N(0, I)) by Monte Carlo over truth samples at tau = 1."""
    return divergences(truth, lambda x, z: truth.sde.prior_logp(x), n=n, seed=seed, tau=1.0)["kl"]


def path_bound(
    score: Score, truth: Task, tau0: float = 1e-3, n: int = 2000, seed: int = 0, nodes: int = 32
) -> Estimate:
    """KL(p_1 || N(0, I)) + 1/2 score error: the bound on KL(p_tau_0 || reverse-SDE law)."""
    return bound_from(prior_kl(truth, seed=seed), score_error(score, truth, tau0, n, seed, nodes))


def bound_from(prior: Estimate, error: Estimate) -> Estimate:
    """The path bound from its two independent estimates: prior KL + 1/2 score error."""
    return Estimate(prior.value + 0.5 * error.value, math.hypot(prior.se, 0.5 * error.se))
