"""The claims: the directional statements of the shared-embedding framework that the
experiments exist to show, judged on paired seeds (every method of one seed shares its
target data).

A claim compares two sets of cells seed by seed: each cell's difference of mean errors is
divided by the mean error of its reference cell (so that cells of different scales weigh
alike), averaged over the cells for each seed, and the seeds' averages form a 95 %
Student-t interval. The claim passes when the interval lies wholly on its side of 0, fails
when it lies wholly on the other side, and is not assessable otherwise, or with fewer than
``CLAIM_SEEDS`` seeds. Claims are reported in their own table and never fail a run.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from theory.checks import CLAIM, FAIL, NOT_ASSESSABLE, PASS, Check
from theory.intervals import mean_interval
from theory.rows import TRUTH, experiments_of

CLAIM_SEEDS = 3  # a t interval with 2 degrees of freedom over seeds pooled across cells
LEVEL = 0.95


def relative_change(changed: pd.DataFrame, reference: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per seed, the mean over the cells ``keys`` of (changed - reference) / the reference
    cell's mean ``kl``; rows join on ``keys`` and the seed."""
    joined = changed.merge(reference, on=[*keys, "seed"], suffixes=("", "_reference"))
    joined = joined.dropna(subset=["kl", "kl_reference"])
    scale = joined.groupby(keys, dropna=False).kl_reference.transform("mean").abs()
    joined["relative"] = (joined.kl - joined.kl_reference) / scale
    return joined.groupby("seed").relative.mean()


def claim(name: str, change: pd.Series, expect: str, what: str, *used: pd.DataFrame) -> Check:
    """The claim that the per-seed ``change`` is below 0 (``expect`` "lower") or above it
    ("higher"); ``what`` says what the change is, ``used`` are the rows it comes from."""
    return replace(_claim(name, change, expect, what), experiments=experiments_of(*used))


def _claim(name: str, change: pd.Series, expect: str, what: str) -> Check:
    limit = f"{what}: 95 % interval {'below' if expect == 'lower' else 'above'} 0"
    fit = mean_interval(change.to_numpy(float), LEVEL)
    if fit.seeds < CLAIM_SEEDS:
        detail = f"{fit.seeds} seeds: fewer than {CLAIM_SEEDS}"
        return Check(name, CLAIM, fit.value, limit, NOT_ASSESSABLE, detail)
    below, above = fit.high < 0, fit.low > 0
    supports, contradicts = (below, above) if expect == "lower" else (above, below)
    verdict = PASS if supports else FAIL if contradicts else NOT_ASSESSABLE
    detail = f"{fit.value:+.3g} [{fit.low:+.3g}, {fit.high:+.3g}] over {fit.seeds} seeds"
    return Check(name, CLAIM, fit.value, limit, verdict, detail)


KEYS = [*TRUTH, "n_target"]  # a cell of a claim: one truth at one n_t


def _shared(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows.similarity.fillna(0.0) == 0.0]


def _beats_scratch(model: str, rows: pd.DataFrame) -> list[Check]:
    transfer, scratch = _shared(rows[rows.method == "transfer"]), rows[rows.method == "scratch"]
    far = transfer[transfer.n_source >= 10 * transfer.n_target]
    if far.empty or scratch.empty:
        return []
    change = relative_change(far, scratch, KEYS)
    name = f"transfer beats scratch with a shared embedding and n_s >= 10 n_t, {model}"
    return [claim(name, change, "lower", "(KL_transfer - KL_scratch) / KL_scratch", far, scratch)]


def _unrelated_source(model: str, rows: pd.DataFrame) -> list[Check]:
    transfer, scratch = rows[rows.method == "transfer"], rows[rows.method == "scratch"]
    unrelated = transfer[transfer.similarity == 1.0]
    if unrelated.empty or scratch.empty:
        return []
    change = relative_change(unrelated, scratch, KEYS)
    name = f"transfer loses to scratch from an unrelated source (similarity 1), {model}"
    what = "(KL_transfer - KL_scratch) / KL_scratch"
    return [claim(name, change, "higher", what, unrelated, scratch)]


def _falls_with_source(model: str, rows: pd.DataFrame) -> list[Check]:
    transfer = _shared(rows[rows.method == "transfer"])
    grown = transfer[transfer.groupby(KEYS, dropna=False).n_source.transform("nunique") >= 2]
    if grown.empty:
        return []
    ends = grown.groupby(KEYS, dropna=False).n_source
    largest = grown[grown.n_source == ends.transform("max")]
    smallest = grown[grown.n_source == ends.transform("min")]
    change = relative_change(largest, smallest.drop(columns="n_source"), KEYS)
    name = f"transfer's error falls with n_s towards the oracle's, {model}"
    what = "relative change of KL_transfer, largest n_s to smallest"
    return [claim(name, change, "lower", what, grown)]


def _dimension_growth(rows: pd.DataFrame) -> pd.Series:
    """Per seed, the relative change of the error from the smallest d_z to the largest of
    each cell (one truth but d_z, one n_t) with at least two d_z."""
    keys = [k for k in KEYS if k != "d_z"]
    grown = rows[rows.groupby(keys, dropna=False).d_z.transform("nunique") >= 2]
    if grown.empty:
        return pd.Series(dtype=float)
    ends = grown.groupby(keys, dropna=False).d_z
    largest = grown[grown.d_z == ends.transform("max")].drop(columns="d_z")
    smallest = grown[grown.d_z == ends.transform("min")].drop(columns="d_z")
    return relative_change(largest, smallest, keys)


def _escapes_dimension(model: str, rows: pd.DataFrame) -> list[Check]:
    used = rows[rows.method.isin(["scratch", "oracle"])]
    scratch = _dimension_growth(rows[rows.method == "scratch"])
    if scratch.empty:
        return []
    found = [
        claim(
            f"scratch's error grows with d_z, {model}",
            scratch,
            "higher",
            "relative change of KL_scratch, largest d_z to smallest",
            used,
        )
    ]
    oracle = _dimension_growth(rows[rows.method == "oracle"])
    if not oracle.empty:
        found.append(
            claim(
                f"the oracle's error grows less with d_z than scratch's, {model}",
                (oracle - scratch).dropna(),
                "lower",
                "oracle's relative change less scratch's",
                used,
            )
        )
    return found


def judge_claims(frame: pd.DataFrame) -> list[Check]:
    """Every claim that the rows (one per trained model, ``theory.rows.trained_models``) can
    speak to, per model."""
    found = []
    for model, rows in frame.groupby("model"):
        for judge in (_beats_scratch, _unrelated_source, _falls_with_source, _escapes_dimension):
            found += judge(model, rows)
    return found
