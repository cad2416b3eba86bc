"""Evaluation of an ensemble's models together: each model's row is the one it gets alone."""

import math

import pytest
import torch
from conftest import SMALL_DIMS

from sims import evaluation
from sims.diffusion.bounds import score_error, score_errors
from sims.diffusion.likelihood import ode_log_prob
from sims.diffusion.sampling import reverse_sde_sample, reverse_sde_samples
from sims.engine import MinibatchConfig
from sims.evaluation import EvaluationSizes, evaluate, evaluate_ensemble, likelihood_points
from sims.generators import families, make_task_pair
from sims.methods import Training, make_members, scratch
from sims.models.architectures import ARCHITECTURES, FlowArchitecture, ScoreArchitecture
from sims.models.stacked import StackedModels
from sims.runner import tasks

TAU0 = 1e-3
CONFIG = MinibatchConfig(max_steps=40, eval_every=20, batch_size=64)
FLOWS = Training(FlowArchitecture(hidden=16, transforms=2), CONFIG)
SCORES = Training(ScoreArchitecture(hidden=16, layers=2), CONFIG)
LIKELIHOOD_COLUMNS = ("kl", "kl_ode", "tv", "hellinger2")
SIZES = EvaluationSizes(n_kl=300, n_ode=40, n_samples=60, sampler_steps=30, n_score=50)


def two_truths(family):
    """Members of two truths of ``family`` (as two cells of one ensemble), two seeds each."""
    members = []
    for seed in (0, 1):
        pair = make_task_pair(family, seed=seed, **SMALL_DIMS[family])
        members += make_members(pair, [seed, seed + 10], n_target=100, n_source=None)
    return members


def stacked_truth_score(truths):
    """The true scores of ``truths`` as one score of stacked inputs (E, N, d)."""

    def score(x, z, tau):
        rows = [t.score(x[i], None if z is None else z[i], tau) for i, t in enumerate(truths)]
        return torch.stack(rows)

    return score


@pytest.mark.parametrize("name", ["flow", "diffusion", "linear_gaussian", "linear_score"])
def test_stacked_models_compute_what_each_model_computes(name):
    family = "linear_gaussian" if name.startswith("linear") else "mixture"
    members = two_truths(family)
    training = {"flow": FLOWS, "diffusion": SCORES}.get(name, Training(ARCHITECTURES[name]))
    models = [f.model for f in scratch(members, training)]
    stacked = StackedModels(models)
    z, x = members[0].pair.target.sample(30, seed=5)
    xs, zs = x.expand(len(models), -1, -1), z.expand(len(models), -1, -1)
    heads, conditions = stacked.on_conditions(zs)  # each member's own embedding, applied once
    assert conditions.shape == (len(models), 30, 2)
    if name in ("flow", "linear_gaussian"):
        alone = torch.stack([m.truth_log_prob(x, z) for m in models])
        torch.testing.assert_close(stacked.log_prob(xs, zs), alone)
        torch.testing.assert_close(heads.log_prob(xs, conditions), alone)
    else:
        alone = [m.score(m.as_input(x), m.as_input(z), 0.3).detach().double() for m in models]
        torch.testing.assert_close(stacked.score(xs, zs, 0.3), torch.stack(alone))
        torch.testing.assert_close(heads.score(xs, conditions, 0.3), torch.stack(alone))


@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("training", [FLOWS, SCORES], ids=["flow", "diffusion"])
def test_an_ensemble_evaluated_together_gives_each_model_its_own_row(family, training):
    """Members of two truths: every column equals the model's lone row, up to float32
    reassociation, except the likelihood KLs, whose adaptive ODE steps are shared by the
    members and so agree within the solver's tolerances (well inside a standard error)."""
    members = two_truths(family)
    fitted = scratch(members, training)
    together = evaluate_ensemble(fitted, members, SIZES)
    for row, f, member in zip(together, fitted, members, strict=True):
        alone = evaluate(f, member, SIZES)
        assert row.keys() == alone.keys()
        for column, value in alone.items():
            ode = training is SCORES and column.removesuffix("_se") in LIKELIHOOD_COLUMNS
            tolerance = 1e-3 * (1 + abs(value)) if ode else 1e-5 * (1 + abs(value))
            assert row[column] == pytest.approx(value, abs=tolerance), column
        if training is SCORES:
            assert abs(row["kl"] - alone["kl"]) < 0.05 * alone["kl_se"]


def test_likelihood_points_are_those_of_each_rows_kl_and_hellinger():
    members = two_truths("gaussian_smooth")
    fitted = scratch(members, SCORES)
    rows = evaluate_ensemble(fitted, members, SIZES)
    points = likelihood_points(fitted, members, SIZES.n_ode)
    assert points.log_p.shape == points.log_q.shape == (len(members), SIZES.n_ode)
    for member, z, x, p in zip(members, points.z, points.x, points.log_p, strict=True):
        torch.testing.assert_close(member.pair.target.log_prob(x, z, TAU0), p)
    for row, p, q in zip(rows, points.log_p, points.log_q, strict=True):
        assert (p - q).mean().item() == pytest.approx(row["kl"], rel=1e-9)
        assert (-torch.expm1(0.5 * (q - p))).mean().item() == pytest.approx(
            row["hellinger2"], rel=1e-9
        )


def test_joint_likelihood_ode_meets_each_members_tolerance():
    """Two truths solved together with their true scores: each member's log-density is
    exact within the lone solver's 1e-3 nats (test_diffusion), the easier member included."""
    truths = [make_task_pair("mixture", seed=s, **SMALL_DIMS["mixture"]).target for s in (1, 4)]
    points = [t.sample(100, seed=0, tau=TAU0) for t in truths]
    z, x = (torch.stack(parts) for parts in zip(*points, strict=True))

    def exact_prior(y):
        return torch.stack([t.log_prob(y[i], z[i], 1.0) for i, t in enumerate(truths)])

    estimate = ode_log_prob(stacked_truth_score(truths), truths[0].sde, x, z, TAU0, exact_prior)
    for i, truth in enumerate(truths):
        torch.testing.assert_close(estimate[i], truth.log_prob(x[i], z[i], TAU0), atol=1e-3, rtol=0)


def test_members_sample_and_score_as_they_do_alone():
    """Each member's samples and score error are its lone ones up to float64 rounding: the
    same operations, reduced in another order (a relative 1e-12 is about 5000 ulp, far below
    any modelling error and far above 20 steps' accumulated rounding)."""
    truths = [make_task_pair("mixture", seed=s, **SMALL_DIMS["mixture"]).target for s in (1, 4)]
    score = stacked_truth_score(truths)
    z = torch.stack([t.sample(50, seed=3)[0] for t in truths])
    generators = [torch.Generator().manual_seed(s) for s in (7, 8)]
    together = reverse_sde_samples(score, truths[0].sde, 50, 2, z, TAU0, 20, generators)
    errors = score_errors(lambda x, z, tau: 1.1 * score(x, z, tau), truths, [3, 9], TAU0, 40)
    for i, (truth, seed) in enumerate(zip(truths, (7, 8), strict=True)):
        generator = torch.Generator().manual_seed(seed)
        alone = reverse_sde_sample(
            truth.score, truth.sde, 50, 2, z[i], TAU0, 20, generator=generator
        )
        torch.testing.assert_close(together[i], alone, rtol=1e-12, atol=1e-12)
        wrong = lambda x, z, tau, t=truth: 1.1 * t.score(x, z, tau)  # noqa: E731
        lone = score_error(wrong, truth, TAU0, 40, (3, 9)[i])
        assert errors[i].value == pytest.approx(lone.value, rel=1e-12)
        assert errors[i].se == pytest.approx(lone.se, rel=1e-12)


def test_a_model_that_breaks_the_ensembles_evaluation_fails_alone():
    """A score model with NaN weights breaks the joint likelihood ODE: the ensemble is then
    evaluated model by model, and only the broken one is recorded as failed."""
    members = two_truths("mixture")
    fitted = scratch(members, SCORES)
    with torch.no_grad():
        next(fitted[1].model.head.parameters()).fill_(math.nan)
    rows = tasks._evaluated(fitted, members, SIZES, "cpu")
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "ok"]
    assert rows[1]["error"].startswith("evaluation:") and rows[1]["seed"] == 10
    assert rows[0]["kl"] == pytest.approx(evaluate(fitted[0], members[0], SIZES)["kl"], abs=1e-3)


@pytest.mark.parametrize("training", [FLOWS, SCORES], ids=["flow", "diffusion"])
def test_evaluation_in_small_groups_gives_the_same_rows(training, monkeypatch):
    """Calls capped at 120 rows: the models go one or two at a time, in slices of rows."""
    members = two_truths("gaussian_smooth")
    fitted = scratch(members, training)
    together = evaluate_ensemble(fitted, members, SIZES)
    monkeypatch.setattr(evaluation, "ROWS_PER_CALL", 120)
    for grouped, row in zip(evaluate_ensemble(fitted, members, SIZES), together, strict=True):
        for column, value in row.items():
            assert grouped[column] == pytest.approx(value, rel=1e-3, abs=1e-5), column


def test_the_prior_kl_is_estimated_once_per_truth(monkeypatch):
    """The path bound's prior KL is a property of the truth: members of two truths, two
    each, estimate it twice."""
    members = two_truths("gaussian_smooth")
    fitted = scratch(members, SCORES)
    truths = []
    estimate = evaluation._prior_kl
    monkeypatch.setattr(
        evaluation, "_prior_kl", lambda truth: truths.append(truth) or estimate(truth)
    )
    rows = evaluate_ensemble(fitted, members, SIZES)
    assert len(truths) == 2 and truths[0] is not truths[1]
    assert rows[0]["path_kl_bound"] != rows[2]["path_kl_bound"]


def test_evaluation_wants_one_model_per_member():
    members = two_truths("mixture")
    fitted = scratch(members[:2], FLOWS)
    with pytest.raises(ValueError, match="2 models for 4 members"):
        evaluate_ensemble(fitted, members, SIZES)
    assert evaluate_ensemble([], [], SIZES) == []


def test_hutchinson_probes_are_each_members_own():
    """d_x = 17, past the exact divergence: each model's likelihood KL together is its lone
    one (its probes come from its own seed), within the shared steps' tolerance."""
    pair = make_task_pair("shared_subspace", d_x=17, d_h=1, seed=0)
    members = make_members(pair, [0, 1, 2], n_target=100, n_source=None)
    fitted = scratch(members, SCORES)
    together = evaluate_ensemble(fitted, members, SIZES)
    for row, f, member in zip(together, fitted, members, strict=True):
        alone = evaluate(f, member, SIZES)
        assert row["kl"] == pytest.approx(alone["kl"], abs=1e-3 * (1 + abs(alone["kl"])))
        assert abs(row["kl"] - alone["kl"]) < 0.05 * alone["kl_se"]
