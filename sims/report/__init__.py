"""The outputs of a run: ``results/`` (rows, slopes, checks, tables, report) and
``figures/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sims.experiments import get_experiment
from sims.report.document import write_report
from sims.report.figures import MissingRows, render
from sims.report.tables import experiment_table, write_table
from sims.runner.run import SAMPLE_COLUMN, Plan
from sims.runner.store import write_atomically
from theory import checks as theory_checks
from theory.verdict import judge


@dataclass(frozen=True)
class Verdict:
    """The checks of a run as printable text, the one-line summary of the must-hold checks
    (``theory.checks.summary``), and how many of them failed."""

    table: str
    summary: str
    failures: int


def write_outputs(frame: pd.DataFrame, plan: Plan, out: Path) -> Verdict:
    """Write every output of a run under ``out``; returns the verdict of the checks."""
    results, figures_dir = out / "results", out / "figures"
    tables_dir = results / "tables"
    rows = frame.drop(columns=[SAMPLE_COLUMN], errors="ignore")
    write_atomically(results / "results.csv", rows.to_csv(index=False).encode())
    found, slopes = judge(rows)
    slopes.to_csv(results / "slopes.csv", index=False)
    theory_checks.write(found, results / "checks.csv")
    check_table, summary = theory_checks.table(found), theory_checks.summary(found)
    write_table(check_table, tables_dir, "checks", lead=f"{summary}.")
    write_table(slopes, tables_dir, "slopes")
    experiments = [get_experiment(name) for name in plan.cells]
    figures, tables = {}, {}
    for experiment in experiments:
        subset = frame[frame.experiment == experiment.name]
        if (subset.status == "ok").any():
            try:
                figures[experiment.name] = render(experiment, subset, slopes, figures_dir)
            except MissingRows as reason:
                figures[experiment.name] = f"No figure: {reason}."
            table = experiment_table(subset)
            tables[experiment.name] = write_table(table, tables_dir, experiment.name)
    write_report(results / "report.md", experiments, figures, tables, check_table, summary, rows)
    text = check_table[["name", "kind", "figure", "limit", "verdict"]].to_string(index=False)
    return Verdict(text, summary, len(theory_checks.failed(found)))
