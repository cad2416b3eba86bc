"""Reverse-time SDE sampling (Euler-Maruyama, optionally with a Langevin corrector).

The reverse of dx = f dtau + g dW runs from tau = 1 down to tau_0 with drift f - g^2 s, where
s is the score (Anderson 1982; Song et al. 2021), started from the prior N(0, I).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from sims.sde import VPSDE
from sims.validation import check_positive_int

Score = Callable[[Tensor, Tensor | None, float], Tensor]


def one_member(score: Score) -> Score:
    """A score of x (N, d_x), z (N, d_z) or ``None`` as a score of one member's stacked
    inputs (1, N, d_x), (1, N, d_z) or ``None`` (see ``reverse_sde_samples``)."""

    def stacked(x: Tensor, z: Tensor | None, tau: float) -> Tensor:
        return score(x[0], None if z is None else z[0], tau)[None]

    return stacked


def reverse_sde_sample(
    score: Score,
    sde: VPSDE,
    n: int,
    d_x: int,
    z: Tensor | None = None,
    tau0: float = 1e-3,
    steps: int = 1000,
    corrector_steps: int = 0,
    snr: float = 0.16,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Draw x (n, d_x) at tau_0 by the reverse-time SDE with ``score``.

    Args:
        score: ``score(x, z, tau)`` for x (n, d_x); float64 on ``device``.
        z: (n, d_z) conditions, one draw per row, or ``None``.
        steps: Euler-Maruyama steps from tau = 1 to tau_0, of equal length.
        corrector_steps: Langevin corrector steps after each predictor step (0: none).
        snr: signal-to-noise ratio that sets the corrector's step size.
        generator: source of the Gaussian noise (CPU); a fresh unseeded one when ``None``.
    """
    zs = None if z is None else z[None]
    generators = [generator or torch.Generator()]
    options = {"corrector_steps": corrector_steps, "snr": snr, "device": device}
    return reverse_sde_samples(
        one_member(score), sde, n, d_x, zs, tau0, steps, generators, **options
    )[0]


def reverse_sde_samples(
    score: Score,
    sde: VPSDE,
    n: int,
    d_x: int,
    z: Tensor | None,
    tau0: float,
    steps: int,
    generators: Sequence[torch.Generator],
    corrector_steps: int = 0,
    snr: float = 0.16,
    device: str | torch.device = "cpu",
) -> Tensor:
    """``reverse_sde_sample`` for E models at once: x (E, n, d_x), member i's from its own
    score on its own noise, drawn from ``generators[i]``, so that a member's samples do not
    depend on the others.

    Args:
        score: ``score(x, z, tau)`` for x (E, n, d_x) and z (E, n, d_z) or ``None``; float64
            on ``device``.
        z: (E, n, d_z) conditions, one draw per row, or ``None``.
    """
    n, steps = check_positive_int("n", n), check_positive_int("steps", steps)

    def noise() -> Tensor:
        draws = [torch.randn(n, d_x, generator=g, dtype=torch.float64) for g in generators]
        return torch.stack(draws).to(device)

    dtau = (1.0 - tau0) / steps
    x = noise()
    for step in range(steps):
        tau = 1.0 - step * dtau
        drift = sde.reverse_drift(x, score(x, z, tau), tau)
        x = x - drift * dtau + math.sqrt(sde.beta(tau) * dtau) * noise()
        for _ in range(corrector_steps):
            x = _langevin(score, sde, x, z, tau - dtau, dtau, snr, noise())
    return x


def _langevin(score, sde, x, z, tau, dtau, snr, noise) -> Tensor:
    """One Langevin corrector step at tau, x (E, n, d_x), with each member's step size
    from its own signal-to-noise ratio."""
    gradient = score(x, z, tau)
    alpha = 1.0 - sde.beta(tau) * dtau
    mean_norm = lambda t: t.norm(dim=-1).mean(-1, keepdim=True)[..., None]  # noqa: E731
    ratio = mean_norm(noise) / mean_norm(gradient).clamp(min=1e-12)
    step = 2 * alpha * (snr * ratio) ** 2
    return x + step * gradient + torch.sqrt(2 * step) * noise
