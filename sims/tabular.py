"""Tables written as Markdown and LaTeX side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_table(table: pd.DataFrame, directory: Path, name: str, lead: str = "") -> list[Path]:
    """``name.md`` (after the paragraph ``lead``, where given) and ``name.tex`` under
    ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown, latex = directory / f"{name}.md", directory / f"{name}.tex"
    opening = f"{lead}\n\n" if lead else ""
    markdown.write_text(opening + table.to_markdown(index=False, floatfmt=".4g") + "\n")
    latex.write_text(table.to_latex(index=False, float_format="%.4g", na_rep=""))
    return [markdown, latex]
