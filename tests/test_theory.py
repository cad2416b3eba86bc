"""theory/: constants, candidate rates, fitting with intervals, and the checks."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sims.generators import make_task_pair
from theory import checks
from theory.claims import claim
from theory.fitting import (
    MISFIT_LEVEL,
    excess_precision,
    fit_crossover,
    fit_excess_slope,
    fit_plateau,
    fit_slope,
    fit_two_term,
    fitted_constant,
)
from theory.intervals import (
    Interval,
    mean_interval,
    projected_half_width,
    seed_interval,
    seeds_for,
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
from theory.rows import trained_models
from theory.verdict import fitted_slopes


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
    assert predict("mixture", "oracle", Setting(mixture, "flow")).target_exponent == 4 / 6
    ridge = make_task_pair("gaussian_smooth", embedding="ridge", maps="ridge").config
    one_dimensional = predict("gaussian_smooth", "transfer", Setting(ridge, "flow"))
    assert (one_dimensional.target_exponent, one_dimensional.source_exponent) == (0.8, 0.8)
    tanh = make_task_pair("gaussian_smooth", embedding="tanh").config
    assert predict("gaussian_smooth", "scratch", Setting(tanh, "flow")).target_exponent == 4 / 6
    latent = make_task_pair("shared_latent").config
    assert predict("shared_latent", "scratch", Setting(latent, "diffusion")).target_exponent == 1.0
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


def power_law_rows(rng, exponent_, grid, seeds, noise=0.3, constant=2.0, shared=0.0):
    """Rows C n^-exponent times lognormal noise; ``shared``: the SD of a log factor each
    seed shares across the grid (its data are the same at every n)."""
    factors = rng.normal(0, shared, size=seeds)
    return pd.DataFrame(
        [
            {
                "n_target": n,
                "seed": s,
                "kl": constant * n**-exponent_ * np.exp(factors[s] + rng.normal(0, noise)),
            }
            for n in grid
            for s in range(seeds)
        ]
    )


def test_mean_interval_uses_t_quantiles():
    fit = mean_interval([1.0, 2.0, 3.0], level=0.95)
    assert fit.value == 2.0 and fit.seeds == 3
    assert fit.high - fit.value == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-6)
    assert math.isnan(mean_interval([1.0]).low)


def test_seed_interval_of_a_mean_is_the_t_interval():
    """The bootstrap's standard error of a mean, widened by sqrt(S / (S - 1)), is the usual
    one: the interval is the t interval up to the bootstrap's noise."""
    values = np.random.default_rng(0).normal(size=(8, 1))
    fit = seed_interval(values, lambda means: means[0], n_bootstrap=20000)
    exact = mean_interval(values[:, 0])
    assert fit.low == pytest.approx(exact.low, abs=0.03) and fit.seeds == 8


@pytest.mark.parametrize("seeds", [3, 10])
def test_slope_intervals_hold_their_level(seeds):
    """Coverage of the nominal 95 % slope interval over simulated runs with the quick
    profile's seeds (3) and more, seeds sharing a factor across the grid."""
    rng = np.random.default_rng(seeds)
    grid = [100, 300, 1000]
    repetitions = 300
    covered = [
        fit_slope(power_law_rows(rng, 0.6, grid, seeds, shared=0.3), upper_fraction=1.0,
                  n_bootstrap=400, seed=r).covers(-0.6)
        for r in range(repetitions)
    ]  # fmt: skip
    assert 0.9 <= np.mean(covered) <= 0.995


def test_the_half_width_over_more_seeds_is_projected_from_fewer():
    """Half-widths of fits over 32 seeds projected from fits over 8: their mean is that of
    fits over 32 seeds within 10 % (the projection is 0.95 of it). Without the t quantiles'
    ratio it is 1.11, with the half-width falling as 1/S instead of 1/sqrt(S) 0.48."""
    rng = np.random.default_rng(3)
    grid = [100, 300, 1000]

    def fits(seeds: int) -> list[Interval]:
        return [
            fit_slope(power_law_rows(rng, 0.6, grid, seeds, shared=0.3), upper_fraction=1.0,
                      n_bootstrap=400, seed=r)
            for r in range(150)
        ]  # fmt: skip

    reached = np.mean([fit.half_width for fit in fits(32)])
    projected = np.mean([projected_half_width(fit, 32) for fit in fits(8)])
    assert 0.9 <= projected / reached <= 1.05


def test_the_seeds_a_fit_needs():
    wide = Interval(0.5, 0.3, 0.7, 10)
    needed = seeds_for(wide, 0.1)
    assert projected_half_width(wide, needed) <= 0.1 < projected_half_width(wide, needed - 1)
    assert projected_half_width(wide, 10) == pytest.approx(0.2)
    assert seeds_for(Interval(0.5, 0.45, 0.55, 10), 0.1) == 10  # narrow enough already
    assert seeds_for(Interval(0.5, math.nan, math.nan, 10), 0.1) is None


def test_slope_recovers_a_known_exponent():
    rng = np.random.default_rng(0)
    estimates = [
        fit_slope(power_law_rows(rng, 0.6, [100, 400, 1600, 6400], 10), n_bootstrap=200).value
        for _ in range(100)
    ]
    assert np.mean(estimates) == pytest.approx(-0.6, abs=0.02)


def test_slope_uses_the_upper_grid():
    """A kink below the upper half of the grid does not move the slope."""
    rng = np.random.default_rng(1)
    frame = power_law_rows(rng, 0.5, [100, 200, 400, 800], seeds=8, noise=0.05)
    frame.loc[frame.n_target <= 200, "kl"] *= 10
    assert fit_slope(frame, upper_fraction=0.5).value == pytest.approx(-0.5, abs=0.1)


def test_fitted_constant():
    n = np.array([100.0, 1000.0])
    assert fitted_constant(n, 3 * n**-0.5, 0.5) == pytest.approx(3.0)
    floor_share = 3 * (n**-0.5 - 8000**-0.5)  # the excess over a floor measured at 8000
    assert fitted_constant(n, floor_share, 0.5, 8000) == pytest.approx(3.0)


def test_a_slope_through_a_mean_that_is_not_positive_is_undefined(recwarn):
    rng = np.random.default_rng(3)
    frame = power_law_rows(rng, 0.5, [100, 200, 400, 800], seeds=4, noise=0.05)
    frame.loc[frame.n_target == 800, "kl"] = -0.01  # Monte Carlo KL estimates can be < 0
    fit = fit_slope(frame)
    assert np.isnan([fit.value, fit.low, fit.high]).all()
    assert np.isnan(fitted_constant(np.array([100.0, 1000.0]), np.array([0.1, 0.0]), 0.5))
    assert not recwarn.list


def two_term_rows(rng, targets, sources, seeds=10, source_constant=5.0):
    return pd.DataFrame(
        [
            {
                "n_target": n_t,
                "n_source": n_s,
                "seed": s,
                "kl": (3 * n_t**-0.8 + source_constant * n_s**-0.5) * rng.lognormal(0, 0.1),
            }
            for n_t in targets
            for n_s in sources
            for s in range(seeds)
        ]
    )


def test_two_term_fit_recovers_both_exponents():
    rng = np.random.default_rng(2)
    frame = two_term_rows(rng, (100, 300, 1000, 3000), (100, 1000, 10_000, 100_000))
    fit = fit_two_term(frame, n_bootstrap=100)
    assert fit.reason == ""
    assert fit.target_exponent.value == pytest.approx(0.8, abs=0.1)
    assert fit.source_exponent.value == pytest.approx(0.5, abs=0.1)
    assert fit.target_exponent.covers(0.8) and fit.source_exponent.covers(0.5)


def test_two_term_fit_is_not_assessable_where_it_cannot_identify_its_exponents():
    rng = np.random.default_rng(2)
    one_target = fit_two_term(two_term_rows(rng, (1000,), (100, 1000, 10_000)))
    assert "1 levels of n_target" in one_target.reason
    assert math.isnan(one_target.target_exponent.low)
    # no source term at all: b and q are not pinned down
    flat = two_term_rows(rng, (100, 300, 1000), (100, 1000, 10_000), source_constant=0.0)
    assert fit_two_term(flat, n_bootstrap=20).reason != ""


FLOOR_N = 51_200  # the sample size of the floors below


def floor_rows(rng, level, seeds=5, n=FLOOR_N, noise=0.1):
    return pd.DataFrame(
        [
            {"n_target": n, "n_source": n, "seed": s, "kl": level * rng.lognormal(0, noise)}
            for s in range(seeds)
        ]
    )


def test_excess_over_the_floor_recovers_the_exponent_that_the_raw_slope_misses():
    rng = np.random.default_rng(5)
    grid = [50, 100, 200, 400, 800, 1600, 3200, 6400]
    curve = power_law_rows(rng, 0.6, grid, seeds=10, noise=0.1, constant=2.0)
    curve["kl"] += 0.004 * rng.lognormal(0, 0.1, len(curve))  # a floor of the training
    fit = fit_excess_slope(curve, floor_rows(rng, 0.004 + 2.0 * FLOOR_N**-0.6))
    assert fit.reason == "" and fit.exponent.covers(0.6)
    assert fit.exponent.high - fit.exponent.low < 0.2
    raw = fit_slope(curve, upper_fraction=1.0)
    assert not raw.covers(-0.6)  # the floor flattens the raw log-log slope


def curve_rows(rng, error, grid, seeds, noise):
    """Rows error(n) times lognormal noise at each n_t of ``grid``, ``seeds`` each."""
    return pd.DataFrame(
        [
            {"n_target": n, "seed": s, "kl": error(n) * rng.lognormal(0, noise)}
            for n in grid
            for s in range(seeds)
        ]
    )


def slow_curve_and_floor(rng, seeds=10, limit=0.2, noise=0.05):
    """Rows limit + 3 (n/50)^-1/3 at n_t = 50 ... 6400 and at the floor's size, each times
    lognormal noise: a rate as slow as scratch's candidate, still falling at the floor."""

    def error(n):
        return limit + 3 * (n / 50) ** (-1 / 3)

    grid = [50, 100, 200, 400, 800, 1600, 3200, 6400]
    return curve_rows(rng, error, grid, seeds, noise), curve_rows(rng, error, [FLOOR_N], 5, noise)


def test_the_excess_fit_models_the_floors_own_share_of_a_slow_rate():
    """The floor, trained on 8 times the largest n_t, still holds 3 (N/50)^-1/3 = 0.28 of
    the error at a rate of 1/3: the fit that models it finds 1/3; taking the floor for the
    error's limit (its size put at 10^12) leans the exponent upwards, out of its interval."""
    curve, floor = slow_curve_and_floor(np.random.default_rng(10))
    fit = fit_excess_slope(curve, floor)
    assert fit.reason == "" and fit.exponent.covers(1 / 3)
    assert fit.exponent.half_width < 0.1
    as_limit = fit_excess_slope(curve, floor.assign(n_target=1e12))
    assert as_limit.exponent.low > 1 / 3


def test_an_excess_that_falls_like_a_logarithm_is_not_assessable():
    """KL falling by 0.2 a doubling from 50 to the floor's size fits no power of n: the
    exponent sits on its bound 0 and the fit says so rather than report an interval."""
    rng = np.random.default_rng(12)

    def error(n):
        return 3 - 0.2 * np.log2(n / 50)

    curve = curve_rows(rng, error, [50, 100, 200, 400, 800, 1600], 10, 0.02)
    fit = fit_excess_slope(curve, curve_rows(rng, error, [FLOOR_N], 5, 0.02))
    assert "sits on its bound" in fit.reason and math.isnan(fit.exponent.value)


def test_the_two_term_fit_models_the_floors_own_share_of_each_term():
    """Transfer with source exponent 1/3, its floor at n_t = n_s = 51 200: the fit finds
    both exponents; taking the floor for the limit puts the source exponent above 1/3."""
    rng = np.random.default_rng(11)
    targets, sources = (50, 100, 200, 400, 800, 1600, 3200, 6400), (2000, 8000, 32_000)

    def error(n_t, n_s):
        return 0.3 + 1.5 * (n_t / 50) ** (-2 / 3) + 0.8 * (n_s / 2000) ** (-1 / 3)

    frame = pd.DataFrame(
        [
            {"n_target": t, "n_source": s, "seed": k, "kl": error(t, s)}
            for t in targets
            for s in sources
            for k in range(10)
        ]
    ).assign(kl=lambda f: f.kl * rng.lognormal(0, 0.02, len(f)))
    floor = floor_rows(rng, error(FLOOR_N, FLOOR_N), noise=0.02)
    fit = fit_two_term(frame, floor=floor, n_bootstrap=100)
    assert fit.reason == ""
    assert fit.target_exponent.covers(2 / 3) and fit.source_exponent.covers(1 / 3)
    as_limit = fit_two_term(frame, floor=floor.assign(n_target=1e12, n_source=1e12))
    assert as_limit.source_exponent.low > 1 / 3


TARGETS = (50, 100, 200, 400, 800, 1600, 3200, 6400)  # the reference's n_t


def test_the_lack_of_fit_test_holds_its_level_where_the_model_holds():
    """Power laws over a floor, each seed's errors sharing a factor across the grid: over 40
    data sets the p-values look uniform (mean near 1/2, about 5 % below 0.05)."""
    rng = np.random.default_rng(20)
    p_values = []
    for _ in range(40):
        curve = power_law_rows(rng, 0.6, TARGETS, seeds=10, noise=0.1, shared=0.1)
        floor = floor_rows(rng, 0.004 + 2.0 * FLOOR_N**-0.6)
        fit = fit_excess_slope(curve.assign(kl=curve.kl + 0.004), floor, n_bootstrap=20)
        p_values.append(fit.misfit.p_value)
    assert 0.35 < np.mean(p_values) < 0.65
    assert np.mean(np.array(p_values) < 0.05) <= 0.15


def test_an_excess_that_bends_has_its_interval_widened():
    """An excess falling like n^-0.8 up to n = 400 and like n^-0.5 beyond, 10 seeds with
    10 % noise: no single power describes it, and the fit widens its interval by the means'
    scatter about it; the straight curve's is not widened."""
    rng = np.random.default_rng(21)

    def error(n):
        return 0.05 + np.where(n <= 400, (n / 400) ** -0.8, (n / 400) ** -0.5)

    def fit(error):
        curve = curve_rows(rng, error, TARGETS, 10, 0.1)
        return fit_excess_slope(curve, curve_rows(rng, error, [FLOOR_N], 5, 0.1))

    bent = fit(error)
    assert bent.misfit.p_value < MISFIT_LEVEL and bent.misfit.widening > 3
    assert bent.reason == ""
    straight = fit(lambda n: 0.05 + (n / 400) ** -0.8)
    assert straight.misfit.widening == 1 and straight.exponent.covers(0.8)


def test_a_source_term_that_grows_with_n_t_widens_the_two_term_intervals():
    """Transfer whose gain from n_s grows with n_t (its source term 1.4 times larger at
    large n_t than at 50, as a head on a poor embedding gains less from more target data)
    is no sum of a target and a source term: with 2 % noise and 16 seeds the fit rejects it
    and widens the intervals of its exponents (the source's, 0.28, would miss 1/3
    unwidened); the additive curve's are not widened."""
    rng = np.random.default_rng(22)

    def error(n_t, n_s, interaction):
        source = 0.8 * (n_s / 2000) ** (-1 / 3) * (1 + interaction * (1 - (n_t / 50) ** -0.5))
        return 0.5 + 1.5 * (n_t / 50) ** (-2 / 3) + source

    def fit(interaction):
        frame = pd.DataFrame(
            [
                {"n_target": t, "n_source": s, "seed": k, "kl": error(t, s, interaction)}
                for t in TARGETS
                for s in (2000, 8000, 32_000)
                for k in range(16)
            ]
        ).assign(kl=lambda f: f.kl * rng.lognormal(0, 0.02, len(f)))
        floor = floor_rows(rng, error(FLOOR_N, FLOOR_N, interaction), noise=0.02)
        return fit_two_term(frame, floor=floor, n_bootstrap=20)

    assert fit(0.0).misfit.widening == 1
    grows = fit(0.4)
    assert grows.misfit.p_value < MISFIT_LEVEL and grows.misfit.widening > 1.5
    seeds_only = grows.source_exponent.half_width / grows.misfit.widening
    assert abs(grows.source_exponent.value - 1 / 3) > seeds_only


def test_a_curve_within_its_seeds_noise_of_its_floor_is_not_assessable():
    """Errors at most 10 % above the floor, 0.01 + 0.001 (n/100)^-0.6: with each error's 10 %
    noise over 10 seeds no level's excess is resolved and the fit says so rather than fit
    noise; with 0.5 % noise every level's is, and the fit finds 0.6."""
    rng = np.random.default_rng(2)

    def error(n):
        return 0.01 + 0.001 * (n / 100) ** -0.6

    def fit(noise):
        curve = curve_rows(rng, error, [100, 200, 400, 800], 10, noise)
        return fit_excess_slope(curve, curve_rows(rng, error, [FLOOR_N], 5, noise))

    noisy = fit(0.1)
    assert "standard errors" in noisy.reason and math.isnan(noisy.exponent.value)
    precise = fit(0.005)
    assert precise.levels == [100, 200, 400, 800] and precise.exponent.covers(0.6)


def test_a_cell_that_one_seed_measures_is_not_resolved():
    """A cell of one seed beside the floor's three has no spread to measure its precision:
    it is not resolved, however far above the floor, and weighs nothing."""
    values = np.array([[1.0, 2.0, 5.0], [1.1, 2.3, np.nan], [0.9, 1.8, np.nan]])
    precision = excess_precision(values)
    assert list(precision.resolved) == [True, False]
    assert precision.weights[0] > 0 and precision.weights[1] == 0


def test_two_term_fit_over_the_floor():
    rng = np.random.default_rng(7)
    frame = two_term_rows(rng, (100, 200, 400, 800, 1600), (300, 1000, 3000, 10_000))
    frame["kl"] += 0.05  # a floor that the largest cells' excess is a few times
    floor = floor_rows(rng, 0.05 + 3 * FLOOR_N**-0.8 + 5 * FLOOR_N**-0.5)
    fit = fit_two_term(frame, floor=floor, n_bootstrap=100)
    assert fit.reason == ""
    assert fit.target_exponent.covers(0.8) and fit.source_exponent.covers(0.5)
    ignored = fit_two_term(frame, n_bootstrap=100)  # the floor taken for a source term
    assert not (ignored.target_exponent.covers(0.8) and ignored.source_exponent.covers(0.5))


def test_fits_leave_out_cells_with_few_seeds_beside_cells_with_many():
    """Cells that another experiment ran with 3 seeds, here off by a factor 3, do not enter
    a fit whose other cells have 10; where every cell of a curve has 3 seeds, they do."""
    rng = np.random.default_rng(8)
    frame = two_term_rows(rng, (100, 200, 400, 800, 1600), (300, 1000, 3000, 10_000))
    thin = two_term_rows(rng, (300,), (500, 2000, 30_000), seeds=3).assign(kl=lambda f: 3 * f.kl)
    floor = floor_rows(rng, 0.05 + 3 * FLOOR_N**-0.8 + 5 * FLOOR_N**-0.5)
    fit = fit_two_term(pd.concat([frame, thin]).assign(kl=lambda f: f.kl + 0.05), floor=floor)
    assert fit.target_exponent.covers(0.8) and fit.source_exponent.covers(0.5)
    curve = power_law_rows(rng, 0.6, [50, 100, 200, 400], seeds=3, noise=0.1, constant=2.0)
    excess = fit_excess_slope(curve, floor_rows(rng, 0.004 + 2.0 * FLOOR_N**-0.6))
    assert excess.levels == [50, 100, 200, 400] and excess.reason == ""


def test_a_cell_with_fewer_than_half_the_seeds_is_left_out():
    """A cell of 5 seeds beside curves of 16 (another experiment's), here a third low, is
    left out of the fit; with 8 seeds, half of 16, it enters."""
    rng = np.random.default_rng(9)
    curve = power_law_rows(rng, 0.6, [50, 100, 200, 400, 800], seeds=16, noise=0.1)
    floor = floor_rows(rng, 2.0 * FLOOR_N**-0.6)
    for seeds, enters in ((5, False), (8, True)):
        thin = power_law_rows(rng, 0.6, [300], seeds=seeds, noise=0.1)
        fit = fit_excess_slope(pd.concat([curve, thin.assign(kl=thin.kl * 0.67)]), floor)
        assert (300 in fit.levels) == enters


def test_the_verdict_fits_each_error_of_a_network_with_its_own_exponent():
    """A network's exponents are fitted to its KL and to its squared Hellinger, each from
    its own column (here H^2 falls at twice KL's exponent); rows without H^2 give KL's."""
    rng = np.random.default_rng(9)
    grid = [100, 200, 400, 800, 1600, 3200]
    curve = power_law_rows(rng, 0.3, grid, seeds=10, noise=0.1).assign(
        hellinger2=power_law_rows(rng, 0.6, grid, seeds=10, noise=0.1).kl + 0.001,
        experiment="target_scaling",
    )
    curve["kl"] += 0.004  # the floors of the training
    floor = floor_rows(rng, 0.004 + 2.0 * FLOOR_N**-0.3).assign(
        hellinger2=lambda f: 0.001 + 2.0 * FLOOR_N**-0.6, experiment="floor"
    )
    truth = dict(model="flow", method="scratch", family="gaussian_smooth", d_x=2, d_z=8, d_h=2)
    rows = pd.concat([curve, floor]).assign(**truth, status="ok")
    slopes = fitted_slopes(trained_models(rows)).set_index("error")
    for error, exponent_ in (("kl", 0.3), ("hellinger2", 0.6)):
        fit = slopes.loc[error]
        assert fit.low <= exponent_ <= fit.high and fit.candidate == pytest.approx(1 / 3)
    without = fitted_slopes(trained_models(rows.drop(columns="hellinger2")))
    assert list(without.error) == ["kl"]


def test_the_verdict_fits_transfers_target_exponent_on_its_edge_at_the_floors_n_s():
    """Transfer 0.5 + 1.5 (n_t/50)^-2/3 + 0.8 (n_s/2000)^-1/3 over n_t = 50 ... 6400 at n_s =
    2000, 8000, 32 000 and at the floor's 51 200: beside the two-term fit over the grid, the
    verdict fits the n_t curve at n_s = 51 200, whose excess over the floor is the target
    term alone, and finds 2/3 against the target's candidate."""
    rng = np.random.default_rng(23)

    def error(n_t, n_s):
        return 0.5 + 1.5 * (n_t / 50) ** (-2 / 3) + 0.8 * (n_s / 2000) ** (-1 / 3)

    grid = [(t, s) for t in TARGETS for s in (2000, 8000, 32_000, FLOOR_N)]
    grid += [(FLOOR_N, FLOOR_N)]
    rows = pd.DataFrame(
        [
            {"n_target": t, "n_source": s, "seed": k, "kl": error(t, s) * rng.lognormal(0, 0.02)}
            for t, s in grid
            for k in range(16 if t < FLOOR_N else 5)
        ]
    )
    rows["experiment"] = np.where(rows.n_target == FLOOR_N, "floor", "target_scaling")
    truth = dict(model="flow", method="transfer", family="gaussian_smooth", d_x=2, d_z=8, d_h=2)
    slopes = fitted_slopes(trained_models(rows.assign(**truth, status="ok"))).set_index("over")
    edge = slopes.loc["n_target at n_s = 51200 (excess over floor)"]
    assert edge.low <= 2 / 3 <= edge.high and edge.high - edge.low < 0.1
    assert edge.candidate == slopes.loc["n_target (two-term)"].candidate
    assert edge.sizes == "50 … 6400 (8 levels)"


def test_plateau_fit_recovers_the_exponent_and_needs_four_levels():
    rng = np.random.default_rng(4)
    rows = pd.DataFrame(
        [
            {"n_target": n, "seed": s, "kl": (2 * n**-0.7 + 0.002) * rng.lognormal(0, 0.05)}
            for n in (100, 200, 400, 800, 1600, 3200)
            for s in range(10)
        ]
    )
    fit = fit_plateau(rows, n_bootstrap=200)
    assert fit.reason == "" and fit.exponent.covers(0.7)
    assert fit.plateau == pytest.approx(0.002, rel=0.3)
    few = fit_plateau(rows[rows.n_target <= 400])
    assert few.reason == "3 levels of n_target: a plateau needs 4"


def test_crossover_is_located_where_the_curves_meet():
    rng = np.random.default_rng(3)
    n_t, kappa_, head, subspace = 1000, 4.0, 20.0, 12.0
    transfer = pd.DataFrame(
        [
            {
                "n_source": n_s,
                "seed": s,
                "kl": (head / n_t + kappa_ * subspace / n_s) * rng.lognormal(0, 0.1),
            }
            for n_s in (1000, 2000, 4000, 8000, 16000)
            for s in range(40)
        ]
    )
    scratch = pd.DataFrame(
        {"seed": range(40), "kl": (head + subspace) / n_t * rng.lognormal(0, 0.1, size=40)}
    )
    fit = fit_crossover(transfer, scratch)
    assert fit.value == pytest.approx(kappa_ * n_t, rel=0.2)
    assert fit.covers(kappa_ * n_t) and fit.seeds == 40 and fit.undefined == 0.0


def test_candidate_checks_never_fail_the_run(tmp_path):
    report = [
        checks.slope("slope", Interval(-0.4, -0.5, -0.3, 3), candidate=-0.9),
        checks.pinsker(pd.DataFrame({"kl": [0.1], "kl_se": 0.0, "tv": [0.1], "tv_se": 0.0})),
    ]
    assert report[0].verdict == checks.INCONSISTENT and checks.failed(report) == []
    checks.write(report, tmp_path / "checks.csv")
    written = pd.read_csv(tmp_path / "checks.csv")
    assert list(written.columns) == [
        "name", "kind", "figure", "limit", "verdict", "detail", "experiments", "power"
    ]  # fmt: skip
    assert list(written.kind) == ["candidate", "must_hold"]
    assert list(written.verdict) == ["not consistent", "pass"]


def test_a_slope_without_an_interval_is_not_assessable_and_says_why():
    lone = checks.slope("slope", Interval(-0.4, -0.4, -0.4, 1), -0.9)
    assert lone.verdict == checks.NOT_ASSESSABLE and lone.detail == "no spread over seeds"
    told = checks.slope("slope", Interval(math.nan, math.nan, math.nan), -0.9, "3 levels")
    assert told.verdict == checks.NOT_ASSESSABLE and told.detail == "3 levels"


def test_the_summary_counts_what_failed_and_what_could_not_be_assessed():
    rows = pd.DataFrame({"kl": [0.02], "kl_se": 1e-3, "tv": [0.05], "tv_se": 1e-3})
    failing = checks.pinsker(rows.assign(tv=0.3))
    report = [checks.pinsker(rows), checks.pinsker(rows.iloc[:0]), failing]
    assert checks.failed(report) == [failing]
    assert checks.summary(report) == (
        "1 of 3 must-hold checks pass, 1 failed, 1 not assessable (too few seeds or no rows)"
    )


@pytest.mark.parametrize(
    ("change", "expect", "verdict"),
    [
        ([-0.3, -0.2, -0.25, -0.35], "lower", checks.PASS),
        ([0.3, 0.2, 0.25, 0.35], "lower", checks.FAIL),
        ([-0.3, 0.2, -0.25, 0.35], "lower", checks.NOT_ASSESSABLE),
        ([0.3, 0.2, 0.25, 0.35], "higher", checks.PASS),
        ([-0.3, -0.2], "lower", checks.NOT_ASSESSABLE),
    ],
)
def test_claims_pass_fail_or_are_not_assessable(change, expect, verdict):
    rows = pd.DataFrame({"experiments": ["a,b"]})
    found = claim("claim", pd.Series(change), expect, "change", rows)
    assert found.kind == checks.CLAIM and found.verdict == verdict
    assert found.experiments == "a,b"
