"""The verdict on the theory from rows of trained models: must-hold checks with their power,
the claims, and the fitted exponents beside their candidates.

Checks apply to rows by what they are (model, family, method, columns), whatever experiment
or ``--set`` produced them; rows no check applies to are not judged:
- every row with KL and TV: Pinsker's inequality;
- the linear-Gaussian model (``kl_exact``): the calibration 2n·KL/k of scratch and the
  oracle; with transfer rows of a source that shares the embedding, the transfer formula's
  source term (paired with the oracle) and the crossover n_s* at every n_t (with scratch);
- the oracle and scratch at one n_t on one truth, any model: oracle <= scratch;
- the linear score model: the path bound against the sampler's exact KL and against its own
  closed form, and the likelihood ODE's KL against the ODE's exact KL;
- methods with a candidate rate, over every grid of sample sizes: fitted exponents; for
  trained networks, of the excess over the floor (rows of the ``floor`` experiment: the same
  training on a larger sample, whose own share of the error the fit models), over the
  levels whose excess over it is resolved (``RESOLVED`` standard errors), and not
  assessable where no floor was measured or fewer than 3 levels are resolved; transfer's
  target exponent also from its edge at the floor's n_s alone; where the means scatter
  about the fit by more than their seeds' noise (``fit_p``, its lack-of-fit p-value, below
  ``MISFIT_LEVEL``), its interval is ``widened`` by the scatter.

Command line: ``python -m theory.verdict RESULTS_CSV [--out DIR]`` judges a ``results.csv``
(this suite's, or rows of a user's own models in the same columns) without training.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd

from sims.experiments import FLOOR_EXPERIMENT
from sims.generators import make_task_pair
from sims.schema import REQUIRED
from sims.tabular import write_table
from theory import checks
from theory.claims import judge_claims
from theory.fitting import (
    NOT_TESTED,
    LackOfFit,
    fit_excess_slope,
    fit_plateau,
    fit_slope,
    fit_two_term,
    upper_grid,
)
from theory.intervals import EXPONENT_HALF_WIDTH, Interval, seeds_for
from theory.parametric import k_oracle, k_scratch, k_subspace, kappa
from theory.power import (
    DOWN,
    UP,
    Plant,
    Trial,
    constant_offset,
    constant_scaled,
    power,
    scaled,
    shifted,
)
from theory.rates import Setting, predict
from theory.rows import TRUTH, experiments_of, in_experiment, trained_models, truth_knobs

ANCHOR_ERROR = "kl_exact"  # the linear-Gaussian model's KL in closed form
# the errors whose exponents are fitted for every other model: the candidates are minimax
# exponents in KL and in squared Hellinger alike, and H^2 <= 1 has no heavy tail
MODEL_ERRORS = ("kl", "hellinger2")
UPPER_FRACTION = 0.5  # a slope without a floor is fitted over the upper half of its grid
EXACT_FITS = ("linear_gaussian", "linear_score")  # fitted to convergence: no training floor
NO_FLOOR = (
    "no floor measured (the reference profile measures them): the exponent may be the training's"
)


@dataclass(frozen=True)
class Verdict:
    """The checks (must-hold with their power, claims, candidates) and the fitted slopes."""

    checks: list[checks.Check]
    slopes: pd.DataFrame

    @property
    def summary(self) -> str:
        return checks.summary(self.checks)

    @property
    def failures(self) -> list[checks.Check]:
        return checks.failed(self.checks)

    def of_kind(self, kind: str) -> pd.DataFrame:
        table = checks.table(self.checks)
        return table[table.kind == kind].reset_index(drop=True)


def _truths(rows: pd.DataFrame):
    """(label, rows) per truth; the label names the truth where there are several."""
    groups = list(rows.groupby(TRUTH, dropna=False))
    for _, group in groups:
        knobs = truth_knobs(group)
        label = ""
        if len(groups) > 1:
            shown = ", ".join(f"{k}={knobs[k]}" for k in ("d_x", "d_z", "d_h") if k in knobs)
            seed = f", truth {knobs['seed']}" if "seed" in knobs else ""
            label = f" ({shown}{seed})"
        yield label, group


def _shared_embedding(rows: pd.DataFrame) -> pd.DataFrame:
    """Transfer rows whose source shares the target's embedding (similarity 0 or unset)."""
    similarity = rows.similarity.fillna(0.0)
    return rows[(rows.method == "transfer") & (similarity == 0.0)]


def _true_embedding_plant() -> Plant:
    """Transfer's rows replaced by the oracle's of the same seed and n_t: a transfer that
    cheats by fitting its head on the true embedding (its source term gone)."""

    def apply(rows, constants, magnitude):
        oracle = rows["oracle"][["n_target", "seed", ANCHOR_ERROR]]
        cheat = rows["transfer"].drop(columns=ANCHOR_ERROR).merge(oracle, on=["n_target", "seed"])
        return rows | {"transfer": cheat}, constants

    return Plant((1.0,), lambda m: "transfer fitted with the true embedding", apply)


def _anchor_trials(frame: pd.DataFrame) -> list[Trial]:
    """The linear-Gaussian model's checks: calibration, source term, crossover."""
    anchor = frame[(frame.model == "linear_gaussian") & frame[ANCHOR_ERROR].notna()]
    trials = []
    for label, rows in _truths(anchor):
        knobs = truth_knobs(rows)
        dims = (knobs["d_x"], knobs["d_z"], knobs["d_h"])
        by_method = {m: rows[rows.method == m] for m in ("scratch", "oracle")}
        k = {"scratch": k_scratch(*dims), "oracle": k_oracle(dims[0], dims[2])}
        for method, method_rows in by_method.items():
            if not method_rows.empty:
                name = f"calibration 2nKL/k, {method}{label}"
                plants = (
                    scaled("rows", ANCHOR_ERROR, UP, "KL"),
                    scaled("rows", ANCHOR_ERROR, DOWN, "KL"),
                    constant_offset("k", 1),
                    constant_offset("k", -1),
                )
                trials.append(
                    Trial(
                        partial(checks.calibration, name),
                        {"rows": method_rows},
                        {"k": k[method]},
                        plants,
                    )
                )
        transfer = _shared_embedding(rows)
        if transfer.empty:
            continue
        kappa_ = kappa(make_task_pair("linear_gaussian", **knobs))
        kappa_plants = (constant_scaled("kappa", UP), constant_scaled("kappa", DOWN))
        if not by_method["oracle"].empty:
            trials.append(
                Trial(
                    partial(checks.transfer_source_term, f"transfer source term{label}"),
                    {"transfer": transfer, "oracle": by_method["oracle"]},
                    {"kappa": kappa_, "k_subspace": k_subspace(dims[1], dims[2])},
                    (*kappa_plants, _true_embedding_plant()),
                )
            )
        for n_t, moved in transfer.groupby("n_target"):
            scratch = by_method["scratch"][by_method["scratch"].n_target == n_t]
            if moved.n_source.nunique() >= 2 and not scratch.empty:
                name = f"crossover n_s*, n_t={n_t}{label}"
                trials.append(
                    Trial(
                        partial(checks.crossover, name),
                        {"transfer": moved, "scratch": scratch},
                        {"kappa": kappa_, "dims": dims},
                        kappa_plants,
                    )
                )
    return trials


def _ordering_trials(frame: pd.DataFrame) -> list[Trial]:
    """oracle <= scratch at every n_t of every truth and model that has both."""
    trials = []
    both = frame[frame.method.isin(["oracle", "scratch"])]
    for model, rows in both.groupby("model"):
        for label, truth in _truths(rows):
            oracle, scratch = truth[truth.method == "oracle"], truth[truth.method == "scratch"]
            if oracle.empty or scratch.empty:
                continue
            name = f"oracle <= scratch, {truth.family.iloc[0]} {model}{label}"
            plants = (scaled("better", "kl", UP, "oracle KL"),)
            judge = partial(checks.ordering, name)
            trials.append(Trial(judge, {"better": oracle, "worse": scratch}, {}, plants))
    return trials


def _score_term_plant() -> Plant:
    """The path bound's score term multiplied by the magnitude (× 2: the 1/2 dropped)."""

    def apply(rows, constants, m):
        planted = rows["rows"].assign(
            path_kl_bound=rows["rows"].path_kl_bound + (m - 1) * 0.5 * rows["rows"].score_err
        )
        return {"rows": planted}, constants

    return Plant((1.1, 1.2, 1.5, 2.0, 3.0), lambda m: f"score term × {m:g}", apply)


def _diffusion_anchor_trials(frame: pd.DataFrame) -> list[Trial]:
    """The linear score model's exact laws against the Monte Carlo estimates."""
    trials = []
    columns = {
        "kl_sampler": (checks.path_bound, (scaled("rows", "path_kl_bound", DOWN, "bound"),)),
        "path_kl_bound_exact": (
            checks.path_bound_exact,
            (
                scaled("rows", "path_kl_bound", UP, "bound"),
                scaled("rows", "path_kl_bound", DOWN, "bound"),
                _score_term_plant(),
            ),
        ),
        "kl_ode_exact": (
            checks.ode_likelihood,
            (
                scaled("rows", "kl_ode", UP),
                scaled("rows", "kl_ode", DOWN),
                shifted("rows", "kl_ode"),
            ),
        ),
    }
    for column, (judge, plants) in columns.items():
        if column in frame:
            rows = frame[frame[column].notna()]
            if not rows.empty:
                trials.append(Trial(judge, {"rows": rows}, {}, plants))
    return trials


def must_hold_trials(frame: pd.DataFrame) -> list[Trial]:
    """Every must-hold check that applies to the rows of ``trained_models``."""
    columns = ["kl", "kl_se", "tv", "tv_se"]
    densities = frame.dropna(subset=columns) if set(columns) <= set(frame) else frame.iloc[:0]
    pinsker = Trial(checks.pinsker, {"rows": densities}, {}, (scaled("rows", "kl", DOWN, "KL"),))
    return [
        pinsker,
        *_anchor_trials(frame),
        *_ordering_trials(frame),
        *_diffusion_anchor_trials(frame),
    ]


def _judged(trial: Trial, with_power: bool) -> checks.Check:
    found = trial.check()
    detected = (
        "; ".join(power(trial)) if with_power and found.verdict != checks.NOT_ASSESSABLE else ""
    )
    return replace(found, experiments=experiments_of(*trial.rows.values()), power=detected)


def _slope_row(
    rows: pd.DataFrame,
    over: str,
    y: str,
    fit: Interval,
    candidate: float,
    reason: str = "",
    floor: float = math.nan,
    sizes: list | None = None,
    misfit: LackOfFit = NOT_TESTED,
    floor_size: float = math.nan,
) -> dict:
    first = rows.iloc[0]
    name = over.split()[0]
    sizes = sorted(rows[name].unique()) if sizes is None else sizes
    return {
        "experiments": experiments_of(rows),
        "family": first.family,
        "model": first.model,
        "method": first.method,
        "over": over,
        "error": y,
        "fitted": fit.value,
        "low": fit.low,
        "high": fit.high,
        "seeds": fit.seeds,
        "candidate": candidate,
        "consistent": None if reason else fit.covers(candidate),
        # the scatter that widens an interval does not shrink with seeds
        "seeds_needed": None
        if reason or misfit.widening > 1
        else seeds_for(fit, EXPONENT_HALF_WIDTH),
        "floor": floor,
        "floor_size": floor_size,
        "sizes": f"{sizes[0]:g} … {sizes[-1]:g} ({len(sizes)} levels)" if sizes else "",
        "fit_p": misfit.p_value,
        "widened": misfit.widening,
        "reason": reason,
    }


def fitted_slopes(frame: pd.DataFrame) -> pd.DataFrame:
    """Every fitted exponent p (error ~ n^-p) with its candidate: from the log-log slope over
    n_t for source-free methods; for transfer, from a two-term fit where n_t and n_s both
    vary, else from a fit with its plateau over whichever of them varies. A trained network's
    exponents are those of its excess over its floor. Each is fitted to the closed-form KL of
    the linear-Gaussian model, and to KL and squared Hellinger (where the rows have it) of
    every other model."""
    frame = frame.assign(similarity=frame.similarity.fillna(0.0))
    is_floor = in_experiment(frame, FLOOR_EXPERIMENT)
    floors = frame[is_floor]
    found = []
    for (model, method), rows in frame[~is_floor].groupby(["model", "method"]):
        errors = (ANCHOR_ERROR,) if model == "linear_gaussian" else MODEL_ERRORS
        errors = [y for y in errors if y in rows and rows[y].notna().any()]
        for _, truth in _truths(rows):
            for similarity, group in truth.groupby("similarity"):
                config = make_task_pair(group.family.iloc[0], **truth_knobs(group)).config
                rate = predict(group.family.iloc[0], method, Setting(config, model))
                if rate is None:
                    continue
                floor = None
                if model not in EXACT_FITS:
                    same = (floors.model == model) & (floors.method == method)
                    same &= floors.similarity == similarity
                    floor = floors[same].merge(group[TRUTH].drop_duplicates(), on=TRUTH)
                for y in errors:
                    found += _fits(group, y, rate, floor)
    slopes = pd.DataFrame(found)
    return slopes.astype({"seeds_needed": "Int64"}) if found else slopes


def _fits(rows: pd.DataFrame, y: str, rate, floor: pd.DataFrame | None) -> list[dict]:
    """The fits of one method on one truth; ``floor``: its floor's rows (``None`` where the
    fit has no floor, empty where none was measured)."""
    levels = {c: rows[c].nunique() for c in ("n_target", "n_source")}
    measured = None if floor is None or floor.empty else floor
    unmeasured = NO_FLOOR if floor is not None and measured is None else ""
    if rate.source_exponent is None:
        if levels["n_target"] < 2:
            return []
        if measured is not None:
            return [_excess_row(rows, "n_target", y, rate.target_exponent, measured)]
        # error ~ n^-p: the exponent is minus the slope
        slope = fit_slope(rows, y=y, upper_fraction=UPPER_FRACTION)
        exponent = Interval(-slope.value, -slope.high, -slope.low, slope.seeds, slope.undefined)
        grid = upper_grid(rows.n_target, UPPER_FRACTION)
        return [
            _slope_row(rows, "n_target", y, exponent, rate.target_exponent, unmeasured, sizes=grid)
        ]
    if levels["n_target"] >= 2 and levels["n_source"] >= 2:
        fit = fit_two_term(rows, y=y, floor=measured)
        level = math.nan if measured is None else float(measured[y].mean())
        terms = (
            ("n_target", fit.target_exponent, rate.target_exponent),
            ("n_source", fit.source_exponent, rate.source_exponent),
        )
        return _edge_rows(rows, y, rate.target_exponent, measured) + [
            _slope_row(
                rows,
                f"{over} (two-term)",
                y,
                fitted,
                candidate,
                fit.reason or unmeasured,
                level,
                misfit=fit.misfit,
            )
            for over, fitted, candidate in terms
        ]
    found = []
    for over, exponent in (("n_target", rate.target_exponent), ("n_source", rate.source_exponent)):
        if levels[over] >= 2:
            fit = fit_plateau(rows, x=over, y=y)
            found.append(
                _slope_row(rows, f"{over} (with plateau)", y, fit.exponent, exponent, fit.reason)
            )
    return found


def _excess_row(rows: pd.DataFrame, over: str, y: str, candidate: float, floor) -> dict:
    """The row of the fit of the excess of ``rows`` (one curve over n_t) over ``floor``."""
    fit = fit_excess_slope(rows, floor, y=y)
    over = f"{over} (excess over floor)"
    return _slope_row(
        rows,
        over,
        y,
        fit.exponent,
        candidate,
        fit.reason,
        fit.floor,
        fit.levels,
        fit.misfit,
        fit.size,
    )


def _edge_rows(rows: pd.DataFrame, y: str, candidate: float, floor) -> list[dict]:
    """The fit of transfer's curve over n_t at the floor's n_s, where its source term is the
    floor's own and its excess over the floor is the target term alone (none where no
    floor was measured or the edge has fewer than 2 levels of n_t)."""
    if floor is None:
        return []
    size = floor.n_source.max()
    edge = rows[rows.n_source == size]
    if edge.n_target.nunique() < 2:
        return []
    return [_excess_row(edge, f"n_target at n_s = {size:g}", y, candidate, floor)]


def judge(frame: pd.DataFrame, with_power: bool = True) -> Verdict:
    """The verdict on the rows of a run (or any table in its columns): the must-hold checks
    (with their power where ``with_power``), the claims and the candidate slopes."""
    models = trained_models(frame)
    found = [_judged(trial, with_power) for trial in must_hold_trials(models)]
    found += judge_claims(models)
    slopes = fitted_slopes(models)
    found += [
        replace(
            checks.slope(
                f"{r.family} {r.model} {r.method}, exponent of {r.error} over {r.over}, {r.sizes}",
                Interval(r.fitted, r.low, r.high, r.seeds),
                r.candidate,
                r.reason,
                None if pd.isna(r.seeds_needed) else int(r.seeds_needed),
                r.widened,
                r.fit_p,
            ),
            experiments=r.experiments,
        )
        for r in slopes.itertuples()
    ]
    return Verdict(found, slopes)


def write_verdict(verdict: Verdict, results: Path) -> None:
    """``checks.csv``, ``slopes.csv`` and the tables ``checks``, ``power``, ``claims`` and
    ``slopes`` (Markdown and LaTeX) under ``results``."""
    tables = results / "tables"
    checks.write(verdict.checks, results / "checks.csv")
    verdict.slopes.to_csv(results / "slopes.csv", index=False)
    table = checks.table(verdict.checks)
    write_table(table.drop(columns="power"), tables, "checks", lead=f"{verdict.summary}.")
    must_hold = verdict.of_kind(checks.MUST_HOLD)
    write_table(must_hold[["name", "verdict", "power"]], tables, "power")
    write_table(verdict.of_kind(checks.CLAIM).drop(columns="power"), tables, "claims")
    write_table(verdict.slopes, tables, "slopes")


class _Parser(argparse.ArgumentParser):
    """Reports bad input as one line and exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def read_rows(path: Path) -> pd.DataFrame:
    """The rows of ``path``.

    Raises:
        ValueError: the file cannot be read, or lacks a column the verdict needs.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read as CSV ({error})") from None
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}: expected {list(REQUIRED)}"
        )
    return frame


def main(argv: list[str] | None = None) -> int:
    """``python -m theory.verdict``: judge a table of rows; exit 1 when a must-hold check
    fails, 2 on a table that cannot be read."""
    parser = _Parser(
        prog="python -m theory.verdict",
        description="Judge rows of trained models (a results.csv) without training: must-hold "
        "checks with their power, claims and fitted exponents.",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS_CSV")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write DIR/checks.csv, slopes.csv and tables/ (default: the folder of RESULTS_CSV)",
    )
    parser.add_argument("--no-power", action="store_true", help="skip the planted errors")
    args = parser.parse_args(argv)
    try:
        frame = read_rows(args.results)
    except ValueError as error:
        parser.error(str(error))
    verdict = judge(frame, with_power=not args.no_power)
    write_verdict(verdict, args.out or args.results.parent)
    table = checks.table(verdict.checks)
    print(table[["name", "kind", "figure", "verdict"]].to_string(index=False))
    print(verdict.summary, file=sys.stderr if verdict.failures else sys.stdout)
    return 1 if verdict.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
