"""Evaluation of trained target models against the truth: one row of errors per model.

Density models (flows, the linear-Gaussian model) are scored by KL, TV and squared
Hellinger over fresh truth samples. Score models are scored by the exact score error, the
path bound, the same divergences computed with the probability-flow ODE likelihood at
tau_0, and sample-only distances of reverse-SDE samples to fresh truth samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sims.diffusion.bounds import bound_from, prior_kl, score_error
from sims.diffusion.likelihood import ode_log_prob
from sims.diffusion.linear import LinearScore, euler_maruyama_law, sampler_law
from sims.diffusion.sampling import reverse_sde_sample
from sims.methods import Fitted, Member
from sims.metrics import divergences, linear_gaussian_kl, mmd, sliced_w2
from sims.models.linear_gaussian import LinearGaussianModel, linear_fit
from sims.models.scores import LinearScoreModel, ScoreModel

EVALUATION_SEED_OFFSET = 2**31  # keeps evaluation samples apart from every training sample


def _columns(row: dict, name: str, estimate) -> None:
    row[name], row[f"{name}_se"] = estimate.value, estimate.se


@dataclass(frozen=True)
class EvaluationSizes:
    """How many samples each error is estimated from.

    Attributes:
        n_kl: fresh truth samples for the KL, TV and Hellinger of a density model.
        n_ode: truth samples whose probability-flow likelihood gives a score model's KL.
        n_samples: reverse-SDE samples (and as many truth samples) for sw2 and mmd.
        sampler_steps: Euler-Maruyama steps of the reverse SDE.
        n_score: truth samples per quadrature node of the exact score error.
    """

    n_kl: int = 10_000
    n_ode: int = 500
    n_samples: int = 1000
    sampler_steps: int = 500
    n_score: int = 2000


def evaluate(
    fitted: Fitted, member: Member, sizes: EvaluationSizes = EvaluationSizes()
) -> dict[str, float]:
    """KL, TV and squared Hellinger (each with its standard error) from the target's truth
    to the model, over ``sizes.n_kl`` fresh truth samples (score models: see
    ``evaluate_score_model``); ``kl_exact`` too where it has a closed form."""
    if isinstance(fitted.model, ScoreModel):
        return evaluate_score_model(fitted.model, member, sizes)
    truth = member.pair.target
    seed = EVALUATION_SEED_OFFSET + member.seed
    row = {}
    log_prob = fitted.model.truth_log_prob
    for name, estimate in divergences(truth, log_prob, sizes.n_kl, seed).items():
        _columns(row, name, estimate)
    if isinstance(fitted.model, LinearGaussianModel):
        p = truth.params
        fit = fitted.model.conditional()
        exact = linear_gaussian_kl(
            p["B"] @ p["W"], p["b"], p["Sigma"], fit.coefficients, fit.bias, fit.covariance
        )
        row["kl_exact"] = exact.item()
    return row


def _score_function(model: ScoreModel):
    """The model's score on float64 CPU tensors, as the diffusion code takes it."""

    def score(x, z, tau):
        return model.score(model.as_input(x), model.as_input(z), tau).to(x)

    return score


def evaluate_score_model(
    model: ScoreModel, member: Member, sizes: EvaluationSizes = EvaluationSizes()
) -> dict[str, float]:
    """The diffusion columns of a results row, each with its standard error.

    ``kl`` (= ``kl_ode``), ``tv``, ``hellinger2``: by the probability-flow likelihood at
    tau_0 over ``sizes.n_ode`` truth samples; ``score_err``: int beta E|s - grad log p|^2;
    ``path_kl_bound``: KL(p_1 || N(0, I)) + score_err / 2; ``sw2``, ``mmd``:
    ``sizes.n_samples`` reverse-SDE samples against as many fresh truth samples at tau_0,
    on (z, x) for conditional tasks.
    """
    truth, tau0 = member.pair.target, model.tau0
    seed = EVALUATION_SEED_OFFSET + member.seed
    score = _score_function(model)
    n_samples, steps = sizes.n_samples, sizes.sampler_steps

    row = {}
    error = score_error(score, truth, tau0, sizes.n_score, seed)
    _columns(row, "score_err", error)
    _columns(row, "path_kl_bound", bound_from(prior_kl(truth, seed=seed), error))

    def model_log_prob(x, z):
        return ode_log_prob(score, model.sde, x, z, tau0, rtol=1e-5, atol=1e-5)

    for name, estimate in divergences(truth, model_log_prob, sizes.n_ode, seed, tau0).items():
        _columns(row, name, estimate)
    row["kl_ode"] = row["kl"]

    z, _ = truth.sample(n_samples, seed + 1, tau0)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        samples = reverse_sde_sample(
            score, model.sde, n_samples, truth.d_x, z, tau0, steps, generator=generator
        )
    z_fresh, x_fresh = truth.sample(n_samples, seed + 2, tau0)
    joint = lambda z, x: x if z is None else torch.cat([z, x], 1)  # noqa: E731
    _columns(row, "sw2", sliced_w2(joint(z, samples), joint(z_fresh, x_fresh), seed=seed))
    _columns(row, "mmd", mmd(joint(z, samples), joint(z_fresh, x_fresh)))
    if isinstance(model, LinearScoreModel):
        row |= exact_sampler_kls(model, member, steps)
    return row


def exact_sampler_kls(model: LinearScoreModel, member: Member, steps: int) -> dict[str, float]:
    """``kl_sampler``: exact KL from p_tau_0 to the continuous-time reverse SDE's law;
    ``kl_euler_maruyama``: the same for its ``steps``-step recursion."""
    p = member.pair.target.params
    truth = LinearScore(p["B"] @ p["W"], p["b"], p["Sigma"], model.sde).at(model.tau0)
    fit = linear_fit(model)
    score = LinearScore(fit.coefficients, fit.bias, fit.covariance, model.sde)
    laws = {
        "kl_sampler": sampler_law(score, model.tau0),
        "kl_euler_maruyama": euler_maruyama_law(score, model.tau0, steps),
    }
    return {
        name: linear_gaussian_kl(
            truth.coefficients,
            truth.bias,
            truth.covariance,
            law.coefficients,
            law.bias,
            law.covariance,
        ).item()
        for name, law in laws.items()
    }


def draw_samples(fitted: Fitted, member: Member, n: int) -> dict[str, np.ndarray]:
    """``n`` model samples and ``n`` fresh truth samples of the target, for display.

    Conditional models draw one x per fresh truth condition z. Returns float arrays
    ``model`` and ``truth``, each (n, d_x).
    """
    truth, model = member.pair.target, fitted.model
    seed = EVALUATION_SEED_OFFSET + member.seed + 3
    z, x = truth.sample(n, seed)
    if isinstance(model, ScoreModel):
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            drawn = reverse_sde_sample(
                _score_function(model), model.sde, n, truth.d_x, z, model.tau0, generator=generator
            )
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            drawn = model.sample(n if z is None else model.as_input(z))
    return {"model": drawn.double().cpu().numpy(), "truth": x.numpy()}
