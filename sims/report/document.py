"""``results/report.md``: every figure and table of a run, with what the run found under
each figure (its checks, claims and fitted exponents in numbers), then the verdict: the
must-hold checks with their power, the claims and the candidate exponents."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from sims.experiments import Experiment
from sims.report.tables import seed_counts
from theory.checks import CANDIDATE, CLAIM, MUST_HOLD, Check
from theory.verdict import Verdict

KIND_WORDS = {MUST_HOLD: "must hold", CLAIM: "claim", CANDIDATE: "candidate exponent"}


def _link(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _figure(value: float) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4g}"
    )


def finding(check: Check) -> str:
    """One check as a line of the report: kind, name, verdict, figure and why."""
    line = (
        f"- *{KIND_WORDS[check.kind]}* {check.name}: **{check.verdict}** ({_figure(check.figure)}"
    )
    line += f"; {check.detail})" if check.detail else ")"
    if check.power:
        line += f"; detects {check.power}"
    return line


def findings(experiment: str, checks: list[Check], everywhere: set[str]) -> list[str]:
    """The lines of the checks that judged rows of ``experiment``, must-hold first, but for
    those that judged the rows of all the run's experiments (``everywhere``), which the
    verdict lists once."""
    mine = [
        c
        for c in checks
        if experiment in c.experiments.split(",")
        and not (len(everywhere) > 1 and set(c.experiments.split(",")) >= everywhere)
    ]
    order = {MUST_HOLD: 0, CLAIM: 1, CANDIDATE: 2}
    return [finding(c) for c in sorted(mine, key=lambda c: order[c.kind])]


def _section(title: str, lead: str, table: pd.DataFrame) -> list[str]:
    """A section of the verdict: its title, a paragraph and its table, or a line saying
    that nothing of its kind applies."""
    body = (
        [lead, "", table.to_markdown(index=False, floatfmt=".4g")]
        if not table.empty
        else ["Nothing of this kind applies to these rows."]
    )
    return [f"## {title}", "", *body, ""]


def _listed(values) -> str:
    """Distinct values in order: names all, numbers as ``%g`` (more than 3 as first … last)."""
    found = sorted(set(values))
    if found and not isinstance(found[0], str):
        words = [f"{v:g}" for v in found]
        return f"{words[0]} … {words[-1]}" if len(words) > 3 else ", ".join(words)
    return ", ".join(found)


def contents(rows: pd.DataFrame) -> str:
    """What an experiment's rows hold, in one sentence: models, methods, families with
    their dimensions, sample sizes and seeds."""
    if rows.empty:
        return "This run has no rows of it."
    parts = [
        f"models {_listed(rows.model)}",
        f"methods {_listed(rows.method)}",
        f"families {_listed(rows.family)}",
    ]
    for column, name in (("d_x", "d_x"), ("d_z", "d_z"), ("d_h", "d_h")):
        if column in rows and rows[column].notna().any():
            parts.append(f"{name} {_listed(rows[column].dropna().astype(int))}")
    parts.append(f"n_t {_listed(rows.n_target.astype(int))}")
    if rows.n_source.notna().any():
        parts.append(f"n_s {_listed(rows.n_source.dropna().astype(int))}")
    parts.append(seed_counts(rows))
    return "Rows of this run: " + "; ".join(parts) + "."


def write_report(
    path: Path,
    experiments: list[Experiment],
    figures: dict[str, list[Path] | str],
    tables: dict[str, list[Path]],
    verdict: Verdict,
    frame: pd.DataFrame,
) -> None:
    """Write the report to ``path``: per experiment its description, figure (or why there is
    none: a string), table links and this run's findings; then the verdict's tables and the
    failed rows."""
    base = path.parent
    failed = frame[frame.status == "failed"]
    lines = [
        "# Results",
        "",
        f"{len(frame)} trained models, {len(failed)} failed. Every figure shows means over "
        "seeds with 95 % Student-t intervals; `results.csv` has one row per model.",
        "",
        f"**Verdict: {verdict.summary}.** Must-hold checks are classical results and this "
        "suite's formalization (a failure is a bug or a wrong claim); claims are the "
        "framework's directional statements; candidate exponents are measured beside their "
        "candidates. Neither of the last two fails a run.",
        "",
    ]
    for experiment in experiments:
        rows = frame[frame.experiment == experiment.name]
        lines += [f"## {experiment.name}", "", experiment.description, "", contents(rows), ""]
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
                "",
            ]
        found = findings(experiment.name, verdict.checks, {e.name for e in experiments})
        lines += (
            ["What this run found:", "", *found, ""]
            if found
            else [
                "No check, claim or candidate exponent applies to these rows.",
                "",
            ]
        )
    lines += _section(
        "Must-hold checks and their power",
        f"{verdict.summary}. A statistical check needs 5 seeds; with fewer, or with no rows "
        "to judge, it is not assessable and neither passes nor fails. Each check's power is "
        "measured on this run's own rows: the smallest planted error of each kind that makes "
        "it fail ([checks.md](tables/checks.md), [power.md](tables/power.md)).",
        verdict.of_kind(MUST_HOLD)[["name", "figure", "limit", "verdict", "power"]],
    )
    lines += _section(
        "Claims",
        "Seed-paired 95 % intervals; pass when the interval lies on the claim's side of 0, "
        "fail when on the other ([claims.md](tables/claims.md)).",
        verdict.of_kind(CLAIM)[["name", "figure", "verdict", "detail"]],
    )
    lines += _section(
        "Candidate exponents",
        "Fitted exponents (95 % intervals over seeds) beside their candidates "
        "([slopes.md](tables/slopes.md)).",
        verdict.of_kind(CANDIDATE)[["name", "figure", "limit", "verdict", "detail"]],
    )
    if not failed.empty:
        reasons = failed.error.value_counts().rename_axis("reason").reset_index(name="rows")
        lines += ["## Failed models", "", reasons.to_markdown(index=False), ""]
    path.write_text("\n".join(lines))
