"""Every must-hold check catches the error it exists for, at the sizes the quick profile runs
it at, passes on correct rows, and fails a correct run rarely (its false alarm rate over
simulated replicate runs)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
from anchor import ANCHOR, anchor_rows, task_samples

from sims.evaluation import EvaluationSizes, evaluate_ensemble
from sims.generators import make_task_pair
from sims.methods import Training, make_members, scratch
from sims.metrics import linear_gaussian_kl
from sims.models.architectures import ARCHITECTURES
from sims.models.linear_gaussian import fit_reduced_rank
from theory import checks
from theory.parametric import k_oracle, k_scratch, k_subspace, kappa
from theory.verdict import judge

DIMS = (ANCHOR["d_x"], ANCHOR["d_z"], ANCHOR["d_h"])
KAPPA = kappa(make_task_pair("linear_gaussian", **ANCHOR))
K = {"scratch": k_scratch(*DIMS), "oracle": k_oracle(DIMS[0], DIMS[2])}
K_W = k_subspace(DIMS[1], DIMS[2])
CALIBRATION_SIZES = (250, 500, 1000, 2000, 4000)  # the quick profile's
CROSSOVER_SOURCES = (250, 500, 1000, 2000, 4000, 8000, 16000)
REPLICATES = 100  # simulated runs for a false alarm rate


def false_alarms(judge_run, replicates: int = REPLICATES) -> float:
    """The share of simulated correct runs (independent draws) whose check fails."""
    return np.mean([judge_run(draw).verdict == checks.FAIL for draw in range(replicates)])


def test_batched_anchor_fits_are_the_lone_fits():
    rows = anchor_rows(n_targets=(300,), seeds=3)
    generator = torch.Generator().manual_seed(1000)
    pair = make_task_pair("linear_gaussian", **ANCHOR)
    z, x = task_samples(pair.target, 3, 300, generator)
    fit, _ = fit_reduced_rank(x[1], z[1], 2)
    p = pair.target.params
    truth = (p["B"] @ p["W"], p["b"], p["Sigma"])
    alone = linear_gaussian_kl(*truth, fit.coefficients, fit.bias, fit.covariance)
    scratch = rows[(rows.method == "scratch") & (rows.seed == 1)].kl_exact.item()
    assert scratch == pytest.approx(alone.item(), rel=1e-9)


@pytest.fixture(scope="module")
def calibration_rows():
    """The quick profile's calibration: 200 seeds at every size."""
    return anchor_rows(n_targets=CALIBRATION_SIZES, seeds=200)


@pytest.mark.parametrize("method", ["scratch", "oracle"])
def test_calibration_catches_a_tenth_of_kl_and_k_off_by_3(calibration_rows, method):
    rows = calibration_rows[calibration_rows.method == method]
    check = partial(checks.calibration, "calibration")
    assert check(rows, K[method]).passed
    for factor in (1.1, 0.9):
        assert check(rows.assign(kl_exact=rows.kl_exact * factor), K[method]).verdict == checks.FAIL
    for offset in (3, -3):
        assert check(rows, K[method] + offset).verdict == checks.FAIL


@pytest.mark.parametrize("method", ["scratch", "oracle"])
def test_calibration_false_alarms_are_rare(method):
    def run(draw):
        rows = anchor_rows(n_targets=(250, 1000, 4000), methods=(method,), seeds=20, draw=draw)
        return checks.calibration("calibration", rows, K[method])

    assert false_alarms(run) <= 0.05


def test_calibration_needs_five_seeds_and_two_sizes():
    rows = anchor_rows(n_targets=(250, 1000), methods=("oracle",), seeds=4)
    assert checks.calibration("c", rows, K["oracle"]).verdict == checks.NOT_ASSESSABLE
    one_size = anchor_rows(n_targets=(1000,), methods=("oracle",), seeds=20)
    assert checks.calibration("c", one_size, K["oracle"]).verdict == checks.NOT_ASSESSABLE
    assert checks.calibration("c", one_size.iloc[:0], 22).detail == "0 rows to judge"


def crossover_rows(draw: int = 0, seeds: int = 20) -> pd.DataFrame:
    """The quick profile's crossover experiment, with the oracle beside it."""
    return anchor_rows(
        n_targets=(250, 500, 1000),
        n_sources=CROSSOVER_SOURCES,
        methods=("scratch", "oracle", "transfer"),
        seeds=seeds,
        draw=draw,
    )


def source_term(rows: pd.DataFrame, kappa_: float = KAPPA) -> checks.Check:
    transfer, oracle = rows[rows.method == "transfer"], rows[rows.method == "oracle"]
    return checks.transfer_source_term("source term", transfer, oracle, kappa_, K_W)


def test_the_source_term_catches_a_cheating_transfer_and_kappa_off_by_half():
    rows = crossover_rows()
    assert source_term(rows).passed
    oracle = rows[rows.method == "oracle"][["n_target", "seed", "kl_exact"]]
    transfer = rows[rows.method == "transfer"].drop(columns="kl_exact")
    cheat = pd.concat(
        [rows[rows.method == "oracle"], transfer.merge(oracle, on=["n_target", "seed"])]
    )
    assert source_term(cheat).verdict == checks.FAIL  # fitted with the true embedding
    assert source_term(rows, KAPPA * 1.5).verdict == checks.FAIL
    assert source_term(rows, KAPPA / 1.5).verdict == checks.FAIL


def crossover(rows: pd.DataFrame, n_t: int = 1000, kappa_: float = KAPPA) -> checks.Check:
    at = rows[rows.n_target == n_t]
    transfer, scratch = at[at.method == "transfer"], at[at.method == "scratch"]
    return checks.crossover("crossover", transfer, scratch, kappa_, DIMS)


@pytest.mark.parametrize("n_t", [250, 500, 1000])
def test_the_crossover_catches_kappa_doubled_or_halved(n_t):
    rows = crossover_rows()
    assert crossover(rows, n_t).passed
    assert crossover(rows, n_t, 2 * KAPPA).verdict == checks.FAIL
    assert crossover(rows, n_t, KAPPA / 2).verdict == checks.FAIL


def test_an_undefined_crossover_fails_and_says_how_often_replicates_cross():
    rows = crossover_rows()
    far = rows[(rows.method != "transfer") | (rows.n_source >= 8000)]
    check = crossover(far)
    assert check.verdict == checks.FAIL and "of replicates without a crossing" in check.detail


def test_the_source_term_and_crossover_false_alarms_are_rare():
    """60 simulated crossover experiments (20 seeds each): each check fails at most 3."""
    runs = [crossover_rows(draw) for draw in range(60)]
    judged = {
        "source term": [source_term(rows) for rows in runs],
        **{f"crossover {n}": [crossover(rows, n) for rows in runs] for n in (250, 500, 1000)},
    }
    for name, found in judged.items():
        assert np.mean([c.verdict == checks.FAIL for c in found]) <= 0.05, name


def test_ordering_pairs_seeds_and_catches_an_inflated_oracle():
    rows = anchor_rows(n_targets=(1000,), seeds=20)
    oracle, scratch = rows[rows.method == "oracle"], rows[rows.method == "scratch"]
    assert checks.ordering("o", oracle, scratch).passed
    assert checks.ordering("o", oracle.assign(kl=oracle.kl * 2), scratch).verdict == checks.FAIL
    few = checks.ordering("o", oracle[oracle.seed < 4], scratch)
    assert few.verdict == checks.NOT_ASSESSABLE


def test_pinsker_catches_a_deflated_kl_and_is_not_assessable_on_no_rows():
    rows = pd.DataFrame({"kl": [0.02, 0.5], "kl_se": 1e-3, "tv": [0.05, 0.3], "tv_se": 1e-3})
    assert checks.pinsker(rows).passed
    assert checks.pinsker(rows.assign(kl=rows.kl * 0.3)).verdict == checks.FAIL
    assert checks.pinsker(rows.iloc[:0]).verdict == checks.NOT_ASSESSABLE


def test_seed_z_scores_hold_their_level_with_rows_that_share_their_seeds_points():
    """Rows of one seed share truth samples: their z-scores correlate (0.8 here). The test of
    the seeds' mean keeps its level where pooling rows as independent would not."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"seed": np.repeat(np.arange(20), 6)})

    def z_scores(shift=0.0):
        shared = np.repeat(rng.standard_normal(20), 6)
        return pd.Series(np.sqrt(0.8) * shared + np.sqrt(0.2) * rng.standard_normal(120) + shift)

    runs = [checks.seed_z("z", rows, z_scores(), "z") for _ in range(1000)]
    assert np.mean([c.verdict == checks.FAIL for c in runs]) <= 0.01
    assert checks.seed_z("z", rows, z_scores(shift=1.5), "z").verdict == checks.FAIL
    astray = z_scores()
    astray.iloc[7] = 6.0  # one row 6 se off
    assert checks.seed_z("z", rows, astray, "z").verdict == checks.FAIL
    assert checks.seed_z("z", rows, z_scores().iloc[:0], "z").verdict == checks.NOT_ASSESSABLE


@pytest.fixture(scope="module")
def score_anchor_rows():
    """Rows of linear score models on the diffusion anchor (scratch, 10 seeds, two n_t),
    evaluated with 1000 likelihood points each."""
    pair = make_task_pair("linear_gaussian", d_x=2, d_z=4, d_h=1)
    members = [m for n in (250, 1000) for m in make_members(pair, range(10), n, None)]
    fitted = scratch(members, Training(ARCHITECTURES["linear_score"]))
    sizes = EvaluationSizes(n_kl=100, n_ode=1000, n_samples=50, sampler_steps=20, n_score=500)
    rows = evaluate_ensemble(fitted, members, sizes)
    return pd.DataFrame(rows).assign(seed=[m.seed for m in members])


def test_the_path_bound_catches_a_tenth_off_and_the_half_dropped(score_anchor_rows):
    rows = score_anchor_rows
    assert checks.path_bound(rows).passed and checks.path_bound_exact(rows).passed
    lower = rows.assign(path_kl_bound=rows.path_kl_bound * 0.9)
    assert checks.path_bound_exact(lower).verdict == checks.FAIL
    doubled = rows.assign(path_kl_bound=rows.path_kl_bound + 0.5 * rows.score_err)
    assert checks.path_bound_exact(doubled).verdict == checks.FAIL


def test_the_ode_likelihood_catches_kl_by_half_again_and_five_millinats(score_anchor_rows):
    rows = score_anchor_rows
    assert checks.ode_likelihood(rows).passed
    assert checks.ode_likelihood(rows.assign(kl_ode=rows.kl_ode * 1.5)).verdict == checks.FAIL
    assert checks.ode_likelihood(rows.assign(kl_ode=rows.kl_ode + 0.005)).verdict == checks.FAIL


def test_the_verdict_judges_rows_by_what_they_are_and_measures_power():
    rows = pd.concat([crossover_rows(), anchor_rows(n_targets=CALIBRATION_SIZES, seeds=200)])
    rows = rows.assign(experiment="anything").drop_duplicates(
        ["method", "n_target", "n_source", "seed"]
    )
    verdict = judge(rows)
    by_name = {c.name: c for c in verdict.checks}
    assert by_name["calibration 2nKL/k, scratch"].passed
    assert "k + " in by_name["calibration 2nKL/k, oracle"].power
    assert "transfer fitted with the true embedding" in by_name["transfer source term"].power
    assert {f"crossover n_s*, n_t={n}" for n in (250, 500, 1000)} <= set(by_name)
    assert verdict.failures == []
    pinsker = by_name["pinsker"]  # no TV in these rows: nothing to judge
    assert pinsker.verdict == checks.NOT_ASSESSABLE
