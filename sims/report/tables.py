"""Tables of a run: each cell's mean over seeds with its 95 % Student-t interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import t as student

from sims.schema import IDENTITY

ERRORS = [
    "kl",
    "kl_exact",
    "score_err",
    "path_kl_bound",
    "kl_sampler",
    "kl_euler_maruyama",
    "kl_ode_exact",
    "sw2",
    "mmd",
]


def mean_interval(values: pd.Series, level: float = 0.95) -> dict[str, float]:
    """Mean over seeds, its standard error and the Student-t interval (NaN-free values)."""
    values = values.dropna()
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else math.nan
    half = float(student.ppf(0.5 + level / 2, n - 1) * se) if n > 1 else math.nan
    return {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "seeds": n}


def summarise(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """``mean_interval`` of ``value`` per group of ``by`` (NaN keys kept as their own group)."""
    groups = frame.groupby(by, dropna=False)[value]
    rows = [
        dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)) | mean_interval(g)
        for key, g in groups
    ]
    return pd.DataFrame(rows)


def seed_counts(frame: pd.DataFrame) -> str:
    """The seeds behind each mean of ``frame``, the fewest of any (model, method, n_target):
    "3 seed(s)", or per model where models differ ("10 seeds for diffusion and 16 for flow")."""
    groups = frame.groupby(["model", "method", "n_target"], dropna=False).seed.nunique()
    fewest = groups.groupby(level="model").min()
    if fewest.nunique() == 1:
        return f"{fewest.iloc[0]} seed(s)"
    (model, n), *rest = fewest.items()
    others = [f"{count} for {name}" for name, count in rest]
    return ", ".join([f"{n} seeds for {model}", *others[:-1]]) + f" and {others[-1]}"


def _formatted(summary: dict[str, float]) -> str:
    if summary["seeds"] == 0:
        return ""
    if summary["seeds"] == 1:
        return f"{summary['mean']:.4g}"
    return f"{summary['mean']:.4g} [{summary['low']:.4g}, {summary['high']:.4g}]"


def experiment_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per cell of an experiment's ok rows: the identity columns that vary, the
    number of seeds, and each error as ``mean [low, high]``."""
    ok = frame[frame.status == "ok"]
    keys = [c for c in IDENTITY if c in ok and ok[c].nunique(dropna=False) > 1]
    keys = keys or ["method"]
    errors = [c for c in ERRORS if c in ok and ok[c].notna().any()]
    lines = []
    for key, group in ok.groupby(keys, dropna=False, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        line = {k: "none" if pd.isna(v) else v for k, v in zip(keys, values, strict=True)}
        line["seeds"] = len(group)
        for error in errors:
            line[error] = _formatted(mean_interval(group[error]))
        lines.append(line)
    return pd.DataFrame(lines)
