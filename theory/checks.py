"""Checks: named records that compare a measured figure with its limit.

Two kinds are kept apart:
- ``must_hold``: a failure means a bug or a wrong claim (``run_all.py --check`` exits 1);
- ``candidate``: a fitted slope beside a candidate slope, reported as consistent or not,
  never failing a run.

Each must-hold check has a verdict: ``pass``, ``fail``, or ``not assessable`` for a
statistical check whose noise cannot be estimated (fewer than 2 seeds: no standard error,
no bootstrap interval); a check that is not assessable neither passes nor fails a run. A
candidate slope is ``consistent``, ``not consistent`` or ``not assessable``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sims.metrics import Estimate, pinsker_holds
from theory.fitting import Interval

MUST_HOLD, CANDIDATE = "must_hold", "candidate"
CALIBRATION_BAND = (0.85, 1.15)
CROSSOVER_FACTOR = 1.5
N_SE = 3.0  # a statistical check fails only beyond this many standard errors
PASS, FAIL, NOT_ASSESSABLE = "pass", "fail", "not assessable"
CONSISTENT, INCONSISTENT = "consistent", "not consistent"  # the verdicts of candidate slopes


def _mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean over seeds and its standard error (NaN for fewer than 2 values)."""
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return mean, se


def _seeds(count: int) -> str:
    """``count`` seeds in words: "1 seed", "3 seeds"."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _verdict(holds: bool) -> str:
    """The verdict of a check that can be assessed."""
    return PASS if holds else FAIL


@dataclass(frozen=True)
class Check:
    """One check: its name and kind, the measured figure, the limit, the verdict (``PASS``,
    ``FAIL`` or ``NOT_ASSESSABLE``; for a candidate, ``CONSISTENT`` or ``INCONSISTENT``
    instead of the first two) and why."""

    name: str
    kind: str
    figure: float
    limit: str
    verdict: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        """Whether the verdict is ``PASS`` (a check that is not assessable has not passed)."""
        return self.verdict == PASS


def pinsker(frame: pd.DataFrame, n_se: float = 4.0) -> Check:
    """[classical] TV <= sqrt(KL / 2) on every row, within ``n_se`` standard errors."""
    violations = [
        not pinsker_holds(Estimate(r.kl, r.kl_se), Estimate(r.tv, r.tv_se), n_se)
        for r in frame.itertuples()
    ]
    count = int(np.sum(violations))
    return Check(
        "pinsker",
        MUST_HOLD,
        count,
        f"0 rows with TV > sqrt(KL/2) beyond {n_se:g} se",
        _verdict(count == 0),
        f"{len(frame)} rows",
    )


def in_band(name: str, ratios: pd.Series, band=CALIBRATION_BAND) -> Check:
    """The mean of ``ratios`` (over seeds) is consistent with ``band``: within ``N_SE``
    standard errors of it, so that a handful of seeds does not fail a correct run. Not
    assessable on a single seed, which has no standard error."""
    mean, se = _mean_se(ratios)
    low, high = band
    limit = f"in [{low:g}, {high:g}] within {N_SE:g} se"
    seeds = _seeds(len(ratios))
    if math.isnan(se):
        return Check(name, MUST_HOLD, mean, limit, NOT_ASSESSABLE, f"{seeds}: no standard error")
    holds = low - N_SE * se <= mean <= high + N_SE * se
    return Check(name, MUST_HOLD, mean, limit, _verdict(holds), f"se {se:.3g} over {seeds}")


def crossover(name: str, measured: Interval, predicted: float, seeds: int) -> Check:
    """[formalization] The measured crossover n_s* within a factor 1.5 of kappa n_t: it
    fails when n_s* is undefined, or when its bootstrap interval lies wholly outside
    [kappa n_t / 1.5, 1.5 kappa n_t], so that a handful of seeds does not fail a correct
    run (as ``in_band`` allows its standard errors). With fewer than 2 ``seeds`` in some
    cell it is not assessable: every resampling is the sample itself, so there is no
    interval, and one seed's noise alone can hide or move the crossing."""
    ratio = measured.value / predicted
    low, high = predicted / CROSSOVER_FACTOR, predicted * CROSSOVER_FACTOR
    detail = (
        f"n_s* = {measured.value:.0f} [{measured.low:.0f}, {measured.high:.0f}], "
        f"predicted {predicted:.0f}"
    )
    if seeds < 2:
        verdict = NOT_ASSESSABLE
        detail = f"{detail}: {_seeds(seeds)} per cell, no spread over seeds to form an interval"
    elif not math.isfinite(ratio):
        verdict = FAIL
    else:
        verdict = _verdict(measured.low < high and measured.high > low)
    return Check(
        name,
        MUST_HOLD,
        ratio,
        f"measured / predicted in [1/{CROSSOVER_FACTOR:g}, {CROSSOVER_FACTOR:g}], "
        "or its interval reaching it",
        verdict,
        detail,
    )


def ordering(name: str, better: pd.Series, worse: pd.Series) -> Check:
    """The mean error of ``better`` (e.g. oracle) does not exceed that of ``worse``
    (scratch) beyond ``N_SE`` standard errors of the difference of the two means. Not
    assessable when either has a single seed, which has no standard error."""
    (mean_better, se_better), (mean_worse, se_worse) = _mean_se(better), _mean_se(worse)
    gap, se = mean_better - mean_worse, math.hypot(se_better, se_worse)
    limit = f"mean KL difference <= {N_SE:g} se"
    if math.isnan(se):
        seeds = f"{_seeds(len(better))} and {_seeds(len(worse))}"
        return Check(name, MUST_HOLD, gap, limit, NOT_ASSESSABLE, f"{seeds}: no standard error")
    return Check(name, MUST_HOLD, gap, limit, _verdict(gap <= N_SE * se), f"se {se:.3g}")


def path_bound(frame: pd.DataFrame, n_se: float = 4.0, tolerance: float = 1e-6) -> Check:
    """[classical] The diffusion path bound is not below the sampler's exact KL, allowing
    ``n_se`` standard errors of the bound's Monte Carlo estimate (``path_kl_bound_se``) and
    the ODE solver's ``tolerance``."""
    slack = n_se * frame.get("path_kl_bound_se", 0.0)
    shortfall = float((frame.kl_sampler - frame.path_kl_bound - slack).max())
    return Check(
        "path_bound",
        MUST_HOLD,
        shortfall,
        f"max(kl_sampler - path_kl_bound - {n_se:g} se) <= {tolerance:g}",
        _verdict(shortfall <= tolerance),
        f"{len(frame)} rows",
    )


def ode_likelihood(frame: pd.DataFrame, n_se: float = 5.0) -> Check:
    """[classical] The probability-flow likelihood's KL (``kl_ode``, a Monte Carlo estimate
    with standard error ``kl_se``) lies within ``n_se`` standard errors of the KL of the
    ODE's exact law (``kl_ode_exact``, known for the linear score model) on every row: the
    instantaneous change of variables (Chen et al. 2018), checked on trained models. Five
    standard errors, as the paper profile has 320 rows: at four, a correct run would fail
    about once in fifty."""
    off = (frame.kl_ode - frame.kl_ode_exact).abs() > n_se * frame.kl_se
    count = int(off.sum())
    return Check(
        "ode_likelihood",
        MUST_HOLD,
        count,
        f"0 rows with abs(kl_ode - kl_ode_exact) > {n_se:g} se",
        _verdict(count == 0),
        f"{len(frame)} rows",
    )


def slope(name: str, fitted: Interval, candidate: float) -> Check:
    """[candidate] A fitted slope beside the candidate slope; consistent when the bootstrap
    interval covers it, not assessable when the interval has no width (a single seed per
    cell). Reported, never failing."""
    detail = f"95 % interval [{fitted.low:.3f}, {fitted.high:.3f}]"
    if fitted.low < fitted.high:
        verdict = CONSISTENT if fitted.covers(candidate) else INCONSISTENT
    else:
        verdict, detail = NOT_ASSESSABLE, f"{detail}: no spread over seeds"
    return Check(name, CANDIDATE, fitted.value, f"candidate {candidate:.3f}", verdict, detail)


def table(checks: list[Check]) -> pd.DataFrame:
    """The checks as one tidy table."""
    return pd.DataFrame([asdict(c) for c in checks])


def write(checks: list[Check], path: Path) -> None:
    """Write ``checks.csv``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table(checks).to_csv(path, index=False)


def failed(checks: list[Check]) -> list[Check]:
    """The must-hold checks that failed (not those that are not assessable)."""
    return [c for c in checks if c.kind == MUST_HOLD and c.verdict == FAIL]


def summary(checks: list[Check]) -> str:
    """The verdict on the must-hold checks in one line, e.g. "19 of 22 must-hold checks
    pass, 3 not assessable (too few seeds to estimate their noise)": how many pass, then how
    many failed and how many are not assessable, where there are any."""
    must_hold = [c for c in checks if c.kind == MUST_HOLD]
    counts = Counter(c.verdict for c in must_hold)
    line = f"{counts[PASS]} of {len(must_hold)} must-hold checks pass"
    if counts[FAIL]:
        line += f", {counts[FAIL]} failed"
    if counts[NOT_ASSESSABLE]:
        line += f", {counts[NOT_ASSESSABLE]} not assessable (too few seeds to estimate their noise)"
    return line
