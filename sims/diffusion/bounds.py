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
from collections.abc import Sequence

import numpy as np
import torch

from sims.diffusion.sampling import Score, one_member
from sims.generators.tasks import Task, stacked_samples
from sims.metrics import Estimate, divergences


def score_error(
    score: Score, truth: Task, tau0: float = 1e-3, n: int = 2000, seed: int = 0, nodes: int = 32
) -> Estimate:
    """int beta E |s - grad log p_tau|^2 dtau over [tau_0, 1], in nats, with its standard
    error; z drawn from the truth for conditional tasks."""
    return score_errors(one_member(score), [truth], [seed], tau0, n, nodes)[0]


def score_errors(
    score: Score,
    truths: Sequence[Task],
    seeds: Sequence[int],
    tau0: float = 1e-3,
    n: int = 2000,
    nodes: int = 32,
) -> list[Estimate]:
    """``score_error`` of E models at once, member i against ``truths[i]`` on the samples
    of ``seeds[i]`` (the samples a lone ``score_error`` draws).

    Args:
        score: ``score(x, z, tau)`` for x (E, n, d_x), z (E, n, d_z) or ``None`` on the
            truths' device, returning float64 there.
        truths, seeds: E each; the truths share their dimensions, their SDE and their device.
    """
    sde = truths[0].sde
    points, weights = np.polynomial.legendre.leggauss(nodes)
    low = math.log(tau0)
    log_taus = low + (points + 1) * (-low) / 2
    total = torch.zeros(len(truths), dtype=torch.float64)
    variance = torch.zeros_like(total)
    for i, (log_tau, weight) in enumerate(zip(log_taus, weights * (-low) / 2, strict=True)):
        tau = math.exp(log_tau)
        z, x = stacked_samples(truths, n, [s * nodes + i for s in seeds], tau)
        true = torch.stack(
            [t.score(x[e], None if z is None else z[e], tau) for e, t in enumerate(truths)]
        )
        with torch.no_grad():
            squared = ((score(x, z, tau) - true) ** 2).sum(-1)  # (E, n)
        factor = weight * sde.beta(tau) * tau
        total += factor * squared.mean(-1).cpu()
        variance += (factor * squared.std(-1).cpu()) ** 2 / n
    pairs = zip(total.tolist(), variance.sqrt().tolist(), strict=True)
    return [Estimate(value, se) for value, se in pairs]


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
