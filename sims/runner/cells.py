"""Cells: one point of an experiment's grid, and the expansion of grids into cells.

A cell fixes the truth (family and knobs), the model, the method and the sample sizes; its
rows are its seeds. Methods that use no source samples (``scratch``, ``oracle``) do not
depend on ``n_source`` or ``similarity`` (the similarity knob changes only the source), so
their cells leave both unset: a cell that appears in several experiments is trained once.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from sims.experiments import Experiment
from sims.generators import families, family_knobs, make_task_pair
from sims.methods import METHODS
from sims.models.architectures import ARCHITECTURES, check_family
from sims.runner.keys import digest
from sims.validation import check_choice, check_positive_int, check_seed

SOURCE_KNOBS = ("similarity",)
CELL_KEYS = ("model", "method", "family", "n_target", "n_source", "truth_seed", "keep_samples")


def grid_keys() -> list[str]:
    """Every key a grid (and ``--set``) accepts: the cell keys and every family's knobs."""
    knobs = {k for f in families() for k in family_knobs(f) if k != "seed"}
    return sorted(set(CELL_KEYS) | knobs)


@dataclass(frozen=True)
class Cell:
    """One trained configuration; its rows are its seeds.

    Attributes:
        knobs: the family's knobs as sorted (name, value) pairs, ``seed`` the truth's seed.
        n_source: source samples (``None`` for methods that use none).
        keep_samples: model samples kept for the samples figure (0: none).
    """

    model: str
    method: str
    family: str
    n_target: int
    n_source: int | None
    knobs: tuple[tuple[str, object], ...]
    keep_samples: int = 0

    @property
    def uses_source(self) -> bool:
        return METHODS[self.method].uses_source

    @property
    def pretrained(self) -> bool:
        """Whether the method starts from a model pre-trained on the source."""
        return METHODS[self.method].pretrained

    def pair_knobs(self) -> dict[str, object]:
        return dict(self.knobs)

    def key(self) -> str:
        """A short stable hash of the cell (``sims.runner.tasks.Settings.key`` adds what
        else makes its rows)."""
        return digest(asdict(self))

    def rows(self) -> int:
        """The samples its method trains on: n_t, and n_s too where it pools them."""
        return self.n_target + (self.n_source if self.method == "pooled" else 0)

    def pretraining_key(self) -> tuple:
        """What the pre-trained source model depends on."""
        return (self.model, self.family, self.knobs, self.n_source)

    def _knobs_but(self, *names: str) -> tuple:
        return tuple((k, v) for k, v in self.knobs if k not in names)

    def batch_key(self) -> tuple:
        """Cells with one key share an architecture and a method: one ensemble trains them
        all (they differ in sample sizes, similarity, kept samples and seeds)."""
        return (self.model, self.method, self.family, self._knobs_but(*SOURCE_KNOBS))

    def pretraining_batch_key(self) -> tuple:
        """Source models with one key are pre-trained as one ensemble."""
        return (self.model, self.family, self._knobs_but(*SOURCE_KNOBS))

    def columns(self) -> dict[str, object]:
        """The cell's columns of a results row: truth seed as ``truth_seed``, knobs by name."""
        knobs = self.pair_knobs()
        columns = {
            "model": self.model,
            "method": self.method,
            "family": self.family,
            "n_source": self.n_source,
            "n_target": self.n_target,
            "truth_seed": knobs.pop("seed", None),
        }
        return columns | knobs


def _cell(point: dict) -> Cell:
    """The cell of one grid point (its keys checked)."""
    family = check_choice("family", point["family"], families())
    model = check_choice("model", point["model"], list(ARCHITECTURES))
    method = check_choice("method", point["method"], list(METHODS))
    check_family(ARCHITECTURES[model], family)
    n_target = check_positive_int("n_target", point["n_target"])
    n_source = point.get("n_source")
    uses_source = METHODS[method].uses_source
    if n_source is not None:
        check_positive_int("n_source", n_source)
    elif uses_source:
        raise ValueError(f"method={method!r} needs n_source: expected an integer >= 1")
    allowed = family_knobs(family)
    knobs = {k: v for k, v in point.items() if k in allowed and k != "seed"}
    if not uses_source:
        knobs = {k: v for k, v in knobs.items() if k not in SOURCE_KNOBS}
    if "seed" in allowed:  # a family without a seed knob has one fixed truth
        knobs["seed"] = check_seed(point.get("truth_seed", 0))
    make_task_pair(family, **knobs)  # raises ValueError on a bad knob
    return Cell(
        model,
        method,
        family,
        n_target,
        n_source if uses_source else None,
        tuple(sorted(knobs.items())),
        check_seed(point.get("keep_samples", 0)),
    )


def expand(experiment: Experiment, profile: str, overrides: dict[str, tuple]) -> list[Cell]:
    """The cells of ``experiment`` under ``profile``, with ``overrides`` (``--set``)
    replacing grid keys; in grid order, without duplicates.

    Raises:
        ValueError: an unknown key or a value outside what is allowed.
    """
    unknown = sorted(set(overrides) - set(grid_keys()))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}: expected one of {grid_keys()}")
    cells: dict[Cell, None] = {}
    for grid in experiment.grids(profile):
        grid = grid | overrides
        names = list(grid)
        for values in itertools.product(*(grid[n] for n in names)):
            cells[_cell(dict(zip(names, values, strict=True)))] = None
    return list(cells)


def parse_override(text: str) -> tuple[str, tuple]:
    """``KEY=V1,V2,...`` as (key, values): integers, then floats, else strings.

    Raises:
        ValueError: not of the form KEY=V1,...
    """
    key, sign, values = text.partition("=")
    if not sign or not key or not values:
        raise ValueError(f"--set {text!r} is not allowed: expected KEY=V1,V2,...")
    return key.strip(), tuple(_value(v.strip()) for v in values.split(","))


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
