"""Intervals over seeds: Student-t intervals of means, and of any statistic of a table of
cells by seeds, from a bootstrap that resamples seed indices jointly across the cells.

Every method of one seed shares that seed's target data, so the cells an estimate compares
are correlated through their seeds; resampling each cell's seeds on its own would ignore
that. A table ``values`` (seeds, cells) holds one error per seed and cell (NaN where a seed
has no row); its statistics are functions of the cell means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student

MIN_SEEDS = 5  # fewer seeds than this leave a statistical check not assessable
MUST_HOLD_LEVEL = 0.998  # two-sided level of the intervals that must-hold checks use
# the half-width of an exponent's interval that tells candidates apart: the candidates of
# one method differ by 1/3 or more, more than an interval of width 0.2 can cover at once
EXPONENT_HALF_WIDTH = 0.10
MOST_SEEDS = 10_000  # projections beyond this many seeds are reported as this many


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval.

    Attributes:
        seeds: how many seeds it comes from.
        undefined: the share of bootstrap replicates on which the statistic was undefined
            (NaN: e.g. no crossing on the grid), left out of the interval.
    """

    value: float
    low: float
    high: float
    seeds: int = 0
    undefined: float = 0.0

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def t_quantile(level: float, seeds):
    """The Student-t quantile of a two-sided ``level`` interval with ``seeds - 1`` degrees of
    freedom: a float for a number of seeds, an array for an array (NaN for fewer than 2)."""
    quantile = student.ppf(0.5 + level / 2, np.asarray(seeds, float) - 1)
    return float(quantile) if np.ndim(quantile) == 0 else quantile


def projected_half_width(interval: Interval, seeds, level: float = 0.95):
    """The half-width that ``interval`` (a ``level`` interval over ``interval.seeds`` seeds)
    is projected to have over ``seeds`` seeds (a number or an array).

    The standard error of a smooth statistic of means falls as 1/sqrt(S), so the half-width
    at S' seeds is the measured one times (t_{S'-1} / sqrt(S')) / (t_{S-1} / sqrt(S)). The
    projection carries the noise of the measured half-width, and a cell with fewer seeds
    than the rest (a floor) keeps its own noise: read it as an order of magnitude.
    """
    spread = interval.half_width * math.sqrt(interval.seeds) / t_quantile(level, interval.seeds)
    return t_quantile(level, seeds) * spread / np.sqrt(seeds)


def seeds_for(interval: Interval, half_width: float, level: float = 0.95) -> int | None:
    """The fewest seeds at which ``interval`` is projected (``projected_half_width``) to be
    at most ``half_width`` either side, ``MOST_SEEDS`` at most; its own seeds where it is
    already; ``None`` where it has no interval."""
    if interval.seeds < 2 or not interval.half_width > 0:
        return None
    if interval.half_width <= half_width:
        return interval.seeds
    more = np.arange(interval.seeds + 1, MOST_SEEDS + 1)
    narrow = projected_half_width(interval, more, level) <= half_width
    return int(more[narrow.argmax()]) if narrow.any() else MOST_SEEDS


def mean_interval(values, level: float = 0.95) -> Interval:
    """The mean of ``values`` (one per seed, NaN dropped) with its Student-t interval."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    seeds = len(values)
    mean = float(values.mean()) if seeds else math.nan
    if seeds < 2:
        return Interval(mean, math.nan, math.nan, seeds)
    half = t_quantile(level, seeds) * float(values.std(ddof=1)) / math.sqrt(seeds)
    return Interval(mean, mean - half, mean + half, seeds)


def seed_table(frame: pd.DataFrame, cells: list[str], y: str) -> tuple[list, np.ndarray]:
    """The cells of ``frame`` (its distinct values of the columns ``cells``, sorted) and the
    table (seeds, cells) of ``y``, NaN where a seed has no row in a cell."""
    table = frame.pivot_table(index="seed", columns=cells, values=y, aggfunc="mean", dropna=False)
    keys = [key if isinstance(key, tuple) else (key,) for key in table.columns]
    return keys, table.to_numpy(float)


def cell_means(values: np.ndarray) -> np.ndarray:
    """Means over seeds (axis -2) that ignore missing rows; NaN where a cell has none."""
    counts = (~np.isnan(values)).sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.nansum(values, -2) / np.maximum(counts, 1), np.nan)


def bootstrap_means(values: np.ndarray, n_bootstrap: int, rng: np.random.Generator):
    """The cell means (n_bootstrap, cells) of ``n_bootstrap`` resamples of the rows (seeds)
    of ``values`` (seeds, cells), the same seed indices for every cell."""
    seeds = values.shape[0]
    return cell_means(values[rng.integers(0, seeds, size=(n_bootstrap, seeds))])


def seed_interval(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    level: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> Interval:
    """``statistic`` of the cell means of ``values`` (seeds, cells), with an interval from a
    bootstrap that resamples seed indices (rows) jointly across the cells.

    The interval is the point estimate plus or minus the Student-t quantile with S - 1
    degrees of freedom times the bootstrap standard error, widened by sqrt(S / (S - 1)) (a
    bootstrap's variance of a mean is (S - 1) / S of the unbiased one), so that it holds its
    level with a handful of seeds where percentile intervals do not. Replicates on which the
    statistic is undefined (NaN) are counted in ``undefined`` and left out.
    """
    seeds = values.shape[0]
    point = float(statistic(cell_means(values)))
    if seeds < 2:
        return Interval(point, math.nan, math.nan, seeds)
    rng = np.random.default_rng(seed)
    resampled = bootstrap_means(values, n_bootstrap, rng)
    replicates = np.array([statistic(means) for means in resampled], float)
    defined = replicates[~np.isnan(replicates)]
    undefined = 1 - defined.size / n_bootstrap
    if defined.size < 2 or math.isnan(point):
        return Interval(point, math.nan, math.nan, seeds, undefined)
    half = t_quantile(level, seeds) * float(defined.std(ddof=1)) * math.sqrt(seeds / (seeds - 1))
    return Interval(point, point - half, point + half, seeds, undefined)
