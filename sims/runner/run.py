"""The runner: plan the cells of the chosen experiments, run what is missing in parallel,
persist each finished ensemble, and assemble the rows.

Work runs in two waves: the pre-training of source models and every ensemble that needs
none, then the ensembles that start from a pre-trained model (``transfer``, ``finetune``).
Each cell's missing seeds form one ensemble (one task); pre-training covers the seeds of its
group still missing a row, so that more seeds declared pre-train only the new ones, and a
resumed run finds the source models it pre-trained and trains what an uninterrupted one does.
Parallelism is joblib's: ``loky`` processes on this machine, or ``dask`` on a distributed
cluster through joblib's Dask backend; the parent process alone writes to the store.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import joblib
import pandas as pd
from tqdm.auto import tqdm

from sims.experiments import get_experiment
from sims.runner.cells import Cell
from sims.runner.schedule import PRETRAIN, Task, Unit, schedule
from sims.runner.store import Store
from sims.runner.tasks import Settings, ensemble_task, pretrain_task
from sims.schema import CELL_COLUMN, CONTRACT_COLUMNS, INTEGER_COLUMNS


@dataclass
class Plan:
    """The cells of each experiment of a run, the seeds each experiment asks for, and
    per experiment the seeds of the models that take others."""

    cells: dict[str, list[Cell]]
    seeds: dict[str, list[int]]
    model_seeds: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    @classmethod
    def of(cls, cells: dict[str, list[Cell]], profile: str, seeds: int | None = None) -> Plan:
        """The plan of the experiments named in ``cells`` (their cells) with the seeds each
        asks for in ``profile``, each model's own included, or ``seeds`` for all where given."""
        experiments = [get_experiment(name) for name in cells]
        own = {} if seeds else {e.name: e.model_seeds.get(profile, {}) for e in experiments}
        return cls(
            cells,
            {e.name: list(range(seeds or e.seeds[profile])) for e in experiments},
            {name: {model: list(range(n)) for model, n in o.items()} for name, o in own.items()},
        )

    def seeds_of(self, name: str, cell: Cell) -> list[int]:
        """The seeds experiment ``name`` asks of ``cell``."""
        return self.model_seeds.get(name, {}).get(cell.model, self.seeds[name])

    def part(self, name: str) -> Plan:
        """The plan of experiment ``name`` alone."""
        own = {name: self.model_seeds.get(name, {})}
        return Plan({name: self.cells[name]}, {name: self.seeds[name]}, own)

    def seeds_of_cells(self) -> dict[Cell, list[int]]:
        """Every cell with the union of the seeds its experiments ask for."""
        found: dict[Cell, set[int]] = defaultdict(set)
        for name, cells in self.cells.items():
            for cell in cells:
                found[cell] |= set(self.seeds_of(name, cell))
        return {cell: sorted(seeds) for cell, seeds in found.items()}


LOKY_REPLACED_A_WORKER = "A worker stopped while some jobs were given to the executor"


@dataclass
class Backend:
    """Where tasks run: ``loky`` with ``jobs`` processes, or ``dask`` at ``scheduler``."""

    name: str = "loky"
    jobs: int = 1
    scheduler: str | None = None

    def run(self, tasks: list[tuple]) -> Iterator[tuple[int, object]]:
        """(index, result) of each ``(function, *arguments)`` task, as they finish."""
        calls = (joblib.delayed(_indexed)(i, task) for i, task in enumerate(tasks))
        if self.name == "dask":
            from dask.distributed import Client

            with Client(self.scheduler), joblib.parallel_config(backend="dask"):
                yield from joblib.Parallel(n_jobs=-1, return_as="generator_unordered")(calls)
            return
        with warnings.catch_warnings():
            # loky replaces a worker whose memory grew by 300 MB after its first task (its guard
            # against leaks), as a large ensemble's memory kept by malloc for reuse makes it, and
            # warns where tasks wait; every task is whole in itself, so no row changes
            warnings.filterwarnings("ignore", LOKY_REPLACED_A_WORKER, UserWarning)
            yield from joblib.Parallel(n_jobs=self.jobs, return_as="generator_unordered")(calls)


def _indexed(index: int, task: tuple) -> tuple[int, object]:
    function, *arguments = task
    return index, function(*arguments)


@dataclass
class Summary:
    """What a run did: tasks run, rows produced now and how many of them failed."""

    tasks: int = 0
    new_rows: int = 0
    failed: int = 0


def execute(
    plan: Plan,
    store: Store,
    settings: Settings,
    backend: Backend,
    use_cache: bool = True,
    progress: bool = True,
    finished: Callable[[str], None] | None = None,
) -> Summary:
    """Run every missing (cell, seed) of ``plan`` in the order of ``sims.runner.schedule``,
    persisting each ensemble as it finishes; ``finished(name)`` is called once experiment
    ``name`` has all its rows (at once where it has nothing to train)."""
    stored = store.load_rows() if use_cache else {}
    wanted = plan.seeds_of_cells()
    missing = {}
    for cell, seeds in wanted.items():
        key = settings.key(cell)
        if left := [s for s in seeds if (key, s) not in stored]:
            missing[cell] = left
    group_seeds: dict[tuple, set[int]] = defaultdict(set)
    for cell, seeds in missing.items():
        if cell.pretrained:
            group_seeds[cell.pretraining_key()] |= set(seeds)

    def source_seeds(cell: Cell) -> list[int]:
        return sorted(group_seeds[cell.pretraining_key()])

    def source_name(cell: Cell) -> str:
        return settings.pretraining_name(cell, source_seeds(cell))

    pretrained = store.load_pretrained() if use_cache else {}
    to_pretrain = {
        source_name(cell): (cell, source_seeds(cell))
        for cell in missing
        if cell.pretrained and source_name(cell) not in pretrained
    }
    plan_of_run = schedule(plan.cells, missing, dict(to_pretrain.values()))
    tasks = plan_of_run.tasks()
    summary = Summary(tasks=len(tasks))
    models = sum(task.models() for task in tasks)
    steps = settings.profile.training.max_steps
    trained = 0
    # the bar counts estimated work, so that its ETA does not take cheap early ensembles
    # (thousands of closed-form fits) for the pace of the networks
    bar = tqdm(
        total=sum(task.work(steps) for task in tasks),
        desc="work",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
        disable=not progress,
    )
    waiting = {name: set(indices) for name, indices in plan_of_run.waits.items()}

    def done(index: int) -> None:
        for name, indices in waiting.items():
            if index in indices:
                indices.discard(index)
                if not indices and finished:
                    finished(name)

    def record(task: Task, result: list[list]) -> None:
        nonlocal trained
        if task.kind == PRETRAIN:
            fitted = {source_name(cell): f for (cell, _), f in zip(task.unit, result, strict=True)}
            store.save_pretrained(fitted)
            pretrained.update(fitted)
        else:
            rows = [
                {CELL_COLUMN: settings.key(cell)} | row
                for (cell, _), cell_rows in zip(task.unit, result, strict=True)
                for row in cell_rows
            ]
            store.save_rows(rows)
            summary.new_rows += len(rows)
            summary.failed += sum(row["status"] == "failed" for row in rows)
        trained += task.models()
        bar.set_postfix_str(f"{trained}/{models} models, {summary.failed} failed", refresh=False)
        bar.update(task.work(steps))

    def sources(unit: Unit) -> list[list[dict]] | None:
        if not unit[0][0].pretrained:
            return None
        found = []
        for cell, seeds in unit:
            by_seed = dict(zip(source_seeds(cell), pretrained[source_name(cell)], strict=True))
            found.append([by_seed[s] for s in seeds])
        return found

    def call(task: Task) -> tuple:
        if task.kind == PRETRAIN:
            return (pretrain_task, task.unit, settings)
        return (ensemble_task, task.unit, settings, sources(task.unit))

    for name, indices in waiting.items():
        if not indices and finished:
            finished(name)
    with bar:
        offset = 0
        for wave in plan_of_run.waves:
            for index, result in backend.run([call(task) for task in wave]):
                record(wave[index], result)
                done(offset + index)
            offset += len(wave)
    return summary


def assemble(plan: Plan, store: Store, settings: Settings) -> pd.DataFrame:
    """The rows of ``plan`` made under ``settings`` found in ``store``: one per (experiment,
    cell, seed), contract columns first; model samples (where kept) in the ``samples``
    column."""
    stored = store.load_rows()
    rows = []
    for name, cells in plan.cells.items():
        for cell in cells:
            key = settings.key(cell)
            for seed in plan.seeds_of(name, cell):
                row = stored.get((key, seed))
                if row is not None:
                    rows.append({"experiment": name} | cell.columns() | row)
    frame = pd.DataFrame(rows)
    for column in CONTRACT_COLUMNS:
        if column not in frame:
            frame[column] = float("nan")
    for column in INTEGER_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("Int64")  # integers, empty where unset
    rest = [c for c in frame.columns if c not in CONTRACT_COLUMNS]
    return frame[CONTRACT_COLUMNS + rest]
