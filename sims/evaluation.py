"""Evaluation of trained target models against the truth: one row of errors per model.

Density models (flows, the linear-Gaussian model) are scored by KL, TV and squared
Hellinger over fresh truth samples. Score models are scored by the exact score error, the
path bound, the same divergences computed with the probability-flow ODE likelihood at
tau_0, and sample-only distances of reverse-SDE samples to fresh truth samples.

The models of one ensemble are evaluated together (``evaluate_ensemble``): their networks
run stacked in one ``vmap`` on the device (``sims.models.stacked``), each on its own truth
samples and noise, so that a model's row is the one it gets alone; only the likelihood ODE's
adaptive steps are shared, and they meet every member's tolerances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sims.diffusion.bounds import bound_from, prior_kl, score_errors
from sims.diffusion.likelihood import ode_log_prob, rademacher
from sims.diffusion.linear import (
    LinearScore,
    euler_maruyama_law,
    ode_law,
    prior_kl_exact,
    sampler_law,
    score_error_exact,
)
from sims.diffusion.sampling import reverse_sde_sample, reverse_sde_samples
from sims.generators.seeding import seeded_generator
from sims.generators.tasks import Task, stacked_samples
from sims.methods import Fitted, Member
from sims.metrics import Estimate, linear_gaussian_kl, log_ratio_divergences, mmd, sliced_w2
from sims.models.linear_gaussian import LinearGaussianModel, linear_fit
from sims.models.scores import LinearScoreModel, ScoreModel
from sims.models.stacked import StackedModels

EVALUATION_SEED_OFFSET = 2**31  # keeps evaluation samples apart from every training sample
ROWS_PER_CALL = 2**15  # rows of all members together per call of the models


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
    fitted: Fitted, member: Member, sizes: EvaluationSizes = EvaluationSizes(), device="cpu"
) -> dict[str, float]:
    """One model's row of ``evaluate_ensemble``."""
    return evaluate_ensemble([fitted], [member], sizes, device)[0]


def evaluate_ensemble(
    fitted: Sequence[Fitted],
    members: Sequence[Member],
    sizes: EvaluationSizes = EvaluationSizes(),
    device: str = "cpu",
) -> list[dict[str, float]]:
    """The errors of E models of one architecture, model i against the target of
    ``members[i]``, each with its standard error; their networks run together on ``device``.

    Density models: KL, TV and squared Hellinger from the target's truth to the model over
    ``sizes.n_kl`` fresh truth samples, and ``kl_exact`` where it has a closed form.

    Score models: ``kl`` (= ``kl_ode``), ``tv``, ``hellinger2`` by the probability-flow
    likelihood at tau_0 over ``sizes.n_ode`` truth samples; ``score_err``: int beta
    E|s - grad log p|^2; ``path_kl_bound``: KL(p_1 || N(0, I)) + score_err / 2; ``sw2``,
    ``mmd``: ``sizes.n_samples`` reverse-SDE samples against as many fresh truth samples
    at tau_0, on (z, x) for conditional tasks; for the linear score, the exact KLs of
    ``exact_sampler_kls``.

    The models go in groups whose calls hold at most ``ROWS_PER_CALL`` rows (or one
    member's, where that is more), so that memory stays bounded however large E is.
    """
    if len(fitted) != len(members):
        raise ValueError(f"{len(fitted)} models for {len(members)} members: expected one each")
    if not fitted:
        return []
    if fitted[0].model.evaluation == "score":
        rows = max(sizes.n_score, sizes.n_ode, sizes.n_samples)
    else:
        rows = sizes.n_kl
    group = max(1, ROWS_PER_CALL // rows)
    return [
        row
        for start in range(0, len(fitted), group)
        for row in _evaluate_group(
            fitted[start : start + group], members[start : start + group], sizes, device
        )
    ]


@dataclass(frozen=True)
class _Group:
    """Models evaluated in one stack, with each one's truth (its member's target) and
    evaluation seed."""

    models: StackedModels
    truths: Sequence[Task]
    seeds: Sequence[int]

    def points(self, n: int, tau: float) -> tuple[Tensor | None, Tensor, Tensor]:
        """``n`` fresh samples of each member's truth at ``tau``, stacked: z (E, n, d_z) or
        ``None``, x (E, n, d_x), and their log p_tau (E, n)."""
        z, x = stacked_samples(self.truths, n, self.seeds, tau)
        log_p = [
            t.log_prob(x[e], None if z is None else z[e], tau) for e, t in enumerate(self.truths)
        ]
        return z, x, torch.stack(log_p)


def _group(fitted: Sequence[Fitted], members: Sequence[Member], device: str) -> _Group:
    """The models stacked on ``device``, each with its member's target and evaluation seed."""
    seeds = [EVALUATION_SEED_OFFSET + m.seed for m in members]
    targets = {id(m.pair): m.pair.target for m in members}  # members share their truths
    on_device = {key: target.to(device) for key, target in targets.items()}
    truths = [on_device[id(m.pair)] for m in members]
    return _Group(StackedModels([f.model for f in fitted], device), truths, seeds)


def _evaluate_group(
    fitted: Sequence[Fitted], members: Sequence[Member], sizes: EvaluationSizes, device: str
) -> list[dict[str, float]]:
    """``evaluate_ensemble`` of models evaluated in one stack."""
    models = [f.model for f in fitted]
    group = _group(fitted, members, device)
    rows = EVALUATIONS[models[0].evaluation](group, sizes)
    closed_form = models[0].closed_form
    if closed_form is not None:
        for row, model, member in zip(rows, models, members, strict=True):
            row |= CLOSED_FORMS[closed_form](model, member, sizes)
    return rows


def _density_rows(group: _Group, sizes: EvaluationSizes) -> list[dict[str, float]]:
    """KL, TV and squared Hellinger of each density model over ``sizes.n_kl`` truth
    samples."""
    z, x, log_p = group.points(sizes.n_kl, 0.0)
    return _divergence_rows(log_p, _by_rows(group.models.log_prob, x, z))


def _linear_gaussian_kl(
    model: LinearGaussianModel, member: Member, sizes: EvaluationSizes
) -> dict[str, float]:
    """``kl_exact``: the KL from the truth to the linear-Gaussian model, in closed form."""
    p, fit = member.pair.target.params, model.conditional()
    exact = linear_gaussian_kl(
        p["B"] @ p["W"], p["b"], p["Sigma"], fit.coefficients, fit.bias, fit.covariance
    )
    return {"kl_exact": exact.item()}


def _by_rows(function: Callable, x: Tensor, z: Tensor | None) -> Tensor:
    """``function(x, z)`` for x (E, N, d_x), z (E, N, d_z) or ``None``, in slices of rows of
    at most ``ROWS_PER_CALL`` over all members; (E, N, ...)."""
    rows = max(1, ROWS_PER_CALL // x.shape[0])
    parts = [
        function(x[:, i : i + rows], None if z is None else z[:, i : i + rows])
        for i in range(0, x.shape[1], rows)
    ]
    return torch.cat(parts, 1)


def _divergence_rows(log_p: Tensor, log_q: Tensor) -> list[dict[str, float]]:
    """KL, TV and squared Hellinger of each member from log p and log q (E, n)."""
    rows = []
    for p, q in zip(log_p, log_q, strict=True):
        row = {}
        for name, estimate in log_ratio_divergences(p, q).items():
            _columns(row, name, estimate)
        rows.append(row)
    return rows


def _score_model_rows(group: _Group, sizes: EvaluationSizes) -> list[dict[str, float]]:
    """The diffusion columns of ``evaluate_ensemble`` for a group of score models (which
    share their SDE and tau_0)."""
    tau0 = group.models.base.tau0
    rows = _likelihood_rows(group, sizes.n_ode)
    errors = score_errors(group.models.score, group.truths, group.seeds, tau0, sizes.n_score)
    distances = _sample_distances(group, sizes)
    shared = {id(truth): truth for truth in group.truths}  # members share their truths
    priors = {key: _prior_kl(truth) for key, truth in shared.items()}
    for row, truth, error, distance in zip(rows, group.truths, errors, distances, strict=True):
        row["kl_ode"] = row["kl"]
        _columns(row, "score_err", error)
        _columns(row, "path_kl_bound", bound_from(priors[id(truth)], error))
        row |= distance
    return rows


def _prior_kl(truth: Task) -> Estimate:
    """KL(p_1 || N(0, I)) of ``truth``, a property of the truth alone (one estimate for the
    members that share it): in closed form for a linear-Gaussian truth (standard error 0),
    else by Monte Carlo."""
    if truth.params.keys() >= {"W", "B", "b", "Sigma"}:
        return Estimate(prior_kl_exact(LinearScore.of_truth(truth.params, truth.sde)), 0.0)
    return prior_kl(truth)


@dataclass(frozen=True)
class LikelihoodPoints:
    """Truth samples at tau_0 and both log-densities there, for E score models.

    Attributes:
        z: (E, n, d_z) conditions, or ``None`` for unconditional truths.
        x: (E, n, d_x) points.
        log_p: (E, n) the truth's log-density, nats.
        log_q: (E, n) each model's probability-flow log-density, nats.
    """

    z: Tensor | None
    x: Tensor
    log_p: Tensor
    log_q: Tensor


def likelihood_points(
    fitted: Sequence[Fitted], members: Sequence[Member], n: int, device: str = "cpu"
) -> LikelihoodPoints:
    """Each score model's probability-flow log-density at the ``n`` truth samples at tau_0
    that its row's KL, TV and squared Hellinger are estimated on (``n`` =
    ``EvaluationSizes.n_ode``), beside the truth's own."""
    return _likelihoods(_group(fitted, members, device), n)


def _likelihoods(group: _Group, n: int) -> LikelihoodPoints:
    """``likelihood_points`` of a group (one Hutchinson probe per point from the member's
    seed, beyond ``ode_log_prob``'s exact dimensions)."""
    tau0 = group.models.base.tau0
    z, x, log_p = group.points(n, tau0)
    probe = torch.stack(
        [rademacher(x.shape[1:], seeded_generator(s, "likelihood probe")) for s in group.seeds]
    )
    models, conditions = group.models.on_conditions(z)
    log_q = ode_log_prob(
        models.score, models.base.sde, x, conditions, tau0, rtol=1e-5, atol=1e-5, probe=probe.to(x)
    )
    return LikelihoodPoints(z, x, log_p, log_q)


def _likelihood_rows(group: _Group, n: int) -> list[dict[str, float]]:
    """KL, TV and squared Hellinger of each score model by its probability-flow likelihood
    at tau_0 over ``n`` truth samples."""
    points = _likelihoods(group, n)
    return _divergence_rows(points.log_p, points.log_q)


def _sample_distances(group: _Group, sizes: EvaluationSizes) -> list[dict[str, float]]:
    """``sw2`` and ``mmd`` of each model's ``sizes.n_samples`` reverse-SDE samples at tau_0
    (on fresh truth conditions) against as many fresh truth samples, on (z, x)."""
    models, truths, seeds = group.models, group.truths, group.seeds
    n, tau0 = sizes.n_samples, models.base.tau0
    z, _ = stacked_samples(truths, n, [s + 1 for s in seeds], tau0)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    heads, conditions = models.on_conditions(z)
    with torch.no_grad():
        samples = reverse_sde_samples(
            heads.score,
            models.base.sde,
            n,
            truths[0].d_x,
            conditions,
            tau0,
            sizes.sampler_steps,
            generators,
            device=models.device,
        )
    joint = lambda z, x: (x if z is None else torch.cat([z, x], 1)).cpu()  # noqa: E731
    distances = []
    for e, (drawn, truth, seed) in enumerate(zip(samples, truths, seeds, strict=True)):
        drawn = joint(None if z is None else z[e], drawn)
        fresh = joint(*truth.sample(n, seed + 2, tau0))
        row = {}
        _columns(row, "sw2", sliced_w2(drawn, fresh, seed=seed))
        _columns(row, "mmd", mmd(drawn, fresh))
        distances.append(row)
    return distances


def _score_function(model: ScoreModel):
    """The model's score on float64 CPU tensors, as the diffusion code takes it."""

    def score(x, z, tau):
        return model.score(model.as_input(x), model.as_input(z), tau).to(x)

    return score


def exact_sampler_kls(model: LinearScoreModel, member: Member, steps: int) -> dict[str, float]:
    """``kl_sampler``: exact KL from p_tau_0 to the continuous-time reverse SDE's law;
    ``kl_euler_maruyama``: the same for its ``steps``-step recursion; ``kl_ode_exact``: the
    same for the probability-flow ODE's law, the exact value that ``kl_ode`` estimates;
    ``score_err_exact`` and ``path_kl_bound_exact``: the score error and the path bound in
    closed form, the exact values that ``score_err`` and ``path_kl_bound`` estimate."""
    true_score = LinearScore.of_truth(member.pair.target.params, model.sde)
    truth = true_score.at(model.tau0)
    fit = linear_fit(model)
    score = LinearScore(fit.coefficients, fit.bias, fit.covariance, model.sde)
    error = score_error_exact(score, true_score, model.tau0)
    bound = {
        "score_err_exact": error,
        "path_kl_bound_exact": prior_kl_exact(true_score) + 0.5 * error,
    }
    laws = {
        "kl_sampler": sampler_law(score, model.tau0),
        "kl_euler_maruyama": euler_maruyama_law(score, model.tau0, steps),
        "kl_ode_exact": ode_law(score, model.tau0),
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
    } | bound


EVALUATIONS = {"density": _density_rows, "score": _score_model_rows}
CLOSED_FORMS = {
    "linear_gaussian": _linear_gaussian_kl,
    "linear_score": lambda model, member, sizes: exact_sampler_kls(
        model, member, sizes.sampler_steps
    ),
}
"""How each model kind (its ``evaluation``, its ``closed_form``) is evaluated."""


def draw_samples(fitted: Fitted, member: Member, n: int) -> dict[str, np.ndarray]:
    """``n`` model samples and ``n`` fresh truth samples of the target, for display.

    Conditional models draw one x per fresh truth condition z. Returns float arrays
    ``model`` and ``truth``, each (n, d_x).
    """
    truth, model = member.pair.target, fitted.model
    seed = EVALUATION_SEED_OFFSET + member.seed + 3
    z, x = truth.sample(n, seed)
    if model.evaluation == "score":
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
