"""Samplers, likelihood, score error and path bound, each checked with the true score."""

import math

import numpy as np
import pytest
import torch
from conftest import SMALL_DIMS

from sims.diffusion.bounds import path_bound, prior_kl, score_error
from sims.diffusion.likelihood import ode_log_prob, rademacher
from sims.diffusion.linear import LinearScore, euler_maruyama_law, ode_law, sampler_law
from sims.diffusion.sampling import reverse_sde_sample
from sims.generators import families, make_task_pair
from sims.metrics import gaussian_kl, linear_gaussian_kl, mmd
from sims.models.linear_gaussian import LinearGaussianFit

TAU0 = 1e-3


def target(family, **knobs):
    return make_task_pair(family, seed=1, **(SMALL_DIMS[family] | knobs)).target


@pytest.mark.parametrize("family", families())
def test_probability_flow_with_the_true_score_reproduces_the_density(family):
    """Tolerance 1e-3 nats per point: the adaptive solver's (rtol 1e-6, atol 1e-8)."""
    task = target(family)
    z, x = task.sample(100, seed=0, tau=TAU0)
    exact_prior = lambda y: task.log_prob(y, z, 1.0)  # noqa: E731
    estimate = ode_log_prob(task.score, task.sde, x, z, TAU0, prior_log_prob=exact_prior)
    torch.testing.assert_close(estimate, task.log_prob(x, z, TAU0), atol=1e-3, rtol=0)


def test_probability_flow_with_the_standard_prior_is_off_by_the_prior_mismatch_only():
    task = target("mixture")
    z, x = task.sample(200, seed=0, tau=TAU0)
    error = ode_log_prob(task.score, task.sde, x, z, TAU0) - task.log_prob(x, z, TAU0)
    assert error.abs().max() < 0.1 and error.abs().mean() > 1e-4


def test_hutchinson_divergence_is_unbiased():
    task = target("shared_latent")
    z, x = task.sample(400, seed=0, tau=TAU0)
    exact_prior = lambda y: task.log_prob(y, z, 1.0)  # noqa: E731
    estimate = ode_log_prob(
        task.score,
        task.sde,
        x,
        z,
        TAU0,
        prior_log_prob=exact_prior,
        exact_up_to=1,
        probe=rademacher(x.shape, torch.Generator().manual_seed(0)),
    )
    error = estimate - task.log_prob(x, z, TAU0)
    assert error.abs().max() > 1e-2  # a real stochastic estimate ...
    assert abs(error.mean().item()) < 4 * error.std().item() / math.sqrt(len(error))  # unbiased


def joint(z, x):
    return x if z is None else torch.cat([z, x], 1)


@pytest.mark.parametrize("family", ["mixture", "shared_subspace"])
@pytest.mark.parametrize("corrector_steps", [0, 1])
def test_reverse_sde_with_the_true_score_samples_the_truth(family, corrector_steps):
    """MMD of sampler output to truth samples lies within the spread of MMD between
    independent truth samples (the null)."""
    task, n = target(family), 400
    z, reference = task.sample(n, seed=100, tau=TAU0)
    z_fresh, _ = task.sample(n, seed=101, tau=TAU0)
    samples = reverse_sde_sample(
        task.score,
        task.sde,
        n,
        task.d_x,
        z_fresh,
        TAU0,
        steps=400,
        corrector_steps=corrector_steps,
        generator=torch.Generator().manual_seed(0),
    )
    null = []
    for seed in range(12):
        z_null, x_null = task.sample(n, seed=200 + seed, tau=TAU0)
        null.append(mmd(joint(z_null, x_null), joint(z, reference), bandwidth=1.0).value)
    observed = mmd(joint(z_fresh, samples), joint(z, reference), bandwidth=1.0).value
    assert observed < np.mean(null) + 4 * np.std(null), (observed, null)


def test_reverse_sde_check_has_power():
    """The same check rejects a sampler whose score is off by a constant."""
    task, n = target("mixture"), 400
    z, reference = task.sample(n, seed=100, tau=TAU0)
    z_fresh, _ = task.sample(n, seed=101, tau=TAU0)
    wrong = lambda x, z, tau: task.score(x, z, tau) + 0.5  # noqa: E731
    samples = reverse_sde_sample(wrong, task.sde, n, task.d_x, z_fresh, TAU0, steps=400)
    null = [
        mmd(joint(*task.sample(n, seed=200 + s, tau=TAU0)), joint(z, reference), bandwidth=1.0)
        for s in range(12)
    ]
    observed = mmd(joint(z_fresh, samples), joint(z, reference), bandwidth=1.0).value
    assert observed > np.mean([m.value for m in null]) + 4 * np.std([m.value for m in null])


def test_path_bound_with_the_true_score_is_the_prior_kl():
    task = target("mixture")
    assert score_error(task.score, task, TAU0, n=200).value == 0.0
    bound = path_bound(task.score, task, TAU0, n=200, seed=3)
    prior = prior_kl(task, seed=3)
    assert (bound.value, bound.se) == pytest.approx((prior.value, prior.se))


def test_prior_kl_matches_closed_form():
    """linear_gaussian at tau = 1: E_z KL(N(alpha (C z + b), S) || N(0, I)) in closed form."""
    task = make_task_pair("linear_gaussian", d_x=2, d_z=3, d_h=1, seed=0, noise=2.0).target
    p = task.params
    alpha, sigma = task.sde.alpha(1.0), task.sde.sigma(1.0)
    cov = alpha**2 * p["Sigma"] + sigma**2 * torch.eye(2, dtype=torch.float64)
    coefficients = p["B"] @ p["W"]
    eye = torch.eye(2, dtype=torch.float64)
    at_zero = gaussian_kl(alpha * p["b"], cov, torch.zeros(2, dtype=torch.float64), eye)
    expected = at_zero + 0.5 * alpha**2 * (coefficients**2).sum()
    estimate = prior_kl(task, n=40_000, seed=1)
    assert abs(estimate.value - expected.item()) < 4 * estimate.se


def test_score_error_of_a_constant_offset_is_exact():
    """s = true score + c: the integrand is beta |c|^2, so the error is |c|^2 int beta."""
    task = target("gaussian_smooth")
    offset = torch.tensor([0.3, -0.4], dtype=torch.float64)
    error = score_error(lambda x, z, tau: task.score(x, z, tau) + offset, task, TAU0, n=50)
    integral = task.sde.integrated_beta(1.0) - task.sde.integrated_beta(TAU0)
    assert error.value == pytest.approx(0.25 * integral, rel=1e-9)


def linear_anchor():
    task = make_task_pair("linear_gaussian", d_x=2, d_z=3, d_h=1, seed=0).target
    p = task.params
    true = LinearScore(p["B"] @ p["W"], p["b"], p["Sigma"], task.sde)
    perturbed = [
        LinearScore(
            scale * true.coefficients, true.bias + shift, spread * true.covariance, task.sde
        )
        for scale, shift, spread in ((1.2, 0.2, 0.7), (0.8, -0.3, 1.5), (1.0, 0.0, 0.5))
    ]
    return task, true, perturbed


def kl_between(p, q):
    return linear_gaussian_kl(
        p.coefficients, p.bias, p.covariance, q.coefficients, q.bias, q.covariance
    ).item()


def test_linear_score_of_the_truth_is_the_true_score():
    task, true, _ = linear_anchor()
    for tau in (TAU0, 0.2, 1.0):
        z, x = task.sample(50, seed=0, tau=tau)
        torch.testing.assert_close(true(x, z, tau), task.score(x, z, tau))


def test_euler_maruyama_law_matches_a_monte_carlo_run_of_the_sampler():
    task, _, perturbed = linear_anchor()
    score, n, steps = perturbed[0], 50_000, 100
    z = torch.randn(1, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    samples = reverse_sde_sample(
        score,
        task.sde,
        n,
        2,
        z.expand(n, -1),
        TAU0,
        steps,
        generator=torch.Generator().manual_seed(0),
    )
    law = euler_maruyama_law(score, TAU0, steps)
    mean, cov = (z @ law.coefficients.T + law.bias)[0], law.covariance
    mean_se = (cov.diagonal() / n).sqrt()
    cov_se = ((cov**2 + cov.diagonal()[:, None] * cov.diagonal()[None]) / n).sqrt()
    assert torch.all((samples.mean(0) - mean).abs() < 4 * mean_se)
    assert torch.all((torch.cov(samples.T) - cov).abs() < 4 * cov_se)


def test_euler_maruyama_law_converges_to_the_continuous_law():
    _, _, perturbed = linear_anchor()
    exact = sampler_law(perturbed[1], TAU0)
    gaps = [kl_between(exact, euler_maruyama_law(perturbed[1], TAU0, s)) for s in (100, 1000)]
    assert gaps[1] < gaps[0] / 5


def test_ode_likelihood_is_the_density_of_the_exact_ode_law():
    """For a linear score the probability-flow ODE carries N(0, I) to a Gaussian law; the
    likelihood code gives its log-density point by point, to the solver's tolerance."""
    task, true, perturbed = linear_anchor()
    z, x = task.sample(200, seed=3, tau=TAU0)
    for score in (true, *perturbed):
        law = ode_law(score, TAU0)
        mean = z @ law.coefficients.T + law.bias
        exact = torch.distributions.MultivariateNormal(mean, law.covariance).log_prob(x)
        torch.testing.assert_close(
            ode_log_prob(score, task.sde, x, z, TAU0), exact, atol=1e-5, rtol=0
        )
    # with the true score the ODE is a bijection carrying p_1 to p_tau0, so its KL is the
    # prior's, KL(p_1 || N(0, I)), which the reverse SDE contracts to nearly 0
    truth, at_one = true.at(TAU0), true.at(1.0)
    standard = LinearGaussianFit(
        torch.zeros_like(at_one.coefficients), torch.zeros_like(at_one.bias), torch.eye(2).double()
    )
    prior = kl_between(at_one, standard)
    assert kl_between(truth, ode_law(true, TAU0)) == pytest.approx(prior, rel=1e-6)
    assert kl_between(truth, sampler_law(true, TAU0)) < 1e-3 * prior


def test_path_bound_is_not_below_the_exact_sampler_kl():
    task, true, perturbed = linear_anchor()
    truth = true.at(TAU0)
    assert kl_between(truth, sampler_law(true, TAU0)) < 1e-6
    for score in perturbed:
        kl_sampler = kl_between(truth, sampler_law(score, TAU0))
        bound = path_bound(score, task, TAU0, n=4000, seed=1)
        assert kl_sampler > 0.01
        assert bound.value + 4 * bound.se >= kl_sampler


def test_trained_linear_score_model_is_its_linear_score_and_respects_the_path_bound():
    from sims.evaluation import evaluate
    from sims.methods import Training, make_members, scratch
    from sims.models.architectures import LinearScoreArchitecture
    from sims.models.linear_gaussian import linear_fit

    pair = make_task_pair("linear_gaussian", d_x=2, d_z=3, d_h=1, seed=0)
    members = make_members(pair, [0, 1], n_target=300, n_source=None)
    training = Training(LinearScoreArchitecture())
    for fitted, member in zip(scratch(members, training), members, strict=True):
        model, fit = fitted.model, linear_fit(fitted.model)
        linear = LinearScore(fit.coefficients, fit.bias, fit.covariance, model.sde)
        z, x = pair.target.sample(20, seed=0, tau=0.3)
        torch.testing.assert_close(linear(x, z, 0.3), model.score(x, z, 0.3).detach())
        row = evaluate(fitted, member)
        assert row["kl_sampler"] > 0
        assert row["path_kl_bound"] + 4 * row["path_kl_bound_se"] >= row["kl_sampler"]
        assert abs(row["kl_ode"] - row["kl_ode_exact"]) <= 4 * row["kl_se"]


def test_closed_form_denoising_loss_of_the_linear_score_is_the_mean_sampled_loss():
    """The linear score model's loss (noise and tau integrated out) against the mean of the
    sampled denoising loss of ``ScoreModel`` over 400 draws of noise and tau."""
    from sims.models.scores import LinearScoreModel, ScoreModel

    task = target("linear_gaussian")
    z, x = task.sample(300, seed=0)
    torch.manual_seed(0)
    model = LinearScoreModel(x.shape[1], z.shape[1], 1, sde=task.sde, tau0=TAU0)
    weight = torch.ones(len(x), dtype=torch.float64)
    closed_form = model(x, z, weight, None).item()
    draws = torch.tensor(
        [
            ScoreModel.forward(
                model, x, z, weight, torch.randn(len(x), x.shape[1] + 1, dtype=torch.float64)
            ).item()
            for _ in range(400)
        ]
    )
    assert abs(draws.mean().item() - closed_form) < 4 * draws.std().item() / math.sqrt(400)


def _latent_affine_truth(seed=0):
    from sims.models.architectures import true_embedding

    pair = make_task_pair("shared_latent", d_x=2, seed=seed)
    return pair, true_embedding(pair)


def test_latent_affine_score_with_the_truths_latent_and_head_is_the_true_score():
    from sims.models.scores import LatentAffineScore

    pair, latent = _latent_affine_truth()
    _, x = pair.target.sample(500, seed=0)
    model = LatentAffineScore(2, x, latent, sde=pair.target.sde).double()
    with torch.no_grad():
        model.weight.copy_(pair.target.params["A"])
        model.bias.copy_(pair.target.params["b"])
    for tau in (TAU0, 0.1, 0.5, 1.0):
        _, x_tau = pair.target.sample(50, seed=1, tau=tau)
        torch.testing.assert_close(
            model.score(x_tau, None, tau), pair.target.score(x_tau, None, tau)
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moment_matched_head_starts_near_the_truth(seed):
    """Over the true latent law the affine head starts within 0.05 nats per sample of the
    truth's fit, with the truth's sign of det A (which no gradient step can change)."""
    from sims.models.scores import LatentAffineScore

    pair, latent = _latent_affine_truth()
    _, x = pair.target.sample(800, seed=seed)
    torch.manual_seed(seed)
    model = LatentAffineScore(2, x, latent, sde=pair.target.sde)
    law = latent.law().affine(model.weight.detach().double(), model.bias.detach().double())
    assert law.log_prob(x).mean() > pair.target.log_prob(x).mean() - 0.05
    true_sign = torch.linalg.det(pair.target.params["A"]).sign()
    assert torch.linalg.det(model.weight.detach().double()).sign() == true_sign
