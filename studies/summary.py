"""Means over seeds with intervals, as Markdown tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import t as student


def mean_interval(values: pd.Series, level: float = 0.95) -> pd.Series:
    """Mean, its standard error, and the Student-t interval over seeds."""
    n = len(values)
    mean, se = values.mean(), values.std(ddof=1) / np.sqrt(n)
    half = student.ppf(0.5 + level / 2, n - 1) * se
    return pd.Series({"mean": mean, "se": se, "low": mean - half, "high": mean + half, "seeds": n})


def summarise(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """``mean_interval`` of ``value`` per group of ``by``."""
    table = frame.groupby(by)[value].apply(mean_interval).unstack().reset_index()
    return table.astype({"seeds": int})
