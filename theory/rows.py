"""The rows the verdict judges: one per trained model, with the columns that fix its truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sims.generators import families, family_knobs
from sims.schema import CELL_COLUMN

KNOBS = sorted({k for f in families() for k in family_knobs(f)} - {"seed", "similarity"})
TRUTH = ["family", "truth_seed", *KNOBS]  # the columns that fix a truth (but its source's)
# columns that some checks read, absent from rows that no such check applies to
OPTIONAL = (
    "n_source",
    "similarity",
    "kl_exact",
    "kl_sampler",
    "kl_ode",
    "kl_ode_exact",
    "score_err",
    "path_kl_bound",
    "path_kl_bound_se",
    "path_kl_bound_exact",
)


def _with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with every column the checks group by (absent ones as NaN, truth seed 0)."""
    frame = frame.copy()
    for column in (*OPTIONAL, *KNOBS):
        if column not in frame:
            frame[column] = np.nan
    if "truth_seed" not in frame:
        frame["truth_seed"] = 0
    return frame


def trained_models(frame: pd.DataFrame) -> pd.DataFrame:
    """The ok rows, one per trained model: a model that several experiments share (one
    cell) appears once, with ``experiments`` naming them all."""
    ok = _with_defaults(frame[frame.status == "ok"])
    by_cell = CELL_COLUMN in ok
    identity = [CELL_COLUMN, "seed"] if by_cell else ["experiment", "model", "method", "seed"]
    if not by_cell:
        identity += ["family", "n_source", "n_target", "similarity", "truth_seed", *KNOBS]
    named = ok.groupby(identity, dropna=False).experiment.transform(
        lambda names: ",".join(sorted(set(names)))
    )
    ok = ok.assign(experiments=named)
    return ok.drop_duplicates(identity).reset_index(drop=True)


def experiments_of(*frames: pd.DataFrame) -> str:
    """The experiments whose rows ``frames`` hold (rows of ``trained_models``), sorted and
    comma-separated, as a check records them."""
    names = {name for rows in frames for joined in rows.experiments for name in joined.split(",")}
    return ",".join(sorted(names))


def in_experiment(frame: pd.DataFrame, name: str) -> pd.Series:
    """Which rows (of ``trained_models``, or slope rows) hold a model of experiment ``name``."""
    return frame.experiments.str.split(",").apply(lambda names: name in names)


def truth_knobs(rows: pd.DataFrame) -> dict:
    """The family knobs of rows that share one truth (unset columns take the defaults)."""
    first = rows.iloc[0]
    family = family_knobs(first.family)
    knobs = {"seed": int(first.truth_seed)} if "seed" in family else {}
    for name, default in family.items():
        if name != "seed" and name in rows and pd.notna(first[name]):
            knobs[name] = type(default)(first[name])
    return knobs
