"""Persistence of finished work: rows and pre-trained source models, each written atomically.

Every finished ensemble is one JSON file of its rows under ``rows/``, written to a temporary
name and renamed into place (``os.replace`` is atomic), so a run killed at any moment leaves
only whole files; a rerun reads them and skips their rows. Each row names its key
(``sims.runner.tasks.Settings.key``), which changes with anything that makes the row, so a
row made under other settings or by other code is never served. Pre-trained source models
are kept the same way under ``pretrained/``, as weights and plain data
(``sims.runner.tasks.stored``) that load with ``weights_only=True``. Where two files hold
the same row (a run with ``--no-cache``), the later one wins.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import torch

from sims.files import write_atomically
from sims.runner.keys import digest
from sims.schema import CELL_COLUMN

RowKey = tuple[str, int]  # (row key of the cell, seed)


class Store:
    """The rows and pre-trained models of runs into one folder, under ``root``.

    A unit of work (one ensemble) is persisted as one file, whole or not at all, so that a
    resumed run retrains exactly the units an uninterrupted run would have trained.
    """

    def __init__(self, root: Path):
        self.root = root

    def load_rows(self) -> dict[RowKey, dict]:
        """Every stored row by (its ``cell`` key, seed); the latest file wins."""
        found: dict[RowKey, tuple[int, dict]] = {}
        for path in sorted((self.root / "rows").glob("*.json")):
            record = json.loads(path.read_text())
            for row in record["rows"]:
                key = (row[CELL_COLUMN], row["seed"])
                if key not in found or found[key][0] <= record["written"]:
                    found[key] = (record["written"], row)
        return {key: row for key, (_, row) in found.items()}

    def save_rows(self, rows: list[dict]) -> None:
        """Persist the rows of one finished unit; each row names its ``cell`` key."""
        record = {"written": time.time_ns(), "rows": rows}
        name = digest([(row[CELL_COLUMN], row["seed"]) for row in rows])
        write_atomically(self.root / "rows" / f"{name}.json", json.dumps(record).encode())

    def load_pretrained(self) -> dict[str, list[dict]]:
        """Every stored set of pre-trained source models (``stored`` records), by
        ``Settings.pretraining_name``."""
        found = {}
        for path in sorted((self.root / "pretrained").glob("*.pt")):
            found |= torch.load(path, weights_only=True)
        return found

    def save_pretrained(self, models: dict[str, list[dict]]) -> None:
        """Persist the source models of one finished pre-training unit."""
        buffer = io.BytesIO()
        torch.save(models, buffer)
        path = self.root / "pretrained" / f"{digest(sorted(models))}.pt"
        write_atomically(path, buffer.getvalue())
