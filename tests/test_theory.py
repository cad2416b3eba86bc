"""theory/: constants, candidate rates, fitting with intervals, and the checks."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sims.generators import make_task_pair
from theory import checks
from theory.fitting import (
    Interval,
    crossover_seeds,
    fit_crossover,
    fit_slope,
    fit_two_term,
    fitted_constant,
)
from theory.parametric import (
    crossover_n_source,
    k_affine,
    k_oracle,
    k_scratch,
    k_subspace,
    kappa,
    kappa_of,
    transfer_kl,
)
from theory.rates import Setting, exponent, predict


def test_parameter_counts_by_hand():
    assert k_oracle(2, 1) == 2 + 2 + 3
    assert k_oracle(4, 2) == 8 + 4 + 10
    assert k_subspace(4, 1) == 3
    assert k_scratch(2, 4, 1) == 10
    assert k_affine(2) == 6


def test_kappa_by_hand_and_from_a_pair():
    g_t = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    g_s = torch.diag(torch.tensor([2.0, 2.0], dtype=torch.float64))
    assert kappa_of(g_t, g_s) == pytest.approx((0.5 + 2.0) / 2)
    pair = make_task_pair("linear_gaussian", d_x=3, d_z=5, d_h=2, signal_target=2.0, seed=4)
    assert kappa(pair) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="linear_gaussian"):
        kappa(make_task_pair("mixture"))


def test_transfer_prediction_and_crossover():
    assert transfer_kl(2, 4, 1, kappa=2.0, n_target=100, n_source=1000) == pytest.approx(
        7 / 200 + 2 * 3 / 2000
    )
    n_star = crossover_n_source(kappa=3.0, n_target=500)
    assert n_star == 1500
    at_crossover = transfer_kl(2, 4, 1, kappa=3.0, n_target=500, n_source=n_star)
    assert at_crossover == pytest.approx(k_scratch(2, 4, 1) / (2 * 500))


def test_candidate_rates():
    config = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2).config
    flow = Setting(config, "flow")
    assert predict("gaussian_smooth", "scratch", flow).target_exponent == pytest.approx(
        exponent(2.0, 8)
    )
    transfer = predict("gaussian_smooth", "transfer", flow)
    assert (transfer.target_exponent, transfer.source_exponent) == pytest.approx((4 / 6, 4 / 12))
    lossy = Setting(config, "flow", flow_smoothness_loss=1.0)
    assert predict("gaussian_smooth", "oracle", lossy).target_exponent == 0.5
    lossless = Setting(config, "diffusion", flow_smoothness_loss=1.0)
    assert predict("gaussian_smooth", "oracle", lossless).target_exponent == 4 / 6
    joint = Setting(config, "flow", variant="joint")
    assert predict("gaussian_smooth", "scratch", joint).target_exponent == 4 / 14
    mixture = make_task_pair("mixture", d_x=2, d_z=8, d_h=2).config
    assert predict("mixture", "oracle", Setting(mixture, "flow")).target_exponent == 0.5
    linear = make_task_pair("linear_gaussian").config
    anchor = predict("linear_gaussian", "transfer", Setting(linear, "linear_gaussian"))
    assert (anchor.target_exponent, anchor.source_exponent, anchor.status) == (
        1.0,
        1.0,
        "formalization",
    )
    assert predict("gaussian_smooth", "finetune", flow) is None
    with pytest.raises(ValueError, match="variant"):
        predict("gaussian_smooth", "scratch", Setting(config, "flow", variant="x"))


def power_law_rows(rng, exponent_, grid, seeds, noise=0.3, constant=2.0):
    return pd.DataFrame(
        [
            {"n_target": n, "seed": s, "kl": constant * n**-exponent_ * rng.lognormal(0, noise)}
            for n in grid
            for s in range(seeds)
        ]
    )


def test_slope_recovers_a_known_exponent_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    grid = [100, 200, 400, 800, 1600, 3200]
    covered, estimates = 0, []
    repetitions = 200
    for repetition in range(repetitions):
        frame = power_law_rows(rng, 0.6, grid, seeds=10)
        fit = fit_slope(frame, n_bootstrap=400, seed=repetition)
        covered += fit.covers(-0.6)
        estimates.append(fit.value)
    assert np.mean(estimates) == pytest.approx(-0.6, abs=0.02)
    assert 0.85 <= covered / repetitions <= 0.99


def test_slope_uses_the_upper_grid():
    """A kink below the upper half of the grid does not move the slope."""
    rng = np.random.default_rng(1)
    frame = power_law_rows(rng, 0.5, [100, 200, 400, 800], seeds=8, noise=0.05)
    frame.loc[frame.n_target <= 200, "kl"] *= 10
    assert fit_slope(frame, upper_fraction=0.5).value == pytest.approx(-0.5, abs=0.1)


def test_fitted_constant():
    n = np.array([100.0, 1000.0])
    assert fitted_constant(n, 3 * n**-0.5, 0.5) == pytest.approx(3.0)


def test_a_slope_through_a_mean_that_is_not_positive_is_undefined(recwarn):
    rng = np.random.default_rng(3)
    frame = power_law_rows(rng, 0.5, [100, 200, 400, 800], seeds=4, noise=0.05)
    frame.loc[frame.n_target == 800, "kl"] = -0.01  # Monte Carlo KL estimates can be < 0
    fit = fit_slope(frame)
    assert np.isnan([fit.value, fit.low, fit.high]).all()
    assert np.isnan(fitted_constant(np.array([100.0, 1000.0]), np.array([0.1, 0.0]), 0.5))
    assert not recwarn.list


def test_two_term_fit_recovers_both_exponents():
    rng = np.random.default_rng(2)
    rows = [
        {
            "n_target": n_t,
            "n_source": n_s,
            "seed": s,
            "kl": (3 * n_t**-0.8 + 5 * n_s**-0.5) * rng.lognormal(0, 0.1),
        }
        for n_t in (100, 300, 1000, 3000)
        for n_s in (100, 1000, 10_000, 100_000)
        for s in range(10)
    ]
    fit = fit_two_term(pd.DataFrame(rows), n_bootstrap=100)
    assert fit.target_exponent.value == pytest.approx(0.8, abs=0.1)
    assert fit.source_exponent.value == pytest.approx(0.5, abs=0.1)
    assert fit.target_exponent.covers(0.8) and fit.source_exponent.covers(0.5)


def test_crossover_is_located_where_the_curves_meet():
    rng = np.random.default_rng(3)
    n_t, kappa_, head, subspace = 1000, 4.0, 20.0, 12.0
    transfer = pd.DataFrame(
        [
            {"n_source": n_s, "kl": (head / n_t + kappa_ * subspace / n_s) * rng.lognormal(0, 0.1)}
            for n_s in (1000, 2000, 4000, 8000, 16000)
            for _ in range(40)
        ]
    )
    scratch = pd.DataFrame({"kl": (head + subspace) / n_t * rng.lognormal(0, 0.1, size=40)})
    fit = fit_crossover(transfer, scratch)
    assert fit.value == pytest.approx(kappa_ * n_t, rel=0.2)
    assert fit.covers(kappa_ * n_t)


def rows(kl, tv, se=1e-3):
    return pd.DataFrame({"kl": kl, "kl_se": se, "tv": tv, "tv_se": se})


def test_pinsker_check_fails_on_a_planted_violation():
    assert checks.pinsker(rows([0.02, 0.5], [0.05, 0.3])).passed
    planted = checks.pinsker(rows([0.02, 0.5], [0.2, 0.3]))
    assert not planted.passed and planted.figure == 1


def test_calibration_and_transfer_checks_fail_outside_the_band():
    assert checks.in_band("calibration", pd.Series([0.95, 1.05])).passed
    assert not checks.in_band("calibration", pd.Series([1.5, 1.5])).passed
    assert not checks.in_band("transfer", pd.Series([0.70, 0.72, 0.71, 0.69])).passed
    # two noisy seeds cannot reject a ratio of 1
    assert checks.in_band("noisy", pd.Series([0.5, 1.1])).passed


def test_crossover_check_fails_when_off_by_more_than_a_factor_1_5():
    assert checks.crossover("crossover", Interval(4500, 3000, 6000), 4000, 20).passed
    assert not checks.crossover("crossover", Interval(8000, 6000, 9000), 4000, 20).passed
    assert not checks.crossover("crossover", Interval(math.nan, 0, 0), 4000, 20).passed
    assert not checks.crossover("crossover", Interval(2000, 1500, 2600), 4000, 20).passed
    # a few noisy seeds cannot reject the prediction: the interval reaches the band
    assert checks.crossover("noisy", Interval(523, 480, 930), 800, 3).passed


def test_crossover_seeds_are_the_fewest_in_any_cell():
    transfer = pd.DataFrame({"n_source": [100, 100, 100, 200, 200], "kl": 1.0})
    assert crossover_seeds(transfer, pd.DataFrame({"kl": [1.0] * 4})) == 2
    assert crossover_seeds(transfer, pd.DataFrame({"kl": [1.0]})) == 1


def test_ordering_and_path_bound_checks_fail_on_planted_violations():
    tight = pd.Series([0.2, 0.2001])
    assert checks.ordering("oracle <= scratch", tight - 0.1, tight).passed
    assert checks.ordering("oracle <= scratch", tight + 0.1, tight).verdict == checks.FAIL
    noisy = pd.Series([0.1, 0.5])
    assert checks.ordering("within noise", noisy, pd.Series([0.25, 0.26])).passed
    bound = pd.DataFrame({"kl_sampler": [0.1, 0.2], "path_kl_bound": [0.15, 0.25]})
    assert checks.path_bound(bound).passed
    bound.loc[1, "path_kl_bound"] = 0.19
    assert not checks.path_bound(bound).passed


def test_ode_likelihood_check_fails_on_a_row_beyond_5_standard_errors():
    rows = pd.DataFrame({"kl_ode": [0.012, 0.003], "kl_ode_exact": [0.010, 0.004], "kl_se": 1e-3})
    assert checks.ode_likelihood(rows).passed
    rows.loc[0, "kl_ode"] = 0.0155
    planted = checks.ode_likelihood(rows)
    assert planted.verdict == checks.FAIL and planted.figure == 1


def test_candidate_checks_never_fail_the_run(tmp_path):
    report = [
        checks.slope("slope", Interval(-0.4, -0.5, -0.3), candidate=-0.9),
        checks.in_band("calibration", pd.Series([1.0, 1.01])),
    ]
    assert report[0].verdict == checks.INCONSISTENT and checks.failed(report) == []
    checks.write(report, tmp_path / "checks.csv")
    written = pd.read_csv(tmp_path / "checks.csv")
    assert list(written.columns) == ["name", "kind", "figure", "limit", "verdict", "detail"]
    assert list(written.kind) == ["candidate", "must_hold"]
    assert list(written.verdict) == ["not consistent", "pass"]


def test_a_single_seed_makes_a_statistical_check_not_assessable(tmp_path):
    """One seed has no standard error (and one seed per cell no bootstrap interval): the
    check is reported, not assessable, and neither passes nor fails the run, however far
    its figure lies from the limit."""
    far = checks.in_band("calibration", pd.Series([0.64], dtype="Float64"))  # as a run's rows
    near = checks.in_band("transfer", pd.Series([1.0]))
    worse = checks.ordering("oracle <= scratch", pd.Series([0.3]), pd.Series([0.2]))
    mixed = checks.ordering("oracle <= scratch", pd.Series([0.3]), pd.Series([0.2, 0.21]))
    point = checks.crossover("crossover", Interval(8000, 8000, 8000), 4000, 1)
    lost = checks.crossover("crossover", Interval(math.nan, math.nan, math.nan), 4000, 1)
    assert checks.slope("slope", Interval(-0.4, -0.4, -0.4), -0.9).verdict == "not assessable"
    unassessed = [far, near, worse, mixed, point, lost]
    assert all(c.verdict == checks.NOT_ASSESSABLE and not c.passed for c in unassessed)
    assert far.figure == pytest.approx(0.64) and worse.figure == pytest.approx(0.1)
    assert far.detail == "1 seed: no standard error"
    assert mixed.detail == "1 seed and 2 seeds: no standard error"
    assert "1 seed per cell, no spread over seeds" in point.detail
    # with seeds enough, an undefined crossover fails: no resampling of any seed gave one
    undefined = checks.crossover("crossover", Interval(math.nan, math.nan, math.nan), 4000, 20)
    report = [checks.pinsker(rows([0.02], [0.05])), *unassessed, undefined]
    assert checks.failed(report) == [undefined]
    assert checks.summary(report) == (
        "1 of 8 must-hold checks pass, 1 failed, "
        "6 not assessable (too few seeds to estimate their noise)"
    )
    assert checks.summary(report[:1]) == "1 of 1 must-hold checks pass"
    checks.write(report, tmp_path / "checks.csv")
    written = pd.read_csv(tmp_path / "checks.csv")
    assert list(written.verdict) == ["pass", *["not assessable"] * 6, "fail"]
