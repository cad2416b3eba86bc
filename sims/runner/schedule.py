"""The schedule of a run: which ensembles to train, grouped into waves, in which order, and
which of them each experiment waits on. Pure: it trains nothing, so it is tested alone and
the memory benchmark can take its ensembles.

Cells that share an architecture and a method form one ensemble (``Cell.batch_key``), split
where their sizes differ more than ``MAX_SIZE_RATIO``. The first wave pre-trains source
models and trains every ensemble that needs none; the second trains the ensembles that
start from a pre-trained model. Within a wave, ensembles go in the order of the first
experiment that needs them (the experiments' order in the plan), the largest first within an
experiment, so that the first experiments finish early and their outputs appear while the
rest train, and the small ensembles of the last experiment fill the end of the wave.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sims.models.architectures import ARCHITECTURES
from sims.runner.cells import Cell

Unit = list[tuple[Cell, list[int]]]  # cells trained together, each with its seeds
# an ensemble pads every member's rows to its largest member's: cells whose sizes differ more
# than this train in separate ensembles, so that padding costs at most this factor
MAX_SIZE_RATIO = 16
PRETRAIN, TRAIN = "pretrain", "train"
# a network member's work per Adam step it may take, in full-batch fits: the quick run spends
# 1.4 s per flow and 1.8 s per score network (up to 1000 steps), 0.02 s per linear-Gaussian fit
NETWORK_STEP_WORK = 0.1


@dataclass(frozen=True)
class Task:
    """One ensemble: pre-train the source models of ``unit``'s cells (``PRETRAIN``), or
    train and evaluate its cells (``TRAIN``)."""

    kind: str
    unit: Unit

    def models(self) -> int:
        """How many models it trains."""
        return sum(len(seeds) for _, seeds in self.unit)

    def rows(self) -> int:
        """The training rows of all its models: source rows where it pre-trains."""
        size = _source_rows if self.kind == PRETRAIN else Cell.rows
        return sum(len(seeds) * size(cell) for cell, seeds in self.unit)

    def work(self, max_steps: int) -> float:
        """Its estimated work, in full-batch fits: a network member trained for up to
        ``max_steps`` Adam steps counts ``NETWORK_STEP_WORK * max_steps`` of them."""
        if ARCHITECTURES[self.unit[0][0].model].full_batch:
            return float(self.models())
        return NETWORK_STEP_WORK * max_steps * self.models()


@dataclass(frozen=True)
class Schedule:
    """``waves`` of tasks, each run after the one before; ``waits[name]``: the positions
    (in the waves' order, counted across waves) of the tasks experiment ``name`` waits on."""

    waves: list[list[Task]]
    waits: dict[str, set[int]]

    def tasks(self) -> list[Task]:
        return [task for wave in self.waves for task in wave]


def _source_rows(cell: Cell) -> int:
    """The rows a source model of ``cell`` is pre-trained on."""
    return cell.n_source


def units(work: Unit, key: Callable[[Cell], tuple], size: Callable[[Cell], int]) -> list[Unit]:
    """``work`` grouped by ``key(cell)`` into units trained as one ensemble, each split
    where ``size(cell)`` (its training rows) spans more than ``MAX_SIZE_RATIO``."""
    groups: dict[tuple, Unit] = defaultdict(list)
    for cell, seeds in work:
        groups[key(cell)].append((cell, seeds))
    found = []
    for group in groups.values():
        unit: Unit = []
        for cell, seeds in sorted(group, key=lambda item: size(item[0])):
            if unit and size(cell) > MAX_SIZE_RATIO * size(unit[0][0]):
                found.append(unit)
                unit = []
            unit.append((cell, seeds))
        found.append(unit)
    return found


def schedule(
    experiments: dict[str, list[Cell]],
    missing: dict[Cell, list[int]],
    to_pretrain: dict[Cell, list[int]],
) -> Schedule:
    """The schedule of the ``missing`` seeds of each cell and of the source models
    ``to_pretrain`` (one representative cell of each source with the seeds to pre-train),
    for ``experiments`` (name -> cells, in the order they should finish)."""
    rank: dict[Cell, int] = {}
    for position, cells in enumerate(experiments.values()):
        for cell in cells:
            rank.setdefault(cell, position)
    source_rank: dict[tuple, int] = {}
    for cell in missing:
        if cell.pretrained:
            key = cell.pretraining_key()
            source_rank[key] = min(source_rank.get(key, len(rank)), rank[cell])

    def position(task: Task) -> tuple[int, int]:
        """The first experiment that needs ``task``, then the largest first."""
        if task.kind == PRETRAIN:
            first = min(source_rank[cell.pretraining_key()] for cell, _ in task.unit)
        else:
            first = min(rank[cell] for cell, _ in task.unit)
        return first, -task.rows()

    sources = units(list(to_pretrain.items()), Cell.pretraining_batch_key, _source_rows)
    plain = [(c, s) for c, s in missing.items() if not c.pretrained]
    started = [(c, s) for c, s in missing.items() if c.pretrained]
    first = [Task(PRETRAIN, u) for u in sources]
    first += [Task(TRAIN, u) for u in units(plain, Cell.batch_key, Cell.rows)]
    second = [Task(TRAIN, u) for u in units(started, Cell.batch_key, Cell.rows)]
    waves = [sorted(wave, key=position) for wave in (first, second) if wave]
    waits: dict[str, set[int]] = {name: set() for name in experiments}
    members = {name: set(cells) for name, cells in experiments.items()}
    for index, task in enumerate(t for wave in waves for t in wave):
        if task.kind != TRAIN:
            continue
        for name, cells in members.items():
            if any(cell in cells for cell, _ in task.unit):
                waits[name].add(index)
    return Schedule(waves, waits)
