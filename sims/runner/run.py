"""The runner: plan the cells of the chosen experiments, run what is missing in parallel,
persist each finished ensemble, and assemble the rows.

Work runs in two waves: the pre-training of source models and every ensemble that needs
none, then the ensembles that start from a pre-trained model (``transfer``, ``finetune``).
Each cell's missing seeds form one ensemble (one task); pre-training covers every seed the
run asks of its group, so that a resumed run trains exactly what an uninterrupted one does.
Parallelism is joblib's: ``loky`` processes on this machine, or ``dask`` on a distributed
cluster through joblib's Dask backend; the parent process alone writes to the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import joblib
import pandas as pd
from tqdm.auto import tqdm

from sims.runner.cells import Cell
from sims.runner.store import Store
from sims.runner.tasks import Settings, ensemble_task, pretrain_task

CONTRACT_COLUMNS = [
    "experiment",
    "model",
    "method",
    "family",
    "n_source",
    "n_target",
    "d_x",
    "d_z",
    "d_h",
    "similarity",
    "beta",
    "seed",
    "kl",
    "kl_se",
    "tv",
    "status",
    "error",
    "seconds",
]
SAMPLE_COLUMN = "samples"


@dataclass
class Plan:
    """The cells of each experiment of a run, and the seeds each experiment asks for."""

    cells: dict[str, list[Cell]]
    seeds: dict[str, list[int]]

    def seeds_of_cells(self) -> dict[Cell, list[int]]:
        """Every cell with the union of the seeds its experiments ask for."""
        found: dict[Cell, set[int]] = defaultdict(set)
        for name, cells in self.cells.items():
            for cell in cells:
                found[cell] |= set(self.seeds[name])
        return {cell: sorted(seeds) for cell, seeds in found.items()}


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
) -> Summary:
    """Run every missing (cell, seed) of ``plan``, persisting each ensemble as it finishes."""
    stored = store.load_rows() if use_cache else {}
    wanted = plan.seeds_of_cells()
    missing = {
        cell: [s for s in seeds if (cell.key(), s) not in stored] for cell, seeds in wanted.items()
    }
    missing = {cell: seeds for cell, seeds in missing.items() if seeds}
    groups: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in missing:
        if cell.pretrained:
            groups[cell.pretraining_key()].append(cell)
    pretraining_seeds = {
        key: sorted({s for cell in cells for s in wanted[cell]}) for key, cells in groups.items()
    }
    pretrained = {}
    for key, cells in groups.items():
        found = store.load_pretrained(cells[0], pretraining_seeds[key]) if use_cache else None
        if found is not None:
            pretrained[key] = found

    first = [
        (pretrain_task, cells[0], pretraining_seeds[key], settings)
        for key, cells in groups.items()
        if key not in pretrained
    ]
    first += [
        (ensemble_task, cell, seeds, settings, None)
        for cell, seeds in missing.items()
        if not cell.pretrained
    ]
    later = [cell for cell in missing if cell.pretrained]
    summary = Summary(tasks=len(first) + len(later))
    bar = tqdm(total=summary.tasks, desc="ensembles", unit="task", disable=not progress)

    def record(task: tuple, result) -> None:
        function, cell, seeds, *_ = task
        if function is pretrain_task:
            store.save_pretrained(cell, seeds, result)
            pretrained[cell.pretraining_key()] = result
        else:
            store.save_rows(cell, result)
            summary.new_rows += len(result)
            summary.failed += sum(row["status"] == "failed" for row in result)
            bar.set_postfix(failed=summary.failed, refresh=False)
        bar.update()

    with bar:
        for index, result in backend.run(first):
            record(first[index], result)
        second = []
        for cell in later:
            key = cell.pretraining_key()
            by_seed = dict(zip(pretraining_seeds[key], pretrained[key], strict=True))
            second.append((ensemble_task, cell, missing[cell], settings, by_seed))
        for index, result in backend.run(second):
            record(second[index], result)
    return summary


def assemble(plan: Plan, store: Store) -> pd.DataFrame:
    """The rows of ``plan`` found in ``store``: one per (experiment, cell, seed), contract
    columns first; model samples (where kept) in the ``samples`` column."""
    stored = store.load_rows()
    rows = []
    for name, cells in plan.cells.items():
        for cell in cells:
            for seed in plan.seeds[name]:
                row = stored.get((cell.key(), seed))
                if row is not None:
                    rows.append({"experiment": name} | cell.columns() | row)
    frame = pd.DataFrame(rows)
    for column in CONTRACT_COLUMNS:
        if column not in frame:
            frame[column] = float("nan")
    rest = [c for c in frame.columns if c not in CONTRACT_COLUMNS]
    return frame[CONTRACT_COLUMNS + rest]
