"""Log-likelihood by the probability-flow ODE.

The ODE dx/dtau = -1/2 beta(tau) (x + s(x, tau)) carries p_tau_0 to p_1 through the same
marginals as the SDE, so log p_tau_0(x(tau_0)) = log p_1(x(1)) + int_{tau_0}^1 div f~ dtau,
with div f~ = -1/2 beta (d + div s). The divergence is exact (one backward pass per
coordinate) up to ``exact_up_to`` dimensions and a Hutchinson estimate beyond. The ODE is
solved in log tau (where the dynamics near tau_0, scaled by tau, change slowly) by
torchdiffeq's adaptive Dormand-Prince method, on the device of x.

The points may carry leading member dimensions, (E, N, d_x) for E models solved together:
the solver's error norm is then the largest over members, so that each member meets the
tolerances as it would alone (its result agrees with a lone solve within them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torchdiffeq import odeint

from sims.diffusion.sampling import Score
from sims.sde import VPSDE


def _divergence(output: Tensor, x: Tensor, probe: Tensor | None) -> Tensor:
    """div of ``output`` (..., N, d) with respect to ``x``, (..., N): exact, or Hutchinson
    with ``probe``."""
    if probe is not None:
        (vjp,) = torch.autograd.grad(output, x, probe, create_graph=False)
        return (vjp * probe).sum(-1)
    columns = [
        torch.autograd.grad(output[..., i].sum(), x, retain_graph=True)[0][..., i]
        for i in range(x.shape[-1])
    ]
    return torch.stack(columns).sum(0)


def rademacher(shape: torch.Size, generator: torch.Generator) -> Tensor:
    """Independent random signs, +1 or -1 with probability 1/2 each: float64 of ``shape``."""
    return 2 * torch.randint(0, 2, shape, generator=generator).double() - 1


def _member_norm(state: tuple[Tensor, Tensor]) -> Tensor:
    """The solver's norm of a state (points (..., N, d), log-densities (..., N)): the
    root-mean-square of each part of each member, largest over parts and members (for one
    member, torchdiffeq's own norm of a tuple)."""
    x, log_density = state
    rms = torch.maximum(x.pow(2).mean((-2, -1)).sqrt(), log_density.pow(2).mean(-1).sqrt())
    return rms.max()


def ode_log_prob(
    score: Score,
    sde: VPSDE,
    x: Tensor,
    z: Tensor | None = None,
    tau0: float = 1e-3,
    prior_log_prob: Callable[[Tensor], Tensor] | None = None,
    exact_up_to: int = 16,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    probe: Tensor | None = None,
) -> Tensor:
    """log p_hat_tau_0(x) in nats under the probability-flow ODE of ``score``; (..., N).

    Args:
        x: (..., N, d_x) float64 points at tau_0; z: (..., N, d_z) conditions or ``None``.
            Leading dimensions are members: ``score`` takes and returns their shapes.
        prior_log_prob: log-density at tau = 1; the prior N(0, I) when ``None``.
        exact_up_to: largest d_x with the exact divergence; beyond, one probe per point
            (Hutchinson).
        rtol, atol: tolerances of the adaptive solver.
        probe: the Hutchinson probe, shape of x (``rademacher``); when ``None``, drawn
            from a fresh unseeded generator.
    """
    if x.shape[-1] <= exact_up_to:
        probe = None
    elif probe is None:
        probe = rademacher(x.shape, torch.Generator()).to(x)

    def dynamics(log_tau: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        tau = min(float(log_tau.exp()), 1.0)
        with torch.enable_grad():
            y = state[0].detach().requires_grad_(True)
            s = score(y, z, tau)
            divergence = _divergence(s, y, probe)
        # d tau / d log tau = tau; the drift's divergence is -beta (d + div s) / 2
        flow = tau * sde.probability_flow_drift(y, s, tau)
        change = -0.5 * sde.beta(tau) * tau * (y.shape[-1] + divergence)
        return flow.detach(), change.detach()

    times = torch.tensor([math.log(tau0), 0.0], dtype=x.dtype, device=x.device)
    start = (x, torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device))
    # step_t: end a step exactly at log tau = 0, so no stage is evaluated beyond it
    options = {"step_t": times, "norm": _member_norm}
    path, integral = odeint(
        dynamics, start, times, rtol=rtol, atol=atol, method="dopri5", options=options
    )
    prior = prior_log_prob or sde.prior_logp
    return prior(path[-1]) + integral[-1]
