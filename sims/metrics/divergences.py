"""Divergences from the truth to a model, by Monte Carlo over fresh truth samples.

With r = p_hat / p evaluated at x ~ p (and z ~ the target's law of conditions, so conditional
divergences are averaged over z):

    KL(p || p_hat)    = E_p[log p - log p_hat]
    TV(p, p_hat)      = E_p[(1 - r)_+]               (= 1/2 int |p - p_hat|)
    H^2(p, p_hat)     = 1 - E_p[sqrt(r)]             (= 1 - Bhattacharyya coefficient)

each an average of i.i.d. terms, so unbiased with a standard error std / sqrt(n). All in nats
where units apply; TV and H^2 lie in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from sims.generators.tasks import Task
from sims.metrics.estimate import Estimate, sample_mean
from sims.validation import check_positive_int

LogProb = Callable[[Tensor, Tensor | None], Tensor]


def log_ratio_divergences(log_p: Tensor, log_q: Tensor) -> dict[str, Estimate]:
    """KL, TV and squared Hellinger from log-densities of truth p and model q at x ~ p.

    Args:
        log_p: (n,) log p(x_i), x_i ~ p.
        log_q: (n,) log q(x_i) at the same points.

    Returns:
        ``{"kl": ..., "tv": ..., "hellinger2": ...}``.
    """
    log_ratio = log_q.to(torch.float64) - log_p.to(torch.float64)
    return {
        "kl": sample_mean(-log_ratio),
        "tv": sample_mean((-torch.expm1(log_ratio)).clamp(min=0.0)),
        "hellinger2": sample_mean(-torch.expm1(0.5 * log_ratio)),
    }


def divergences(
    truth: Task, model_log_prob: LogProb, n: int = 10_000, seed: int = 0, tau: float = 0.0
) -> dict[str, Estimate]:
    """KL, TV and squared Hellinger from the truth's law p_tau to a model.

    Args:
        truth: the task whose law is the reference (its ``sample`` and ``log_prob``).
        model_log_prob: ``(x, z) -> log p_hat(x | z)``, x (n, d_x) and z (n, d_z) or ``None``
            as float64 tensors on the truth's device; returns (n,). The model moves and casts
            them as it needs.
        n: number of fresh truth samples.
        seed: sampling seed of the truth samples.
        tau: diffusion time of the truth's law.
    """
    n = check_positive_int("n", n)
    z, x = truth.sample(n, seed, tau)
    log_p = truth.log_prob(x, z, tau)
    with torch.no_grad():
        log_q = model_log_prob(x, z).detach().to(log_p.device)
    return log_ratio_divergences(log_p, log_q)


def pinsker_holds(kl: Estimate, tv: Estimate, n_se: float = 4.0) -> bool:
    """Pinsker's inequality TV <= sqrt(KL / 2), allowing ``n_se`` standard errors on each side."""
    kl_upper = max(kl.value + n_se * kl.se, 0.0)
    return tv.value - n_se * tv.se <= math.sqrt(kl_upper / 2)
