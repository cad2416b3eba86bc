"""Checks: named records that compare a measured figure with its limit.

Two kinds are kept apart:
- ``must_hold``: a failure means a bug or a wrong claim (``run_all.py --check`` exits 1);
- ``candidate``: a fitted slope beside a candidate slope, reported as consistent or not,
  never failing a run.
"""

from __future__ import annotations

import math
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


def _mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean over seeds and its standard error (0 for a single value)."""
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return mean, se


@dataclass(frozen=True)
class Check:
    """One check: its name and kind, the measured figure, the limit, and the verdict."""

    name: str
    kind: str
    figure: float
    limit: str
    passed: bool
    detail: str = ""


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
        count == 0,
        f"{len(frame)} rows",
    )


def in_band(name: str, ratios: pd.Series, band=CALIBRATION_BAND) -> Check:
    """The mean of ``ratios`` (over seeds) is consistent with ``band``: within ``N_SE``
    standard errors of it, so that a handful of seeds does not fail a correct run."""
    mean, se = _mean_se(ratios)
    low, high = band
    passed = low - N_SE * se <= mean <= high + N_SE * se
    return Check(
        name,
        MUST_HOLD,
        mean,
        f"in [{low:g}, {high:g}] within {N_SE:g} se",
        passed,
        f"se {se:.3g} over {len(ratios)} seeds",
    )


def crossover(name: str, measured: Interval, predicted: float) -> Check:
    """[formalization] The measured crossover n_s* within a factor 1.5 of kappa n_t: it
    fails when n_s* is undefined, or when its bootstrap interval lies wholly outside
    [kappa n_t / 1.5, 1.5 kappa n_t], so that a handful of seeds does not fail a correct
    run (as ``in_band`` allows its standard errors)."""
    ratio = measured.value / predicted
    low, high = predicted / CROSSOVER_FACTOR, predicted * CROSSOVER_FACTOR
    passed = math.isfinite(ratio) and measured.low < high and measured.high > low
    return Check(
        name,
        MUST_HOLD,
        ratio,
        f"measured / predicted in [1/{CROSSOVER_FACTOR:g}, {CROSSOVER_FACTOR:g}], "
        "or its interval reaching it",
        passed,
        f"n_s* = {measured.value:.0f} [{measured.low:.0f}, {measured.high:.0f}], "
        f"predicted {predicted:.0f}",
    )


def ordering(name: str, better: pd.Series, worse: pd.Series) -> Check:
    """The mean error of ``better`` (e.g. oracle) does not exceed that of ``worse``
    (scratch) beyond ``N_SE`` standard errors of the difference of the two means."""
    (mean_better, se_better), (mean_worse, se_worse) = _mean_se(better), _mean_se(worse)
    gap, se = mean_better - mean_worse, math.hypot(se_better, se_worse)
    return Check(
        name,
        MUST_HOLD,
        gap,
        f"mean KL difference <= {N_SE:g} se",
        gap <= N_SE * se,
        f"se {se:.3g}",
    )


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
        shortfall <= tolerance,
        f"{len(frame)} rows",
    )


def slope(name: str, fitted: Interval, candidate: float) -> Check:
    """[candidate] A fitted slope beside the candidate slope; consistent when the bootstrap
    interval covers it. Reported, never failing."""
    return Check(
        name,
        CANDIDATE,
        fitted.value,
        f"candidate {candidate:.3f}",
        fitted.covers(candidate),
        f"95 % interval [{fitted.low:.3f}, {fitted.high:.3f}]",
    )


def table(checks: list[Check]) -> pd.DataFrame:
    """The checks as one tidy table."""
    return pd.DataFrame([asdict(c) for c in checks])


def write(checks: list[Check], path: Path) -> None:
    """Write ``checks.csv``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table(checks).to_csv(path, index=False)


def failed(checks: list[Check]) -> list[Check]:
    """The must-hold checks that failed."""
    return [c for c in checks if c.kind == MUST_HOLD and not c.passed]
