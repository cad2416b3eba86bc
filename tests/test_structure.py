"""The package's structure: no two of its parts import each other; the run's outputs stay out
of git; the documents' links resolve."""

from __future__ import annotations

import ast
import itertools
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sims", "theory")


def part(module: str) -> str | None:
    """The part a module belongs to: ``sims.models.flows`` -> ``sims.models``."""
    names = module.split(".")
    if names[0] not in PACKAGES:
        return None
    return ".".join(names[:2])


def imports_between_parts(root: Path = ROOT) -> dict[str, set[str]]:
    """For each part of the packages, the other parts its modules import (anywhere in them)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            names = path.relative_to(root).with_suffix("").parts
            importer = part(".".join(n for n in names if n != "__init__"))
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                for module in modules:
                    imported = part(module)
                    if imported and imported != importer:
                        graph[importer].add(imported)
    return graph


def mutual_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [
        (a, b)
        for a, b in itertools.combinations(sorted(graph), 2)
        if b in graph[a] and a in graph[b]
    ]


def test_no_two_parts_import_each_other():
    graph = imports_between_parts()
    assert {"sims.models", "sims.engine", "sims.report", "sims.runner"} <= set(graph)
    assert mutual_imports(graph) == []


def test_a_part_importing_one_that_imports_it_back_is_found(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "sims" / "engine.py").write_text("from sims.models.base import TrainedModel\n")
    (tmp_path / "sims" / "models").mkdir()
    (tmp_path / "sims" / "models" / "base.py").write_text("from sims.engine import Dataset\n")
    assert mutual_imports(imports_between_parts(tmp_path)) == [("sims.engine", "sims.models")]


def git(*arguments: str) -> str:
    """What ``git ARGUMENTS`` prints in the repository; skips the test outside a checkout."""
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True).stdout


def test_a_default_runs_outputs_are_ignored_by_git():
    """``python run_all.py`` writes into the working tree: none of it shows in git status."""
    outputs = [
        "results/results.csv",
        "results/experiments/calibration.csv",
        "results/cache/rows/0123.json",
        "figures/calibration.png",
        "figures/calibration.pdf",
        "reference/results/cache/rows/0123.json",
        "reference/score_networks_24_seeds/results/cache/rows/0123.json",
    ]
    assert git("check-ignore", *outputs).split() == outputs


def broken_links(files: list[Path]) -> list[str]:
    """``FILE: TARGET`` for each relative Markdown link in ``files`` whose target is absent."""
    found = []
    for path in files:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target and not (path.parent / target).exists():
                found.append(f"{path.name}: {target}")
    return found


def test_every_relative_link_of_the_documents_resolves(tmp_path):
    documents = [ROOT / name for name in git("ls-files", "*.md").split()]
    assert len(documents) >= 5 and broken_links(documents) == []
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "running.md").write_text("")
    planted = tmp_path / "docs" / "results.md"
    planted.write_text("[ok](running.md), [broken](docs/running.md), [web](https://x.org/a)")
    assert broken_links([planted]) == ["results.md: docs/running.md"]
