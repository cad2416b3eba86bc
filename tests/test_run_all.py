"""The entry point runs from a shell."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_run_all_runs_and_names_the_families():
    result = subprocess.run(
        [sys.executable, "run_all.py"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "linear_gaussian" in result.stdout
