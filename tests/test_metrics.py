"""The rulers: Monte Carlo divergences against closed forms, and the sample-only distances."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from sims.generators import GaussianMixture, UnconditionalTask, make_task_pair
from sims.metrics import (
    divergences,
    energy_distance,
    gaussian_kl,
    linear_gaussian_kl,
    log_ratio_divergences,
    mmd,
    pinsker_holds,
    sliced_w2,
    w2,
)


def gaussian(mean, cov) -> GaussianMixture:
    mean = torch.as_tensor(mean, dtype=torch.float64)
    cov = torch.as_tensor(cov, dtype=torch.float64)
    return GaussianMixture(torch.zeros(1, dtype=torch.float64), mean[None], cov[None])


def random_gaussian(rng, d):
    a = rng.standard_normal((d, d))
    return rng.standard_normal(d), a @ a.T / d + 0.3 * np.eye(d)


def test_gaussian_kl_matches_torch():
    rng = np.random.default_rng(0)
    for d in (1, 3, 5):
        (m0, s0), (m1, s1) = random_gaussian(rng, d), random_gaussian(rng, d)
        p, q = (
            torch.distributions.MultivariateNormal(torch.tensor(m), torch.tensor(s))
            for m, s in ((m0, s0), (m1, s1))
        )
        expected = torch.distributions.kl_divergence(p, q)
        as_tensors = [torch.tensor(v) for v in (m0, s0, m1, s1)]
        torch.testing.assert_close(gaussian_kl(*as_tensors), expected)


def test_conditional_kl_estimate_matches_closed_form():
    """Truth linear_gaussian; model shifts the mean and inflates the covariance. The
    conditional KL is the same for every z, so its closed form is one Gaussian KL."""
    task = make_task_pair("linear_gaussian", d_x=3, d_z=5, d_h=2, seed=0).target
    shift = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    cov = 1.3 * task.params["Sigma"]

    def model_log_prob(x, z):
        law = task.law(z)
        return GaussianMixture(law.log_weights, law.means + shift, cov[None]).log_prob(x)

    estimate = divergences(task, model_log_prob, n=20_000, seed=1)["kl"]
    expected = gaussian_kl(torch.zeros(3), task.params["Sigma"], shift, cov).item()
    assert abs(estimate.value - expected) < 4 * estimate.se
    assert estimate.se < 0.05 * expected


def test_tv_and_hellinger_match_closed_forms():
    """Two 1-D Gaussians: TV = 2 Phi(|dm| / (2 s)) - 1; H^2 = 1 - exp(-dm^2 / (8 s^2))."""
    for gap in (0.1, 1.0, 3.0):
        truth = UnconditionalTask("target", gaussian([0.0], [[1.0]]))
        model = gaussian([gap], [[1.0]])
        result = divergences(truth, lambda x, z, m=model: m.log_prob(x), n=40_000, seed=1)
        tv, hellinger2 = 2 * norm.cdf(gap / 2) - 1, 1 - math.exp(-(gap**2) / 8)
        assert abs(result["tv"].value - tv) < 4 * result["tv"].se
        assert abs(result["hellinger2"].value - hellinger2) < 4 * result["hellinger2"].se
        assert abs(result["kl"].value - gap**2 / 2) < 4 * result["kl"].se


def test_divergences_vanish_at_the_truth_and_stay_in_range():
    task = make_task_pair("mixture", seed=0).target
    same = divergences(task, task.log_prob, n=2000, seed=0)
    assert all(v.value == 0.0 for v in same.values())
    far = divergences(task, lambda x, z: task.log_prob(x + 5.0, z), n=2000, seed=0)
    assert 0.9 < far["tv"].value <= 1.0 and 0.9 < far["hellinger2"].value <= 1.0


def test_pinsker_on_random_pairs():
    rng = np.random.default_rng(1)
    for _ in range(20):
        d = int(rng.integers(1, 4))
        (m0, s0), (m1, s1) = random_gaussian(rng, d), random_gaussian(rng, d)
        truth = UnconditionalTask("target", gaussian(m0, s0))
        model = gaussian(m1, s1)
        result = divergences(truth, lambda x, z, m=model: m.log_prob(x), n=4000, seed=0)
        assert pinsker_holds(result["kl"], result["tv"])
        exact_kl = gaussian_kl(*(torch.tensor(v) for v in (m0, s0, m1, s1))).item()
        assert result["tv"].value - 4 * result["tv"].se <= math.sqrt(exact_kl / 2)


def test_pinsker_check_fails_on_a_violation():
    log_p = torch.zeros(1000, dtype=torch.float64)
    fake = log_ratio_divergences(log_p, log_p)
    too_large_tv = type(fake["tv"])(0.5, 0.001)
    assert not pinsker_holds(fake["kl"], too_large_tv)


def test_sliced_w2_of_a_translation():
    """y = x + shift: along theta, W2^2 = (theta . shift)^2 exactly; the mean over the
    sphere is |shift|^2 / d."""
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shift = torch.tensor([1.0, 2.0, 0.0, -1.0], dtype=torch.float64)
    estimate = sliced_w2(x, x + shift, n_projections=2000, seed=0)
    expected = shift.norm().item() / 2
    assert abs(estimate.value - expected) < 4 * estimate.se


def test_exact_w2_of_a_translation_and_a_permutation():
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shift = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert w2(x, x + shift).value == pytest.approx(shift.norm().item(), rel=1e-9)
    assert w2(x, x[torch.randperm(200)], n_bootstrap=2).value == pytest.approx(0.0, abs=1e-6)


def rbf_mean(m1, s1, m2, s2, h):
    """E exp(-|X - Y|^2 / (2 h^2)) for independent X ~ N(m1, s1), Y ~ N(m2, s2)."""
    d = len(m1)
    total = s1 + s2
    factor = np.linalg.det(np.eye(d) + total / h**2) ** -0.5
    gap = m1 - m2
    return factor * math.exp(-0.5 * gap @ np.linalg.solve(h**2 * np.eye(d) + total, gap))


def test_mmd_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(2)
    (m1, s1), (m2, s2) = random_gaussian(rng, 2), random_gaussian(rng, 2)
    h = 1.5
    expected = (
        rbf_mean(m1, s1, m1, s1, h) + rbf_mean(m2, s2, m2, s2, h) - 2 * rbf_mean(m1, s1, m2, s2, h)
    )
    x = rng.multivariate_normal(m1, s1, size=3000)
    y = rng.multivariate_normal(m2, s2, size=2500)
    estimate = mmd(x, y, bandwidth=h)
    assert abs(estimate.value - expected) < 4 * estimate.se


def test_mmd_null_is_within_its_spread():
    rng = np.random.default_rng(3)
    values = [
        mmd(rng.standard_normal((300, 2)), rng.standard_normal((300, 2))).value for _ in range(30)
    ]
    shifted = mmd(rng.standard_normal((300, 2)), rng.standard_normal((300, 2)) + 0.5)
    assert abs(np.mean(values)) < 3 * np.std(values) / math.sqrt(30)
    assert shifted.value > np.mean(values) + 5 * np.std(values)


def test_energy_distance_matches_closed_form_in_one_dimension():
    """X ~ N(0, 1), Y ~ N(mu, 1): E|X - Y| = E|N(mu, 2)|, E|X - X'| = E|Y - Y'| = 2 / sqrt(pi)."""
    mu, s = 0.8, math.sqrt(2)
    cross = s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * s**2)) + mu * (
        1 - 2 * norm.cdf(-mu / s)
    )
    expected = 2 * cross - 2 * 2 / math.sqrt(math.pi)
    rng = np.random.default_rng(4)
    estimate = energy_distance(rng.standard_normal((3000, 1)), mu + rng.standard_normal((2000, 1)))
    assert abs(estimate.value - expected) < 4 * estimate.se


def test_two_sample_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="expected"):
        mmd(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="n_projections=0"):
        sliced_w2(np.zeros((10, 2)), np.ones((10, 2)), n_projections=0)


def test_linear_gaussian_kl_matches_monte_carlo():
    """The closed-form E_z KL between linear-Gaussian conditionals against the estimator."""
    task = make_task_pair("linear_gaussian", d_x=2, d_z=4, d_h=2, seed=3).target
    p = task.params
    coefficients = p["B"] @ p["W"] + 0.2 * torch.ones(2, 4, dtype=torch.float64)
    bias, cov = p["b"] - 0.1, 0.8 * p["Sigma"]

    def model_log_prob(x, z):
        law = GaussianMixture(torch.zeros(1), (z @ coefficients.T + bias)[:, None], cov[None])
        return law.log_prob(x)

    estimate = divergences(task, model_log_prob, n=40_000, seed=2)["kl"]
    exact = linear_gaussian_kl(p["B"] @ p["W"], p["b"], p["Sigma"], coefficients, bias, cov)
    assert abs(estimate.value - exact.item()) < 4 * estimate.se
