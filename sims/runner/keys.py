"""What identifies a row: a digest of everything that makes it.

A stored row is reused only where its key matches, and its key digests the cell and seed,
the profile's training and evaluation settings, the architecture's settings, the precision,
the device kind, and the version of the code that computes rows. That version is a digest of
the sources of ``sims`` rather than a number to bump by hand: a hand-kept version is
forgotten exactly when it matters, and the cost of the digest, retraining after an edit of
the code, is what a cache that cannot serve stale rows must pay. Two parts are left out of
it: the report, which computes no rows, and the declared experiments and profiles
(``sims.experiments``), every value of which that makes a row (the cell, the seed, the
training and evaluation settings) is in the row's key already; so declaring more seeds, or
another size, trains only the rows that are new.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path

import sims

ROW_FREE_PARTS = ("report", "experiments.py")  # parts of sims outside the code version


def digest(value) -> str:
    """A short stable hash of a JSON-able ``value`` (other objects by their ``str``)."""
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.cache
def code_version(root: Path = Path(sims.__file__).parent) -> str:
    """A digest of the sources under ``root`` (the ``sims`` package) but ``ROW_FREE_PARTS``."""
    sources = sorted(
        path for path in root.rglob("*.py") if path.relative_to(root).parts[0] not in ROW_FREE_PARTS
    )
    hashed = hashlib.sha1()
    for path in sources:
        hashed.update(str(path.relative_to(root)).encode())
        hashed.update(path.read_bytes())
    return hashed.hexdigest()[:16]


def plugin_version(spec: str) -> str:
    """A digest of the source of a plugin (``sims.generators.load_plugin``): the file, or
    the loaded module's file."""
    path = Path(spec)
    if path.suffix != ".py":
        path = Path(sys.modules[spec].__file__)
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]
