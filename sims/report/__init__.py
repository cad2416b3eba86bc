"""The outputs of a run: ``results/`` (rows, slopes, checks, tables, report) and
``figures/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sims.experiments import get_experiment
from sims.files import write_atomically
from sims.report.document import write_report
from sims.report.figures import MissingRows, render
from sims.report.tables import experiment_table
from sims.schema import SAMPLE_COLUMN
from sims.tabular import write_table
from theory.verdict import Verdict, judge, write_verdict


def write_experiment(
    frame: pd.DataFrame, name: str, out: Path, slopes: pd.DataFrame | None = None
) -> tuple[str | list[Path], list[Path]] | None:
    """Write experiment ``name``'s rows of ``frame`` to ``out/results/experiments/NAME.csv``,
    its table to ``out/results/tables/`` and its figure to ``out/figures/`` (with the fitted
    ``slopes`` where given). Returns (the figure's paths, or why there is none; the table's
    paths), or ``None`` where it has no ok row."""
    subset = frame[frame.experiment == name]
    rows = subset.drop(columns=[SAMPLE_COLUMN], errors="ignore")
    path = out / "results" / "experiments" / f"{name}.csv"
    write_atomically(path, rows.to_csv(index=False).encode())
    if not (subset.status == "ok").any():
        return None
    try:
        figure = render(
            get_experiment(name),
            subset,
            pd.DataFrame() if slopes is None else slopes,
            out / "figures",
        )
    except MissingRows as reason:
        figure = f"No figure: {reason}."
    return figure, write_table(experiment_table(subset), out / "results" / "tables", name)


def write_outputs(frame: pd.DataFrame, experiments: list[str], out: Path) -> Verdict:
    """Write every output of a run of ``experiments`` (names) under ``out``; returns the
    verdict on its rows."""
    results = out / "results"
    rows = frame.drop(columns=[SAMPLE_COLUMN], errors="ignore")
    write_atomically(results / "results.csv", rows.to_csv(index=False).encode())
    verdict = judge(rows)
    write_verdict(verdict, results)
    figures, tables = {}, {}
    for name in experiments:
        written = write_experiment(frame, name, out, verdict.slopes)
        if written is not None:
            figures[name], tables[name] = written
    declared = [get_experiment(name) for name in experiments]
    write_report(results / "report.md", declared, figures, tables, verdict, rows)
    return verdict
