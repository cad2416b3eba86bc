"""Persistence of finished work: rows and pre-trained source models, each written atomically.

Every finished ensemble is one JSON file of its rows under ``rows/``, written to a temporary
name and renamed into place (``os.replace`` is atomic), so a run killed at any moment leaves
only whole files; a rerun reads them and skips their rows. Pre-trained source models are
kept the same way under ``pretrained/``. Where two files hold the same row (a run with
``--no-cache``), the later one wins.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from sims.methods import Fitted
from sims.runner.cells import Cell, digest

RowKey = tuple[str, int]  # (cell key, seed)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Store:
    """The rows and pre-trained models of one profile, under ``root``."""

    def __init__(self, root: Path):
        self.root = root

    def load_rows(self) -> dict[RowKey, dict]:
        """Every stored row by (cell key, seed); the latest file wins."""
        found: dict[RowKey, tuple[int, dict]] = {}
        for path in sorted((self.root / "rows").glob("*.json")):
            record = json.loads(path.read_text())
            for row in record["rows"]:
                key = (record["cell"], row["seed"])
                if key not in found or found[key][0] <= record["written"]:
                    found[key] = (record["written"], row)
        return {key: row for key, (_, row) in found.items()}

    def save_rows(self, cell: Cell, rows: list[dict]) -> None:
        """Persist the rows of one finished ensemble of ``cell``."""
        seeds = [row["seed"] for row in rows]
        record = {"cell": cell.key(), "written": time.time_ns(), "rows": rows}
        name = f"{cell.key()}-{digest(seeds)}.json"
        write_atomically(self.root / "rows" / name, json.dumps(record).encode())

    def _pretrained_path(self, cell: Cell, seeds: list[int]) -> Path:
        return self.root / "pretrained" / f"{digest([cell.pretraining_key(), seeds])}.pt"

    def load_pretrained(self, cell: Cell, seeds: list[int]) -> list[Fitted] | None:
        """The source models pre-trained for ``cell`` with ``seeds``, if stored."""
        path = self._pretrained_path(cell, seeds)
        if not path.exists():
            return None
        return torch.load(path, weights_only=False)

    def save_pretrained(self, cell: Cell, seeds: list[int], fitted: list[Fitted]) -> None:
        """Persist the source models pre-trained for ``cell`` with ``seeds``."""
        path = self._pretrained_path(cell, seeds)
        buffer = io.BytesIO()
        torch.save(fitted, buffer)
        write_atomically(path, buffer.getvalue())
