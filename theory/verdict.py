"""The verdict on the theory from a run's rows: the checks and the fitted slopes.

Reads the tidy rows of ``results.csv`` (one per trained model) and, per experiment:
- every row: Pinsker's inequality;
- ``calibration``: 2n·KL/k at the largest n, and the slope in n, against -1;
- ``crossover``: transfer / prediction where the source term is smallest, and the measured
  crossover n_s* against kappa·n_t at every n_t;
- ``target_scaling``, ``unconditional``: oracle <= scratch at every n_t, and the slope of
  every method with a candidate rate;
- ``diffusion_bounds``: the path bound is not below the exact sampler KL, and the ODE
  likelihood's KL agrees with the ODE's exact KL.
"""

from __future__ import annotations

import pandas as pd

from sims.generators import family_knobs, make_task_pair
from theory import checks
from theory.fitting import Interval, crossover_seeds, fit_crossover, fit_slope
from theory.parametric import crossover_n_source, k_oracle, k_scratch, kappa, transfer_kl
from theory.rates import Setting, predict

ANCHOR_ERROR = "kl_exact"  # the linear-Gaussian model's KL in closed form


def truth_knobs(rows: pd.DataFrame) -> dict:
    """The family knobs of rows that share one truth (unset columns take the defaults)."""
    first = rows.iloc[0]
    knobs = {"seed": int(first.truth_seed)}
    for name, default in family_knobs(first.family).items():
        if name != "seed" and name in rows and pd.notna(first[name]):
            knobs[name] = type(default)(first[name])
    return knobs


def _slope_row(rows: pd.DataFrame, over: str, y: str, candidate: float) -> dict:
    first = rows.iloc[0]
    fit = fit_slope(rows, x=over, y=y)
    return {
        "experiment": first.experiment,
        "family": first.family,
        "model": first.model,
        "method": first.method,
        "over": over,
        "error": y,
        "fitted": fit.value,
        "low": fit.low,
        "high": fit.high,
        "candidate": candidate,
        "consistent": fit.covers(candidate),
    }


def _calibration(frame: pd.DataFrame) -> tuple[list, list]:
    found, slopes = [], []
    for method, rows in frame.groupby("method"):
        truth = truth_knobs(rows)
        d_x, d_z, d_h = truth["d_x"], truth["d_z"], truth["d_h"]
        k = k_scratch(d_x, d_z, d_h) if method == "scratch" else k_oracle(d_x, d_h)
        largest = rows[rows.n_target == rows.n_target.max()]
        n = int(largest.n_target.iloc[0])
        ratio = 2 * largest.n_target * largest[ANCHOR_ERROR] / k
        found.append(checks.in_band(f"calibration 2nKL/k, {method}, n_t={n}", ratio))
        if rows.n_target.nunique() >= 2:
            slopes.append(_slope_row(rows, "n_target", ANCHOR_ERROR, -1.0))
    return found, slopes


def _crossover(frame: pd.DataFrame) -> list:
    moved, scratch = frame[frame.method == "transfer"], frame[frame.method == "scratch"]
    if moved.empty or scratch.empty:
        return []
    truth = truth_knobs(moved)
    kappa_ = kappa(make_task_pair("linear_gaussian", **truth))
    d_x, d_z, d_h = truth["d_x"], truth["d_z"], truth["d_h"]
    found = []
    best = moved[moved.n_target == moved.n_target.max()]
    best = best[best.n_source == best.n_source.max()]
    n_t, n_s = int(best.n_target.iloc[0]), int(best.n_source.iloc[0])
    prediction = transfer_kl(d_x, d_z, d_h, kappa_, n_t, n_s)
    name = f"transfer / prediction, n_t={n_t}, n_s={n_s}"
    found.append(checks.in_band(name, best[ANCHOR_ERROR] / prediction))
    for n_t, rows in moved.groupby("n_target"):
        reference = scratch[scratch.n_target == n_t]
        if reference.empty or rows.n_source.nunique() < 2:
            continue
        measured = fit_crossover(rows, reference, y=ANCHOR_ERROR)
        predicted = crossover_n_source(kappa_, n_t)
        seeds = crossover_seeds(rows, reference)
        name = f"crossover n_s*, n_t={n_t}"
        found.append(checks.crossover(name, measured, predicted, seeds))
    return found


def _scaling(frame: pd.DataFrame) -> tuple[list, list]:
    found, slopes = [], []
    for (model, family), rows in frame.groupby(["model", "family"]):
        for n_t, cell in rows.groupby("n_target"):
            oracle, scratch = cell[cell.method == "oracle"], cell[cell.method == "scratch"]
            if not oracle.empty and not scratch.empty:
                name = f"oracle <= scratch, {family} {model}, n_t={n_t}"
                found.append(checks.ordering(name, oracle.kl, scratch.kl))
        config = make_task_pair(family, **truth_knobs(rows)).config
        for method, by_method in rows.groupby("method"):
            rate = predict(family, method, Setting(config, model))
            if rate is not None and by_method.n_target.nunique() >= 2:
                slopes.append(_slope_row(by_method, "n_target", "kl", -rate.target_exponent))
    return found, slopes


def judge(frame: pd.DataFrame) -> tuple[list[checks.Check], pd.DataFrame]:
    """The checks (must-hold and candidate) and the slope table of a run's rows."""
    ok = frame[frame.status == "ok"]
    found, slopes = [checks.pinsker(ok.dropna(subset=["kl", "tv"]))], []
    experiments = dict(tuple(ok.groupby("experiment")))
    if "calibration" in experiments:
        more_checks, more_slopes = _calibration(experiments["calibration"])
        found, slopes = found + more_checks, slopes + more_slopes
    if "crossover" in experiments:
        found += _crossover(experiments["crossover"])
    for name in ("target_scaling", "unconditional"):
        if name in experiments:
            more_checks, more_slopes = _scaling(experiments[name])
            found, slopes = found + more_checks, slopes + more_slopes
    if "diffusion_bounds" in experiments:
        anchor = experiments["diffusion_bounds"]
        found.append(checks.path_bound(anchor))
        if "kl_ode_exact" in anchor:  # absent from rows cached by older versions
            found.append(checks.ode_likelihood(anchor.dropna(subset=["kl_ode_exact"])))
    table = pd.DataFrame(slopes)
    found += [
        checks.slope(
            f"{r.experiment}: {r.family} {r.model} {r.method}, slope over {r.over}",
            Interval(r.fitted, r.low, r.high),
            r.candidate,
        )
        for r in table.itertuples()
    ]
    return found, table
