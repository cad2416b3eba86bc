"""Rates from data: log-log slopes, a slope with a plateau, a two-term transfer fit and the
crossover, each with an interval over seeds (``theory.intervals``: seed indices resampled
jointly across the cells a fit compares, Student-t quantiles with S - 1 degrees of freedom).

A fit that the data cannot identify (too few levels of a sample size, or a Jacobian so
ill-conditioned that the exponent is not pinned down) says so in ``reason`` and has no
interval, instead of returning its starting point with a narrow interval. A fit over a floor
whose cell means scatter about it by more than their seeds' noise (``lack_of_fit``) has its
intervals widened by that scatter, which more seeds do not shrink.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, minimize_scalar

from theory.intervals import (
    MIN_SEEDS,
    Interval,
    bootstrap_means,
    cell_means,
    seed_interval,
    seed_table,
)

ILL_CONDITIONED = 1e6  # a fit whose Jacobian's condition number exceeds this is not identified
UNDEFINED = Interval(math.nan, math.nan, math.nan)
# a level enters a fit of the excess over the floor where that excess is at least this many
# of its standard errors: nearer, the excess is mostly the seeds' noise and its log is biased
RESOLVED = 3.0
FLOOR_LEVELS = 3  # resolved levels that a fit of the excess needs
MAX_EXPONENT = 5.0  # the largest exponent a fit may return
BOUND_GAP = 1e-3  # an exponent this near 0 or MAX_EXPONENT sits on its bound
MISFIT_LEVEL = 0.01  # below this lack-of-fit p-value, the means scatter about the fit
MISFIT_REPLICATES = 200  # bootstrap replicates of the lack-of-fit test


def upper_grid(values, fraction: float) -> list:
    """The largest ``ceil(fraction * len)`` distinct values (at least 2) of a sample-size grid."""
    grid = sorted(set(values))
    keep = max(2, math.ceil(fraction * len(grid)))
    if len(grid) < 2:
        raise ValueError(f"a slope needs at least 2 sample sizes, got {grid}")
    return grid[-keep:]


def fit_slope(
    frame: pd.DataFrame,
    x: str = "n_target",
    y: str = "kl",
    upper_fraction: float = 0.5,
    level: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> Interval:
    """Least-squares slope of log(mean y over seeds) on log x over the upper part of the grid.

    Args:
        frame: one row per (x, seed), with columns ``x``, ``y`` and ``seed``.
        upper_fraction: share of the grid's largest x values used (at least two values).

    Returns:
        the slope with its interval over seeds (NaN where a mean is not positive: a Monte
        Carlo mean can be, and its log is undefined).
    """
    grid = upper_grid(frame[x], upper_fraction)
    _, values = seed_table(frame[frame[x].isin(grid)], [x], y)
    return seed_interval(values, _log_log_slope(grid), level, n_bootstrap, seed)


def _log_log_slope(sizes) -> Callable[[np.ndarray], float]:
    """The least-squares slope of log means on log ``sizes``, as a function of the means
    (one per size); NaN where a mean is not positive."""
    log_x = np.log(np.asarray(sizes, float))
    centred = log_x - log_x.mean()

    def slope(means: np.ndarray) -> float:
        if np.any(~(means > 0)):
            return math.nan
        return float(np.log(means) @ centred / (centred @ centred))

    return slope


@dataclass(frozen=True)
class LackOfFit:
    """How a fit over a floor describes the cell means: ``p_value`` of the hypothesis that
    its model does, and ``scatter``, the means' weighted squared deviations from it over
    their mean under the model (about 1 where the model holds, larger where the means
    scatter about it by more than their seeds' noise)."""

    p_value: float
    scatter: float

    @property
    def widening(self) -> float:
        """sqrt(scatter) where the means reject the model (p below ``MISFIT_LEVEL``), else 1:
        the factor the fit's intervals are widened by, as the scatter's share of a mean's
        variance that the seeds do not see."""
        return math.sqrt(self.scatter) if self.p_value < MISFIT_LEVEL else 1.0

    def widen(self, interval: Interval) -> Interval:
        """``interval`` widened about its value by ``widening``."""
        half = interval.half_width * self.widening
        return replace(interval, low=interval.value - half, high=interval.value + half)


NOT_TESTED = LackOfFit(math.nan, math.nan)


@dataclass(frozen=True)
class ExcessFit:
    """error - floor ~ a (n^-p - N^-p) over the levels whose excess over the floor, measured
    at the size N (``size``), is resolved (``RESOLVED``): the exponent p with its interval,
    the floor's mean, the levels fitted, its lack of fit; ``reason`` says why it is not
    assessable, where it is not."""

    exponent: Interval
    floor: float
    levels: list
    reason: str = ""
    misfit: LackOfFit = NOT_TESTED
    size: float = math.inf


def _present(keys: list, values: np.ndarray, fixed: int = 0) -> tuple[list, np.ndarray]:
    """The cells of a seed table that hold rows (a grid need not fill every combination),
    less those with fewer than half the most seeds of a cell, or fewer than ``MIN_SEEDS``,
    where another cell has that many: a cell that another experiment ran with a handful of
    seeds would bring a mean as noisy as its few seeds into a fit whose other cells average
    many, widen its interval, and, its spread measured on those few seeds, fail the fit's
    lack-of-fit test on a mean that is merely noisy. The first ``fixed`` columns (a floor)
    are kept as they are."""
    counts = (~np.isnan(values)).sum(0)
    present = counts > 0
    most = counts[fixed:].max()
    if most >= MIN_SEEDS:
        present[fixed:] &= counts[fixed:] >= max(MIN_SEEDS, most / 2)
    return [k for k, keep in zip(keys, present, strict=True) if keep], values[:, present]


def _with_floor(frame: pd.DataFrame, floor: pd.DataFrame, cells: list[str], y: str):
    """The cells of ``frame`` that hold rows, below the floor's size in some of ``cells`` and
    above it in none (an edge of a grid at the floor's size in one of them enters), their
    seed table with the floor's rows (all given the cell -1) as column 0, and those sizes
    (the floor's rows at the largest size, where they hold several)."""
    sizes = {c: float(floor[c].max()) for c in cells}
    floor = floor[np.logical_and.reduce([floor[c] == sizes[c] for c in cells])]
    below = np.logical_or.reduce([frame[c] < sizes[c] for c in cells])
    frame = frame[below & np.logical_and.reduce([frame[c] <= sizes[c] for c in cells])]
    marked = floor.assign(**{c: -1 for c in cells})
    keys, values = _present(*seed_table(pd.concat([marked, frame]), cells, y), fixed=1)
    return keys[1:], values, list(sizes.values())


def _log_excess_term(n: np.ndarray, size: float, exponent: float) -> np.ndarray:
    """log(n^-p - size^-p): the log of a term n^-p of the error, less the share of it that
    the floor, measured at ``size`` >= n, holds itself (0 where ``size`` is infinite; the
    term is -inf at n = size, where the floor holds all of it)."""
    gap = np.log(size) - np.log(n)
    with np.errstate(divide="ignore"):
        return -exponent * np.log(n) + np.log(-np.expm1(-exponent * gap))


@dataclass(frozen=True)
class Precision:
    """How precisely the seeds measure each cell's excess over the floor.

    Attributes:
        resolved: (cells - 1,) bool, the excess is at least ``RESOLVED`` standard errors
            (and the seeds measure one: a single seed does not).
        weights: (cells - 1,) the inverse variance of the log excess of the resolved cells,
            (excess / SE)^2 (the delta method; 0 elsewhere), each fit's least-squares
            weights and its lack of fit's.
    """

    resolved: np.ndarray
    weights: np.ndarray


def excess_precision(values: np.ndarray, n_bootstrap: int = 1000, seed: int = 0) -> Precision:
    """The precision of the excesses of the cells (columns 1... of ``values``, (seeds,
    cells)) over the floor (column 0), their standard errors from a bootstrap that
    resamples seeds jointly across the cells (a seed's cells share its data)."""
    replicates = bootstrap_means(values, n_bootstrap, np.random.default_rng(seed))
    means = cell_means(values)
    excess = means[1:] - means[0]
    error = np.nanstd(replicates[:, 1:] - replicates[:, :1], 0, ddof=1)
    measured = (~np.isnan(values[:, 1:])).sum(0) >= 2  # one seed measures no spread
    resolved = measured & (error > 0) & (excess >= RESOLVED * error)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(resolved, (excess / error) ** 2, 0.0)
    return Precision(resolved, weights)


def lack_of_fit(
    values: np.ndarray,
    keep: np.ndarray,
    log_fit: Callable[[np.ndarray], np.ndarray],
    weights: np.ndarray,
    n_bootstrap: int = MISFIT_REPLICATES,
    seed: int = 0,
) -> LackOfFit:
    """The lack of fit of a fit over a floor to the cell means.

    The statistic is Q = sum_k w_k (log e_k - log f_k)^2 over the fitted cells k, with e_k
    the excess of cell k's mean over the floor's, f_k the fit's value there and w_k the
    inverse variance of log e_k (``Precision.weights``): the sum that the fit minimises.
    Its distribution under the fit comes from a bootstrap that keeps the seeds' own noise:
    each fitted cell's values are shifted so that its mean is the fit's (floor + f_k) and
    every cell's deviations from its mean widened by sqrt(S / (S - 1)), seeds are resampled
    jointly across the cells (a seed's cells share its data) and the fit is redone on every
    replicate. Replicates with an excess that is not positive are left out.

    Args:
        values: (seeds, cells) errors, column 0 the floor (zeros where the fit has none).
        keep: (cells - 1,) bool, the cells the fit uses.
        log_fit: the fitted log excess at the kept cells, as a function of their excesses
            (the fit redone on them).
        weights: (kept cells,) the fit's weights w_k.

    Returns:
        the p-value (1 + replicates with Q at least the data's) / (1 + replicates), and the
        scatter Q / mean of Q over the replicates; ``NOT_TESTED`` where the data's Q is
        undefined.
    """
    rng = np.random.default_rng(seed)

    def excess(means: np.ndarray) -> np.ndarray:
        above = means[..., 1:][..., keep] - means[..., :1]
        return np.where(above > 0, above, np.nan)

    means = cell_means(values)
    observed = excess(means)
    if np.any(np.isnan(observed)):
        return NOT_TESTED

    def statistic(above: np.ndarray) -> float:
        if np.any(np.isnan(above)):
            return math.nan
        return float(weights @ (np.log(above) - log_fit(above)) ** 2)

    expected = means.copy()
    expected[1 + np.flatnonzero(keep)] = means[0] + np.exp(log_fit(observed))
    counts = (~np.isnan(values)).sum(0)
    spread = np.sqrt(counts / np.maximum(counts - 1, 1))  # a bootstrap mean's SD is short by it
    null = expected + (values - means) * spread
    under_fit = np.array(
        [statistic(row) for row in excess(bootstrap_means(null, n_bootstrap, rng))]
    )
    under_fit = under_fit[~np.isnan(under_fit)]
    q = statistic(observed)
    p_value = (1 + np.sum(under_fit >= q)) / (1 + under_fit.size)
    return LackOfFit(float(p_value), q / float(under_fit.mean()))


def _profiled(log_excess: np.ndarray, term: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The fitted log excess log a + term, with log a its weighted least-squares value."""
    return term + np.average(log_excess - term, weights=weights)


def _excess_exponent(n: np.ndarray, size: float, weights: np.ndarray):
    """The exponent p of the weighted least-squares fit of log excess = log a + log(n^-p -
    size^-p), with log a profiled out, as a function of the excesses at the levels ``n``
    (NaN where one is not positive). With an infinite ``size`` and equal weights it is minus
    the log-log slope."""

    def residual_sum(exponent: float, log_excess: np.ndarray) -> float:
        term = _log_excess_term(n, size, exponent)
        residuals = log_excess - _profiled(log_excess, term, weights)
        return float(weights @ residuals**2)

    def exponent(excess: np.ndarray) -> float:
        if np.any(~(excess > 0)):
            return math.nan
        log_excess = np.log(excess)
        bounds = (0.0, MAX_EXPONENT)
        return float(minimize_scalar(residual_sum, bounds=bounds, args=(log_excess,)).x)

    return exponent


def fit_excess_slope(
    frame: pd.DataFrame,
    floor: pd.DataFrame,
    x: str = "n_target",
    y: str = "kl",
    level: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> ExcessFit:
    """The exponent p of mean y - mean floor ~ a (x^-p - N^-p), over every level of x whose
    excess over the floor is resolved (``RESOLVED``), each weighted by its precision, with
    its interval over seeds (the floor's seeds resampled with the curve's). The floor, the
    same training on a sample of size N, still holds that sample's own share a N^-p of the
    error, which the fit models: where N is a few times the largest x and p is small, that
    share is a large part of the excess at the largest levels, and taking the floor for the
    error's limit would lean the exponent upwards.

    Args:
        frame: one row per (x, seed).
        floor: rows of the same model trained on a sample of size N, larger than any x
            (``x`` holds N; the rows at the largest N, where they hold several).
    """
    keys, values, (size,) = _with_floor(frame, floor, [x], y)
    means = np.nanmean(values, 0)
    if not means[0] > 0:
        reason = "the floor's mean error is not positive"
        return ExcessFit(UNDEFINED, means[0], [], reason, size=size)
    sizes = np.array([k[0] for k in keys], float)
    precision = excess_precision(values, seed=seed)
    above = precision.resolved
    weights = precision.weights[above]
    levels = [k[0] for k, keep in zip(keys, above, strict=True) if keep]
    if len(levels) < FLOOR_LEVELS:
        reason = (
            f"{len(levels)} levels of {x} below the floor's size whose excess over the floor "
            f"({means[0]:.3g}) is {RESOLVED:g} standard errors: the error is set by the "
            f"training, not by {x}"
        )
        return ExcessFit(UNDEFINED, float(means[0]), levels, reason, size=size)
    fitted = _excess_exponent(sizes[above], size, weights)

    def exponent(sample_means: np.ndarray) -> float:
        return fitted(sample_means[1:][above] - sample_means[0])

    point = exponent(means)
    if not BOUND_GAP < point < MAX_EXPONENT - BOUND_GAP:
        reason = (
            f"the exponent sits on its bound ({point:.2g}): no power of {x} describes the "
            "excess over these levels"
        )
        return ExcessFit(UNDEFINED, float(means[0]), levels, reason, size=size)

    def log_fit(excess: np.ndarray) -> np.ndarray:
        term = _log_excess_term(sizes[above], size, fitted(excess))
        return _profiled(np.log(excess), term, weights)

    misfit = lack_of_fit(values, above, log_fit, weights, seed=seed)
    interval = seed_interval(values, exponent, level, n_bootstrap, seed)
    return ExcessFit(misfit.widen(interval), float(means[0]), levels, misfit=misfit, size=size)


def inverse_n_fit(n: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares a + c/n through each row of ``values`` (rows, sizes) at the sizes ``n``:
    the intercepts a (rows,) and the finite-n terms c (rows,)."""
    design = np.stack([np.ones_like(n), 1 / n], 1)
    intercepts, terms = np.linalg.lstsq(design, np.atleast_2d(values).T, rcond=None)[0]
    return intercepts, terms


def fitted_constant(
    n: np.ndarray, error: np.ndarray, exponent: float, size: float = math.inf
) -> float:
    """C of the curve C (n^-p - size^-p) closest to ``error`` in log scale (the exponent p
    predicted, C fitted; C n^-p where ``size`` is infinite); NaN where an error is not
    positive."""
    if np.any(np.asarray(error) <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(error) - _log_excess_term(n, size, exponent))))


def _identified(solution, parameters: int) -> str:
    """Why a least-squares ``solution`` of log residuals does not identify its parameters
    ("" where it does): an exponent on a bound, or an ill-conditioned Jacobian."""
    if np.any(solution.active_mask != 0):
        return "a parameter sits on its bound"
    singular = np.linalg.svd(solution.jac, compute_uv=False)
    if len(singular) < parameters or singular[-1] <= singular[0] / ILL_CONDITIONED:
        return f"ill-conditioned Jacobian (condition number above {ILL_CONDITIONED:g})"
    return ""


@dataclass(frozen=True)
class PlateauFit:
    """error ~ a n^-p + c: the exponent p with its interval; ``reason`` says why it is not
    assessable, where it is not."""

    exponent: Interval
    plateau: float
    reason: str = ""


def _plateau(n: np.ndarray, means: np.ndarray):
    """The least-squares solution (log a, p, log c) of the log residuals."""

    def residuals(theta):
        log_a, p, log_c = theta
        return np.logaddexp(log_a - p * np.log(n), log_c) - np.log(means)

    start = np.array([np.log(means.max()) + 0.5 * np.log(n.min()), 0.5, np.log(means.min() / 2)])
    return least_squares(residuals, start, bounds=([-50, 0, -50], [50, MAX_EXPONENT, 50]))


def fit_plateau(
    frame: pd.DataFrame,
    x: str = "n_target",
    y: str = "kl",
    level: float = 0.95,
    n_bootstrap: int = 500,
    seed: int = 0,
) -> PlateauFit:
    """Fit a n^-p + c to the mean of ``y`` over seeds at each ``x`` (transfer at a fixed
    n_s falls to its plateau kappa E(n_s)): three parameters, so at least 4 levels of x."""
    grid = sorted(frame[x].unique())
    if len(grid) < 4:
        return PlateauFit(UNDEFINED, math.nan, f"{len(grid)} levels of {x}: a plateau needs 4")
    _, values = seed_table(frame, [x], y)
    n = np.asarray(grid, float)
    means = np.nanmean(values, 0)
    if np.any(~(means > 0)):
        return PlateauFit(UNDEFINED, math.nan, "a mean error is not positive")
    solution = _plateau(n, means)
    reason = _identified(solution, 3)
    if reason:
        return PlateauFit(UNDEFINED, math.nan, reason)

    def exponent(sample_means: np.ndarray) -> float:
        return float(_plateau(n, sample_means).x[1]) if np.all(sample_means > 0) else math.nan

    interval = seed_interval(values, exponent, level, n_bootstrap, seed)
    return PlateauFit(interval, float(np.exp(solution.x[2])))


@dataclass(frozen=True)
class TwoTermFit:
    """KL ~ a n_t^-p + b n_s^-q (less the floor's own share of each term, over a floor): the
    two exponents with their intervals and its lack of fit; ``reason`` says why they are
    not assessable, where they are not."""

    target_exponent: Interval
    source_exponent: Interval
    reason: str = ""
    misfit: LackOfFit = NOT_TESTED


def _two_term(n_t, n_s, means: np.ndarray, weights: np.ndarray, floor_sizes=(math.inf,) * 2):
    """The weighted least-squares solution (log a, p, log b, q) of the log residuals of
    a (n_t^-p - N_t^-p) + b (n_s^-q - N_s^-q), the floor measured at (N_t, N_s); its
    ``fun``, the residuals times the square roots of ``weights``."""
    size_t, size_s = floor_sizes
    scale = np.sqrt(weights)

    def residuals(theta):
        log_a, p, log_b, q = theta
        target = log_a + _log_excess_term(n_t, size_t, p)
        source = log_b + _log_excess_term(n_s, size_s, q)
        return scale * (np.logaddexp(target, source) - np.log(means))

    start = np.array([np.log(means.max()), 0.5, np.log(means.max()), 0.5])
    bounds = ([-50, 0, -50, 0], [50, MAX_EXPONENT, 50, MAX_EXPONENT])
    return least_squares(residuals, start, bounds=bounds)


def _few_levels(n_t: np.ndarray, n_s: np.ndarray) -> str:
    """Why cells at sizes (n_t, n_s) cannot identify a two-term fit ("" where they can)."""
    levels = {"n_target": len(set(n_t)), "n_source": len(set(n_s))}
    few = [f"{count} levels of {name}" for name, count in levels.items() if count < 3]
    return f"{' and '.join(few)}: the fit needs 3 of each" if few else ""


def fit_two_term(
    frame: pd.DataFrame,
    y: str = "kl",
    floor: pd.DataFrame | None = None,
    level: float = 0.95,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> TwoTermFit:
    """Fit a n_t^-p + b n_s^-q to the mean of ``y`` over seeds in each (n_target, n_source)
    cell, with intervals over seeds; not assessable with fewer than 3 levels of n_t or of
    n_s, or where the fit does not identify its exponents.

    With ``floor`` (rows trained on n_t = N_t and n_s = N_s, the largest of either), the fit
    is to the excess over the floor's mean, a (n_t^-p - N_t^-p) + b (n_s^-q - N_s^-q), on
    the cells whose excess is resolved (as ``fit_excess_slope``); the grid's edges at N_t or
    N_s, where one term is the floor's own, enter it. Without a floor, on the cells whose
    mean is resolved above 0. Each cell is weighted by the precision of its log excess.
    """
    cells = ["n_target", "n_source"]
    if floor is None:
        keys, values = _present(*seed_table(frame, cells, y))
        values = np.concatenate([np.zeros((len(values), 1)), values], 1)  # a zero floor
        floor_sizes = [math.inf, math.inf]
    else:
        keys, values, floor_sizes = _with_floor(frame, floor, cells, y)
    n_t, n_s = (np.array([k[i] for k in keys], float) for i in (0, 1))
    means = np.nanmean(values, 0)
    if floor is not None and not means[0] > 0:
        return TwoTermFit(UNDEFINED, UNDEFINED, "the floor's mean error is not positive")
    precision = excess_precision(values, seed=seed)
    keep = precision.resolved
    weights = precision.weights[keep]
    reason = _few_levels(n_t[keep], n_s[keep])
    if reason:
        over = "0" if floor is None else f"the floor ({means[0]:.3g})"
        reason += f", each {RESOLVED:g} standard errors above {over}"
        return TwoTermFit(UNDEFINED, UNDEFINED, reason)
    n_t, n_s = n_t[keep], n_s[keep]

    def excess(sample_means: np.ndarray) -> np.ndarray:
        return sample_means[1:][keep] - sample_means[0]

    solved = {}  # the test and both exponents' intervals refit the same means: each once

    def solution(above: np.ndarray):
        key = above.tobytes()
        if key not in solved:
            solved[key] = _two_term(n_t, n_s, above, weights, floor_sizes)
        return solved[key]

    reason = _identified(solution(excess(means)), 4)
    if reason:
        return TwoTermFit(UNDEFINED, UNDEFINED, reason)

    def log_fit(above: np.ndarray) -> np.ndarray:
        return solution(above).fun / np.sqrt(weights) + np.log(above)

    misfit = lack_of_fit(values, keep, log_fit, weights, seed=seed)

    def exponents(index: int):
        def statistic(sample_means: np.ndarray) -> float:
            above = excess(sample_means)
            if np.any(~(above > 0)):
                return math.nan
            return float(solution(above).x[index])

        return misfit.widen(seed_interval(values, statistic, level, n_bootstrap, seed))

    return TwoTermFit(exponents(1), exponents(3), misfit=misfit)


def _zero_crossing(log_n: np.ndarray, log_ratio: np.ndarray) -> float:
    """First log n where the log ratio changes sign, interpolated linearly; NaN if none."""
    for i in range(len(log_n) - 1):
        a, b = log_ratio[i], log_ratio[i + 1]
        if a >= 0 > b or a <= 0 < b:
            return float(log_n[i] + (log_n[i + 1] - log_n[i]) * a / (a - b))
    return math.nan


def fit_crossover(
    transfer: pd.DataFrame,
    scratch: pd.DataFrame,
    y: str = "kl",
    level: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> Interval:
    """The n_s at which mean transfer error meets mean scratch error, at one n_t.

    Args:
        transfer: rows of one n_target over a grid of ``n_source``, with ``seed``.
        scratch: rows of scratch at the same n_target; seeds pair with transfer's (they
            share their target data).

    Returns:
        n_s where log(KL_transfer / KL_scratch) crosses 0 (interpolated in log n_s), with an
        interval over seeds formed in log n_s; NaN where the ratio does not cross 1 on the
        grid, and ``undefined`` the share of replicates without a crossing.
    """
    grid = sorted(transfer.n_source.unique())
    both = pd.concat([transfer, scratch.assign(n_source=-1)])
    _, values = seed_table(both, ["n_source"], y)  # column 0: scratch
    log_n = np.log(np.asarray(grid, float))

    def crossing(means: np.ndarray) -> float:
        if np.any(~(means > 0)):
            return math.nan
        return _zero_crossing(log_n, np.log(means[1:]) - np.log(means[0]))

    log_fit = seed_interval(values, crossing, level, n_bootstrap, seed)
    ends = (math.exp(v) for v in (log_fit.value, log_fit.low, log_fit.high))  # exp(NaN) = NaN
    return Interval(*ends, log_fit.seeds, log_fit.undefined)
