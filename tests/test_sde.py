"""The VP-SDE forward process against quadrature and a simulation of the SDE itself."""

import math

import pytest
import torch
from scipy.integrate import quad

from sims.sde import VPSDE


@pytest.mark.parametrize("tau", [0.0, 1e-4, 0.3, 1.0])
def test_alpha_sigma_match_the_integrated_rate(tau):
    sde = VPSDE()
    integral, _ = quad(sde.beta, 0.0, tau, epsabs=1e-13)
    assert sde.alpha(tau) == pytest.approx(math.exp(-0.5 * integral), rel=1e-12)
    assert sde.alpha(tau) ** 2 + sde.sigma(tau) ** 2 == pytest.approx(1.0, rel=1e-14)
    assert sde.sigma(tau) == pytest.approx(math.sqrt(1 - math.exp(-integral)), rel=1e-9, abs=1e-15)


def test_defaults_and_schedule():
    sde = VPSDE()
    assert (sde.beta(0.0), sde.beta(1.0)) == (0.1, 20.0)
    assert sde.alpha(0.0) == 1.0 and sde.sigma(0.0) == 0.0


def test_marginal_of_a_gaussian_matches_a_simulation_of_the_sde():
    """Euler-Maruyama of dx = -beta x / 2 dtau + sqrt(beta) dW from N(m, S) lands on the
    closed-form marginal N(alpha m, alpha^2 S + sigma^2 I)."""
    sde, tau, steps, n = VPSDE(), 0.4, 500, 100_000
    generator = torch.Generator().manual_seed(0)
    mean0 = torch.tensor([1.5, -2.0], dtype=torch.float64)
    cov0 = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    x = (
        mean0
        + torch.randn(n, 2, generator=generator, dtype=torch.float64)
        @ torch.linalg.cholesky(cov0).T
    )
    dtau = tau / steps
    for step in range(steps):
        drift, diffusion = sde.sde(x, (step + 0.5) * dtau)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        x = x + drift * dtau + diffusion * math.sqrt(dtau) * noise
    mean, cov = sde.marginal(mean0, cov0, tau)
    mean_se = (cov.diagonal() / n).sqrt()
    cov_se = ((cov**2 + cov.diagonal()[:, None] * cov.diagonal()[None]) / n).sqrt()
    assert torch.all((x.mean(0) - mean).abs() < 4 * mean_se)
    assert torch.all((torch.cov(x.T) - cov).abs() < 4 * cov_se)


def test_prior_logp_is_the_standard_normal():
    x = torch.randn(10, 3, dtype=torch.float64)
    reference = torch.distributions.MultivariateNormal(
        torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    ).log_prob(x)
    torch.testing.assert_close(VPSDE().prior_logp(x), reference)


@pytest.mark.parametrize("tau", [-0.1, 1.01])
def test_tau_outside_unit_interval_raises(tau):
    with pytest.raises(ValueError, match="outside"):
        VPSDE().alpha(tau)


def test_bad_schedule_raises():
    with pytest.raises(ValueError, match="beta_min"):
        VPSDE(beta_min=0.0)


def test_the_reverse_and_probability_flow_drifts_are_f_minus_g2_s_and_half_of_it():
    sde = VPSDE()
    x, s = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    beta = sde.beta(0.3)
    torch.testing.assert_close(sde.reverse_drift(x, s, 0.3), -0.5 * beta * x - beta * s)
    torch.testing.assert_close(sde.probability_flow_drift(x, s, 0.3), -0.5 * beta * (x + s))
