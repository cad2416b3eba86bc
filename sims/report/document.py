"""``results/report.md``: every figure and table of a run, one sentence each, and the checks."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sims.experiments import Experiment


def _link(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def write_report(
    path: Path,
    experiments: list[Experiment],
    figures: dict[str, list[Path] | str],
    tables: dict[str, list[Path]],
    checks: pd.DataFrame,
    summary: str,
    frame: pd.DataFrame,
) -> None:
    """Write the report to ``path``: per experiment its description, figure links (or why
    there is no figure: a string) and table links; then the one-line ``summary`` of the
    must-hold checks, the checks table and the failed rows."""
    base = path.parent
    failed = frame[frame.status == "failed"]
    lines = [
        "# Results",
        "",
        f"{len(frame)} trained models, {len(failed)} failed. Every figure shows means over "
        "seeds with 95 % Student-t intervals; `results.csv` has one row per model.",
        "",
    ]
    for experiment in experiments:
        lines += [f"## {experiment.name}", "", experiment.description, ""]
        figure = figures.get(experiment.name)
        if isinstance(figure, str):
            lines += [figure, ""]
        elif figure is not None:
            png, pdf = figure
            lines += [
                f"![{experiment.name}]({_link(png, base)})",
                "",
                f"[PDF]({_link(pdf, base)})",
                "",
            ]
        if experiment.name in tables:
            markdown, latex = tables[experiment.name]
            lines += [
                f"Table: [{markdown.name}]({_link(markdown, base)}) "
                f"([LaTeX]({_link(latex, base)})): each cell's errors, mean [95 % interval].",
            ]
        lines.append("")
    lines += [
        "## Checks",
        "",
        f"{summary}. A statistical check is not assessable when its noise cannot be "
        "estimated (a single seed has no standard error and no bootstrap interval); it neither "
        "passes nor fails the run. Candidate slopes are reported beside their candidates and "
        "never fail a run ([checks.md](tables/checks.md), [slopes.md](tables/slopes.md)).",
        "",
        checks.to_markdown(index=False, floatfmt=".4g"),
        "",
    ]
    if not failed.empty:
        reasons = failed.error.value_counts().rename_axis("reason").reset_index(name="rows")
        lines += ["## Failed models", "", reasons.to_markdown(index=False), ""]
    path.write_text("\n".join(lines))
