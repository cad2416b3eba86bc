"""The verdict on the theory from the studies' results: checks, slopes and tables.

    python studies/theory_checks.py [--results results]

Reads ``flows_calibration.csv``, ``flow_transfer.csv`` and, when present,
``diffusion_transfer.csv`` (written by the studies), then writes ``checks.csv``,
``slopes.csv`` and ``tables/{checks,slopes}.{md,tex}`` under ``--results`` and prints the
tables. Exits 1 when a must-hold check fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sims.generators import make_task_pair
from theory import checks
from theory.fitting import Interval, crossover_seeds, fit_crossover, fit_slope, fit_two_term
from theory.parametric import crossover_n_source, k_oracle, k_scratch, kappa, transfer_kl
from theory.rates import Setting, predict

# the truths of the two studies (their scripts say so)
ANCHOR = {"d_x": 4, "d_z": 8, "d_h": 2, "signal_source": 0.5, "seed": 0}
SMOOTH = {"d_x": 2, "d_z": 8, "d_h": 2, "seed": 0}
FAMILY_OF_MODEL = {
    "linear_gaussian": "linear_gaussian",
    "flow": "gaussian_smooth",
    "diffusion": "gaussian_smooth",
}


def anchor_checks(frame: pd.DataFrame) -> tuple[list[checks.Check], list[dict]]:
    pair = make_task_pair("linear_gaussian", **ANCHOR)
    d_x, d_z, d_h, kappa_ = ANCHOR["d_x"], ANCHOR["d_z"], ANCHOR["d_h"], kappa(pair)
    k = {"scratch": k_scratch(d_x, d_z, d_h), "oracle": k_oracle(d_x, d_h)}
    found, slopes = [], []
    for method, k_method in k.items():
        rows = frame[frame.method == method]
        largest = rows[rows.n_target == rows.n_target.max()]
        ratio = 2 * largest.n_target * largest.kl_exact / k_method
        n = int(largest.n_target.iloc[0])
        found.append(checks.in_band(f"calibration 2nKL/k, {method}, n_t={n}", ratio))
        fit = fit_slope(rows, y="kl_exact")
        slopes.append(slope_row("linear_gaussian", method, "n_target", fit, -1.0))
    moved = frame[frame.method == "transfer"]
    largest_target = moved[moved.n_target == moved.n_target.max()]
    for n_source, rows in largest_target.groupby("n_source"):
        prediction = transfer_kl(d_x, d_z, d_h, kappa_, rows.n_target.iloc[0], n_source)
        name = f"transfer / prediction, n_t={rows.n_target.iloc[0]}, n_s={n_source:.0f}"
        found.append(checks.in_band(name, rows.kl_exact / prediction))
    n_t = moved.n_target.min()
    scratch = frame[(frame.method == "scratch") & (frame.n_target == n_t)]
    transfer = moved[moved.n_target == n_t]
    measured = fit_crossover(transfer, scratch, y="kl_exact")
    predicted = crossover_n_source(kappa_, n_t)
    seeds = crossover_seeds(transfer, scratch)
    found.append(checks.crossover(f"crossover n_s*, n_t={n_t}", measured, predicted, seeds))
    two_term = fit_two_term(moved, y="kl_exact")
    terms = (("n_target", two_term.target_exponent), ("n_source", two_term.source_exponent))
    for over, exponent in terms:
        # KL ~ a n_t^-p + b n_s^-q, reported as the slopes -p and -q; the prediction is -1
        slope = Interval(-exponent.value, -exponent.high, -exponent.low)
        slopes.append(slope_row("linear_gaussian", "transfer", over, slope, -1.0, "two-term"))
    return found, slopes


def slope_row(model, method, over, fit, candidate, kind="log-log slope") -> dict:
    """One row of slopes.csv: a fitted rate with its interval beside the candidate."""
    return {
        "family": FAMILY_OF_MODEL[model],
        "model": model,
        "method": method,
        "over": over,
        "fit": kind,
        "fitted": fit.value,
        "low": fit.low,
        "high": fit.high,
        "candidate": candidate,
        "consistent": fit.covers(candidate),
    }


def smooth_checks(frame: pd.DataFrame, model: str) -> tuple[list[checks.Check], list[dict]]:
    """Ordering and candidate slopes of the transfer-effect study of ``model``."""
    config = make_task_pair("gaussian_smooth", **SMOOTH).config
    shared = frame[frame.similarity == 0.0]
    found, slopes = [], []
    for n_t, rows in shared.groupby("n_target"):
        oracle, scratch = rows[rows.method == "oracle"].kl, rows[rows.method == "scratch"].kl
        name = f"oracle <= scratch, gaussian_smooth {model}, n_t={n_t}"
        found.append(checks.ordering(name, oracle, scratch))
    for method in ("scratch", "transfer", "oracle"):
        rate = predict("gaussian_smooth", method, Setting(config, model))
        fit = fit_slope(shared[shared.method == method])
        slopes.append(slope_row(model, method, "n_target", fit, -rate.target_exponent))
    return found, slopes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()
    calibration = pd.read_csv(args.results / "flows_calibration.csv")
    studies = {
        model: pd.read_csv(path)
        for model in ("flow", "diffusion")
        if (path := args.results / f"{model}_transfer.csv").exists()
    }
    found, slopes = anchor_checks(calibration)
    found.insert(0, checks.pinsker(pd.concat([calibration, *studies.values()])))
    for model, frame in studies.items():
        model_checks, model_slopes = smooth_checks(frame, model)
        found += model_checks
        slopes += model_slopes
    slope_table = pd.DataFrame(slopes)
    found += [
        checks.slope(
            f"{r.fit} {r.family} {r.model} {r.method} over {r.over}",
            Interval(r.fitted, r.low, r.high),
            r.candidate,
        )
        for r in slope_table.itertuples()
    ]
    check_table = checks.table(found)
    tables = args.results / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    checks.write(found, args.results / "checks.csv")
    slope_table.to_csv(args.results / "slopes.csv", index=False)
    for name, table in (("checks", check_table), ("slopes", slope_table)):
        (tables / f"{name}.md").write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
        (tables / f"{name}.tex").write_text(table.to_latex(index=False, float_format="%.4g"))
        print(f"\n## {name}\n\n" + table.to_markdown(index=False, floatfmt=".4g"))
    print(f"\n{checks.summary(found)}")
    return 1 if checks.failed(found) else 0


if __name__ == "__main__":
    sys.exit(main())
