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


def write_outputs(frame: pd.DataFrame, experiments: list[str], out: Path) -> Verdict:
    """Write every output of a run of ``experiments`` (names) under ``out``; returns the
    verdict on its rows."""
    results, figures_dir = out / "results", out / "figures"
    tables_dir = results / "tables"
    rows = frame.drop(columns=[SAMPLE_COLUMN], errors="ignore")
    write_atomically(results / "results.csv", rows.to_csv(index=False).encode())
    verdict = judge(rows)
    write_verdict(verdict, results)
    slopes = verdict.slopes
    declared = [get_experiment(name) for name in experiments]
    figures, tables = {}, {}
    for experiment in declared:
        subset = frame[frame.experiment == experiment.name]
        if (subset.status == "ok").any():
            try:
                figures[experiment.name] = render(experiment, subset, slopes, figures_dir)
            except MissingRows as reason:
                figures[experiment.name] = f"No figure: {reason}."
            table = experiment_table(subset)
            tables[experiment.name] = write_table(table, tables_dir, experiment.name)
    write_report(results / "report.md", declared, figures, tables, verdict, rows)
    return verdict
