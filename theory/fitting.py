"""Rates from data: log-log slopes, a two-term transfer fit and the crossover, each with a
bootstrap interval over seeds (seeds are resampled, never individual points)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high


def _resampled_means(values: list[np.ndarray], n_bootstrap: int, rng) -> np.ndarray:
    """(n_bootstrap, cells) means, each cell's seeds resampled with replacement."""
    columns = []
    for v in values:
        rows = rng.integers(0, len(v), size=(n_bootstrap, len(v)))
        columns.append(v[rows].mean(1))
    return np.stack(columns, axis=1)


def _bootstrap(values: list[np.ndarray], statistic, n_bootstrap: int, seed: int):
    """``statistic`` of the cell means, and of the means of ``n_bootstrap`` resamplings."""
    point = statistic(np.array([v.mean() for v in values]))
    resampled = _resampled_means(values, n_bootstrap, np.random.default_rng(seed))
    return point, np.array([statistic(means) for means in resampled])


def _percentiles(value: float, replicates: np.ndarray, level: float) -> Interval:
    """The interval of the defined (non-NaN) replicates; NaN ends when none is defined."""
    defined = replicates[~np.isnan(replicates)]
    if defined.size == 0:
        return Interval(float(value), math.nan, math.nan)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


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
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Least-squares slope of log(mean y over seeds) on log x over the upper part of the grid.

    Args:
        frame: one row per (x, seed), with columns ``x`` and ``y``.
        upper_fraction: share of the grid's largest x values used (at least two values).

    Returns:
        the slope with a percentile bootstrap interval over seeds (each grid point's rows
        resampled with replacement).
    """
    grid = upper_grid(frame[x], upper_fraction)
    values = [frame.loc[frame[x] == g, y].to_numpy(float) for g in grid]
    log_x = np.log(np.asarray(grid, float))
    centred = log_x - log_x.mean()

    def slope(means: np.ndarray) -> float:
        if np.any(means <= 0):  # a Monte Carlo mean can be <= 0; its log is undefined
            return math.nan
        return np.log(means) @ centred / (centred @ centred)

    return _percentiles(*_bootstrap(values, slope, n_bootstrap, seed), level)


def fitted_constant(n: np.ndarray, error: np.ndarray, exponent: float) -> float:
    """C of the curve C n^-exponent closest to ``error`` in log scale (exponent predicted,
    C fitted): exp(mean(log error + exponent log n)); NaN where an error is not positive."""
    if np.any(np.asarray(error) <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(error) + exponent * np.log(n))))


@dataclass(frozen=True)
class TwoTermFit:
    """KL ~ a n_t^-p + b n_s^-q: the two exponents with their intervals."""

    target_exponent: Interval
    source_exponent: Interval


def _two_term(n_t: np.ndarray, n_s: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(log a, p, log b, q) minimising the squared log residuals."""

    def residuals(theta):
        log_a, p, log_b, q = theta
        return np.log(np.exp(log_a - p * np.log(n_t)) + np.exp(log_b - q * np.log(n_s))) - np.log(
            means
        )

    start = np.array([np.log(means.max()), 0.5, np.log(means.max()), 0.5])
    return least_squares(residuals, start, bounds=([-50, 0, -50, 0], [50, 5, 50, 5])).x


def fit_two_term(
    frame: pd.DataFrame,
    y: str = "kl",
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> TwoTermFit:
    """Fit a n_t^-p + b n_s^-q to the mean of ``y`` over seeds in each (n_target, n_source)
    cell, with bootstrap intervals over seeds."""
    cells = frame.groupby(["n_target", "n_source"])[y]
    keys = list(cells.groups)
    values = [cells.get_group(k).to_numpy(float) for k in keys]
    n_t, n_s = (np.array([k[i] for k in keys], float) for i in (0, 1))
    point, replicates = _bootstrap(
        values, lambda means: _two_term(n_t, n_s, means), n_bootstrap, seed
    )
    return TwoTermFit(
        _percentiles(point[1], replicates[:, 1], level),
        _percentiles(point[3], replicates[:, 3], level),
    )


def _zero_crossing(log_n: np.ndarray, log_ratio: np.ndarray) -> float:
    """First n where the log ratio changes sign, interpolated linearly in log n; nan if none."""
    for i in range(len(log_n) - 1):
        a, b = log_ratio[i], log_ratio[i + 1]
        if a >= 0 > b or a <= 0 < b:
            return float(np.exp(log_n[i] + (log_n[i + 1] - log_n[i]) * a / (a - b)))
    return math.nan


def crossover_seeds(transfer: pd.DataFrame, scratch: pd.DataFrame) -> int:
    """The fewest seeds (rows) in any cell that ``fit_crossover`` averages: transfer at
    each n_source, and scratch."""
    return int(min(transfer.groupby("n_source").size().min(), len(scratch)))


def fit_crossover(
    transfer: pd.DataFrame,
    scratch: pd.DataFrame,
    y: str = "kl",
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The n_s at which mean transfer error meets mean scratch error, at one n_t.

    Args:
        transfer: rows of one n_target over a grid of ``n_source``.
        scratch: rows of scratch at the same n_target.

    Returns:
        n_s where log(KL_transfer / KL_scratch) crosses 0 (interpolated in log n_s), with a
        bootstrap interval over seeds; nan where the ratio does not cross 1 on the grid.
    """
    grid = sorted(transfer.n_source.unique())
    values = [transfer.loc[transfer.n_source == g, y].to_numpy(float) for g in grid]
    values.append(scratch[y].to_numpy(float))
    log_n = np.log(np.asarray(grid, float))

    def crossing(means: np.ndarray) -> float:
        return _zero_crossing(log_n, np.log(means[:-1]) - np.log(means[-1]))

    return _percentiles(*_bootstrap(values, crossing, n_bootstrap, seed), level)
