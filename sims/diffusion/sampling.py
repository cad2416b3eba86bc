"""Reverse-time SDE sampling (Euler-Maruyama, optionally with a Langevin corrector).

The reverse of dx = f dtau + g dW runs from tau = 1 down to tau_0 with drift f - g^2 s, where
s is the score (Anderson 1982; Song et al. 2021), started from the prior N(0, I).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from sims.sde import VPSDE
from sims.validation import check_positive_int

Score = Callable[[Tensor, Tensor | None, float], Tensor]


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
    n, steps = check_positive_int("n", n), check_positive_int("steps", steps)
    generator = generator or torch.Generator()
    options = {"dtype": torch.float64}

    def noise() -> Tensor:
        return torch.randn(n, d_x, generator=generator, **options).to(device)

    dtau = (1.0 - tau0) / steps
    x = noise()
    for step in range(steps):
        tau = 1.0 - step * dtau
        drift, diffusion = sde.sde(x, tau)
        x = (
            x
            - (drift - diffusion**2 * score(x, z, tau)) * dtau
            + diffusion * math.sqrt(dtau) * noise()
        )
        for _ in range(corrector_steps):
            x = _langevin(score, sde, x, z, tau - dtau, dtau, snr, noise())
    return x


def _langevin(score, sde, x, z, tau, dtau, snr, noise) -> Tensor:
    """One Langevin corrector step at tau (step size from the signal-to-noise ratio)."""
    gradient = score(x, z, tau)
    alpha = 1.0 - sde.beta(tau) * dtau
    ratio = noise.norm(dim=-1).mean() / gradient.norm(dim=-1).mean().clamp(min=1e-12)
    step = 2 * alpha * (snr * ratio) ** 2
    return x + step * gradient + torch.sqrt(2 * step) * noise
