"""Checks: named records that compare a measured figure with its limit, and the must-hold
checks themselves, each a function of rows (one per trained model) and the constants it
tests.

Three kinds are kept apart:
- ``must_hold``: classical results and this suite's formalization; a failure means a bug or
  a wrong claim (``run_all.py --check`` exits 1);
- ``claim``: the directional statements of the shared-embedding framework (``theory.claims``),
  reported pass / fail / not assessable, never failing a run;
- ``candidate``: a fitted exponent beside a candidate one, consistent or not, never failing.

A statistical check is ``not assessable`` with fewer than ``MIN_SEEDS`` seeds, or with no
rows to judge: it neither passes nor fails a run. Statistical limits use two-sided
``MUST_HOLD_LEVEL`` intervals with Student-t quantiles (S - 1 degrees of freedom), or, for
checks pooled over rows with their own standard errors, the normal quantile of that level.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from sims.metrics import Estimate, pinsker_holds
from theory.fitting import fit_crossover, inverse_n_fit
from theory.intervals import (
    EXPONENT_HALF_WIDTH,
    MIN_SEEDS,
    MUST_HOLD_LEVEL,
    Interval,
    mean_interval,
    seed_table,
)
from theory.parametric import crossover_n_source_at, expected_kl

MUST_HOLD, CLAIM, CANDIDATE = "must_hold", "claim", "candidate"
PASS, FAIL, NOT_ASSESSABLE = "pass", "fail", "not assessable"
CONSISTENT, INCONSISTENT = "consistent", "not consistent"  # the verdicts of candidate slopes
CROSSOVER_FACTOR = 1.5  # the measured crossover lies within this factor of the predicted one
SMALL_SOURCE_TERM = 0.01  # nats: where the first-order source term is accurate (theory/README)
ROW_SE = 4.0  # a single row's Monte Carlo estimate may stray this many standard errors


@dataclass(frozen=True)
class Check:
    """One check: its name and kind, the measured figure, the limit, the verdict and why.

    Attributes:
        verdict: ``PASS``, ``FAIL`` or ``NOT_ASSESSABLE`` (for a candidate, ``CONSISTENT``
            or ``INCONSISTENT`` instead of the first two).
        experiments: the experiments whose rows it judged, comma-separated.
        power: what it detects at this run's size (``theory.power``), for must-hold checks.
    """

    name: str
    kind: str
    figure: float
    limit: str
    verdict: str
    detail: str = ""
    experiments: str = ""
    power: str = ""

    @property
    def passed(self) -> bool:
        """Whether the verdict is ``PASS`` (a check that is not assessable has not passed)."""
        return self.verdict == PASS


def _seeds(count: int) -> str:
    """``count`` seeds in words: "1 seed", "3 seeds"."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _verdict(holds: bool) -> str:
    return PASS if holds else FAIL


def _too_few(name: str, limit: str, figure: float, seeds: int, what: str = "seeds") -> Check:
    """A statistical check that cannot be assessed: fewer than ``MIN_SEEDS`` seeds."""
    detail = f"{_seeds(seeds)}: fewer than {MIN_SEEDS} {what}"
    return Check(name, MUST_HOLD, figure, limit, NOT_ASSESSABLE, detail)


def _no_rows(name: str, limit: str) -> Check:
    return Check(name, MUST_HOLD, math.nan, limit, NOT_ASSESSABLE, "0 rows to judge")


def _interval_text(interval: Interval) -> str:
    return f"{interval.value:.4g} [{interval.low:.4g}, {interval.high:.4g}]"


def pinsker(rows: pd.DataFrame, n_se: float = ROW_SE) -> Check:
    """[classical] TV <= sqrt(KL / 2) on every row, within ``n_se`` standard errors of the
    two Monte Carlo estimates."""
    limit = f"0 rows with TV > sqrt(KL/2) beyond {n_se:g} se"
    if rows.empty:
        return _no_rows("pinsker", limit)
    violations = [
        not pinsker_holds(Estimate(r.kl, r.kl_se), Estimate(r.tv, r.tv_se), n_se)
        for r in rows.itertuples()
    ]
    count = int(np.sum(violations))
    return Check("pinsker", MUST_HOLD, count, limit, _verdict(count == 0), f"{len(rows)} rows")


def calibration(name: str, rows: pd.DataFrame, k: int, y: str = "kl_exact") -> Check:
    """[classical] 2n·KL/k -> 1 for a well-specified model with k parameters.

    Each seed's 2n·KL/k over the sizes n of ``rows`` is fitted by a + c/n (its finite-n
    term c is the data's, not assumed), and the intercepts a of the seeds (complete over
    the sizes) form a Student-t interval at ``MUST_HOLD_LEVEL``: the check passes when it
    covers 1. Needs at least 2 sizes and ``MIN_SEEDS`` seeds.
    """
    limit = f"a of 2nKL/k = a + c/n: {MUST_HOLD_LEVEL:.1%} interval covers 1"
    if rows.empty:
        return _no_rows(name, limit)
    sizes, values = seed_table(rows, ["n_target"], y)
    n = np.array([s[0] for s in sizes], float)
    complete = values[~np.isnan(values).any(1)] * 2 * n / k
    if len(n) < 2:
        return Check(name, MUST_HOLD, math.nan, limit, NOT_ASSESSABLE, "1 sample size: needs 2")
    intercepts, terms = inverse_n_fit(n, complete)
    fit = mean_interval(intercepts, MUST_HOLD_LEVEL)
    if fit.seeds < MIN_SEEDS:
        return _too_few(name, limit, fit.value, fit.seeds, "seeds with every size")
    detail = (
        f"a = {_interval_text(fit)} over {_seeds(fit.seeds)}, c = {np.mean(terms):.3g}; "
        f"n = {n.min():.0f} to {n.max():.0f}"
    )
    return Check(name, MUST_HOLD, fit.value, limit, _verdict(fit.covers(1.0)), detail)


def _paired(
    first: pd.DataFrame, second: pd.DataFrame, cells: list[str], y: str, keep: tuple = ()
) -> pd.DataFrame:
    """Rows of two methods joined on ``cells`` and the seed: columns ``first``, ``second``
    (their ``y``) and ``keep`` (from the first)."""
    keys = [*cells, "seed"]
    left = first[[*keys, *keep, y]].rename(columns={y: "first"})
    right = second[[*keys, y]].rename(columns={y: "second"})
    return left.merge(right, on=keys).dropna(subset=["first", "second"])


def transfer_source_term(
    name: str,
    transfer: pd.DataFrame,
    oracle: pd.DataFrame,
    kappa: float,
    k_subspace: int,
    y: str = "kl_exact",
) -> Check:
    """[formalization] The source term of the first-order transfer formula, on paired seeds:
    2 n_s (KL_transfer - KL_oracle) / (d_h (d_z - d_h)) estimates kappa.

    Transfer and the oracle of one seed share their target data and fit the same head, so
    their difference is the frozen subspace's error, kappa k_W / (2 n_s) to first order. Each
    seed's estimate is averaged over the cells (n_t, n_s) whose predicted source term is at
    most ``SMALL_SOURCE_TERM`` nats (first order is accurate there); the seeds' estimates form
    a Student-t interval at ``MUST_HOLD_LEVEL``, which must cover kappa.
    """
    limit = f"2n_s(KL_transfer - KL_oracle)/k_W: {MUST_HOLD_LEVEL:.1%} interval covers kappa"
    small = transfer[kappa * expected_kl(k_subspace, transfer.n_source) <= SMALL_SOURCE_TERM]
    pairs = _paired(small, oracle, ["n_target"], y, keep=("n_source",))
    if pairs.empty:
        return _no_rows(name, limit)
    pairs["kappa"] = 2 * pairs.n_source * (pairs["first"] - pairs["second"]) / k_subspace
    fit = mean_interval(pairs.groupby("seed").kappa.mean(), MUST_HOLD_LEVEL)
    if fit.seeds < MIN_SEEDS:
        return _too_few(name, limit, fit.value / kappa, fit.seeds)
    cells = pairs[["n_target", "n_source"]].drop_duplicates()
    detail = (
        f"kappa estimated {_interval_text(fit)} against {kappa:.4g}, over {_seeds(fit.seeds)} "
        f"and {len(cells)} cells with n_s >= {cells.n_source.min():g}"
    )
    return Check(name, MUST_HOLD, fit.value / kappa, limit, _verdict(fit.covers(kappa)), detail)


def crossover(
    name: str,
    transfer: pd.DataFrame,
    scratch: pd.DataFrame,
    kappa: float,
    dims: tuple[int, int, int],
    y: str = "kl_exact",
) -> Check:
    """[formalization] The measured crossover n_s*, where transfer's error meets scratch's at
    one n_t, lies within a factor ``CROSSOVER_FACTOR`` of the predicted one.

    The prediction is where the first-order transfer error k_oracle/(2 n_t) +
    kappa k_W/(2 n_s) meets scratch's measured mean error (``crossover_n_source_at``): kappa
    n_t when scratch is at its first-order k_scratch/(2 n_t), below it where scratch's
    finite-n excess lifts its error. The point estimate must lie in the band; its interval
    over seeds (seed indices resampled jointly across the cells) and the share of
    replicates without a crossing are reported. An undefined crossover (no crossing on the
    grid) fails.
    """
    limit = f"measured / predicted in [1/{CROSSOVER_FACTOR:g}, {CROSSOVER_FACTOR:g}]"
    if transfer.empty or scratch.empty:
        return _no_rows(name, limit)
    seeds = min(transfer.groupby("n_source").seed.nunique().min(), scratch.seed.nunique())
    n_t = float(scratch.n_target.iloc[0])
    predicted = crossover_n_source_at(kappa, *dims, n_t, float(scratch[y].mean()))
    measured = fit_crossover(transfer, scratch, y=y)
    ratio = measured.value / predicted
    if seeds < MIN_SEEDS:
        return _too_few(name, limit, ratio, int(seeds), "seeds in some cell")
    detail = (
        f"n_s* = {measured.value:.0f} [{measured.low:.0f}, {measured.high:.0f}] "
        f"({measured.undefined:.0%} of replicates without a crossing), predicted "
        f"{predicted:.0f} from scratch's measured error (kappa n_t = {kappa * n_t:.0f})"
    )
    holds = 1 / CROSSOVER_FACTOR <= ratio <= CROSSOVER_FACTOR  # False where undefined
    return Check(name, MUST_HOLD, ratio, limit, _verdict(holds), detail)


def ordering(name: str, better: pd.DataFrame, worse: pd.DataFrame, y: str = "kl") -> Check:
    """The mean error of ``better`` (e.g. the oracle) does not exceed that of ``worse``
    (scratch) at any n_t, on paired seeds: it fails when, at some n_t, the
    ``MUST_HOLD_LEVEL`` interval of the mean difference lies wholly above 0. The figure is
    the largest mean difference over the n_t."""
    limit = f"mean {y} difference at every n_t: {MUST_HOLD_LEVEL:.1%} interval reaches <= 0"
    pairs = _paired(better, worse, ["n_target"], y)
    if pairs.empty:
        return _no_rows(name, limit)
    fits = {
        n_t: mean_interval(rows["first"] - rows["second"], MUST_HOLD_LEVEL)
        for n_t, rows in pairs.groupby("n_target")
    }
    worst_n, worst = max(fits.items(), key=lambda item: item[1].value)
    seeds = min(fit.seeds for fit in fits.values())
    if seeds < MIN_SEEDS:
        return _too_few(name, limit, worst.value, seeds, "paired seeds at some n_t")
    holds = all(fit.low <= 0 for fit in fits.values())
    sizes = ", ".join(f"{n:g}" for n in fits)
    detail = f"n_t = {sizes}; largest at n_t = {worst_n:g}: {_interval_text(worst)}"
    return Check(name, MUST_HOLD, worst.value, limit, _verdict(holds), detail)


def path_bound(rows: pd.DataFrame, n_se: float = ROW_SE, tolerance: float = 1e-6) -> Check:
    """[classical] The diffusion path bound is not below the sampler's exact KL on any row,
    allowing ``n_se`` standard errors of the bound's Monte Carlo estimate and the ODE
    solver's ``tolerance``."""
    limit = f"max(kl_sampler - path_kl_bound - {n_se:g} se) <= {tolerance:g}"
    if rows.empty:
        return _no_rows("path_bound", limit)
    slack = n_se * rows.path_kl_bound_se
    shortfall = float((rows.kl_sampler - rows.path_kl_bound - slack).max())
    verdict = _verdict(shortfall <= tolerance)
    return Check("path_bound", MUST_HOLD, shortfall, limit, verdict, f"{len(rows)} rows")


def seed_z(name: str, rows: pd.DataFrame, z: pd.Series, what: str) -> Check:
    """Monte Carlo estimates against their exact values, as z-scores (one per row): the
    seeds' mean z-scores within the Student-t interval of ``MUST_HOLD_LEVEL`` around 0, and
    every row's |z| within the Bonferroni normal quantile of that level over the rows.

    A seed's rows share their truth samples (so their errors are correlated), and seeds are
    independent: the test of the mean is over seeds. It catches an error common to the rows
    (a dropped factor) that no single row's noise reveals; the largest |z| catches one row
    gone astray. Needs ``MIN_SEEDS`` seeds.
    """
    z = z.dropna()
    limit = f"{what}: seeds' mean and every row within {MUST_HOLD_LEVEL:.1%}"
    if z.empty:
        return _no_rows(name, limit)
    fit = mean_interval(z.groupby(rows.seed.loc[z.index]).mean(), MUST_HOLD_LEVEL)
    if fit.seeds < MIN_SEEDS:
        return _too_few(name, limit, fit.value, fit.seeds)
    row_limit = norm.ppf(1 - (1 - MUST_HOLD_LEVEL) / (2 * len(z)))
    holds = fit.covers(0.0) and z.abs().max() <= row_limit
    detail = (
        f"mean z {_interval_text(fit)} over {_seeds(fit.seeds)}; {len(z)} rows, largest |z| "
        f"{z.abs().max():.2f} (limit {row_limit:.2f})"
    )
    return Check(name, MUST_HOLD, fit.value, limit, _verdict(holds), detail)


def path_bound_exact(rows: pd.DataFrame) -> Check:
    """[classical] The path bound's Monte Carlo estimate (``path_kl_bound``) agrees with its
    closed form (``path_kl_bound_exact``, known for the linear score model), two-sided:
    a wrong constant in the bound (the 1/2 dropped) or a biased score error fails it."""
    z = (rows.path_kl_bound - rows.path_kl_bound_exact) / rows.path_kl_bound_se
    return seed_z("path_bound_exact", rows, z, "(path_kl_bound - exact) / se")


def ode_likelihood(rows: pd.DataFrame) -> Check:
    """[classical] The probability-flow likelihood's KL (``kl_ode``, Monte Carlo with
    standard error ``kl_se``) agrees with the KL of the ODE's exact law (``kl_ode_exact``,
    known for the linear score model): the instantaneous change of variables (Chen et al.
    2018), checked on trained models."""
    z = (rows.kl_ode - rows.kl_ode_exact) / rows.kl_se
    return seed_z("ode_likelihood", rows, z, "(kl_ode - kl_ode_exact) / kl_se")


def slope(
    name: str,
    fitted: Interval,
    candidate: float,
    reason: str = "",
    seeds_needed: int | None = None,
    widened: float = 1.0,
    fit_p: float = math.nan,
) -> Check:
    """[candidate] A fitted exponent beside the candidate; consistent when its interval
    covers it, not assessable when the fit has no interval (``reason`` says why). Reported,
    never failing; ``seeds_needed`` (the seeds projected for ±``EXPONENT_HALF_WIDTH``) is
    told where it exceeds the fit's, and an interval ``widened`` by the means' scatter about
    the fit (lack-of-fit p-value ``fit_p``) says so."""
    if reason or not fitted.low < fitted.high:
        why = reason or "no spread over seeds"
        return Check(
            name, CANDIDATE, fitted.value, f"candidate {candidate:.3f}", NOT_ASSESSABLE, why
        )
    verdict = CONSISTENT if fitted.covers(candidate) else INCONSISTENT
    detail = f"95 % interval [{fitted.low:.3f}, {fitted.high:.3f}] over {_seeds(fitted.seeds)}"
    if widened > 1:
        detail += (
            f", widened {widened:.2f} times for the means' scatter about the fit "
            f"(lack of fit p = {fit_p:.2g})"
        )
    if seeds_needed is not None and seeds_needed > fitted.seeds:
        detail += f"; ±{EXPONENT_HALF_WIDTH:.2f} would take about {seeds_needed} seeds"
    return Check(name, CANDIDATE, fitted.value, f"candidate {candidate:.3f}", verdict, detail)


def table(checks: list[Check]) -> pd.DataFrame:
    """The checks as one tidy table."""
    columns = list(Check.__dataclass_fields__)
    return pd.DataFrame([asdict(c) for c in checks], columns=columns)


def write(checks: list[Check], path: Path) -> None:
    """Write ``checks.csv``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table(checks).to_csv(path, index=False)


def failed(checks: list[Check]) -> list[Check]:
    """The must-hold checks that failed (not those that are not assessable)."""
    return [c for c in checks if c.kind == MUST_HOLD and c.verdict == FAIL]


def summary(checks: list[Check]) -> str:
    """The verdict on the must-hold checks in one line, e.g. "19 of 22 must-hold checks
    pass, 3 not assessable": how many pass, then how many failed and how many are not
    assessable, where there are any."""
    must_hold = [c for c in checks if c.kind == MUST_HOLD]
    counts = Counter(c.verdict for c in must_hold)
    line = f"{counts[PASS]} of {len(must_hold)} must-hold checks pass"
    if counts[FAIL]:
        line += f", {counts[FAIL]} failed"
    if counts[NOT_ASSESSABLE]:
        line += f", {counts[NOT_ASSESSABLE]} not assessable (too few seeds or no rows)"
    return line
