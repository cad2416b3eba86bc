"""Peak memory of a profile's largest ensembles, each trained a few steps and evaluated.

    python benchmarks/memory.py [--profile paper] [--only A,B] [--steps 10]

For each experiment and model kind, takes the ensemble that ``run_all.py`` would train with
the most training rows (members times each one's training samples, source samples included
for ``pooled``), and in a fresh process pre-trains its source models where its method needs
them, trains it ``--steps`` Adam steps (a held-out check included) and evaluates every model
with the profile's evaluation sizes, on the CPU with two threads. Prints, per experiment and
model, the ensemble's method, its members and the peak resident memory of its process. A
full run's tensors have the same sizes, as the number of steps changes none of them
(members that stop early only shrink them), so the peaks bound those of the full run's
processes, whose memory allocator may keep a little more between ensembles.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from run import peak_rss_mib

from sims.experiments import EXPERIMENTS, PROFILE_SETTINGS, Profile, get_experiment
from sims.runner.cells import expand
from sims.runner.run import Plan
from sims.runner.schedule import Task, Unit, schedule
from sims.runner.tasks import Settings, ensemble_task, pretrain_task


def largest_units(experiment: str, profile: str) -> list[Unit]:
    """For each model kind of ``experiment``, the ensemble of ``run_all.py``'s schedule with
    the most training rows, every seed of it."""
    cells = {experiment: expand(get_experiment(experiment), profile, {})}
    tasks = schedule(cells, Plan.of(cells, profile).seeds_of_cells(), {}).tasks()
    largest: dict[str, Task] = {}
    for task in tasks:
        model = task.unit[0][0].model
        if model not in largest or task.rows() > largest[model].rows():
            largest[model] = task
    return [task.unit for task in largest.values()]


def pretrained_sources(unit: Unit, settings: Settings) -> list[list[dict]]:
    """Each cell's source models (stored records), pre-trained once per distinct source
    (cells that differ only in n_target share theirs), as ``run_all.py`` does."""
    distinct = {cell.pretraining_key(): (cell, seeds) for cell, seeds in unit}
    fitted = dict(zip(distinct, pretrain_task(list(distinct.values()), settings), strict=True))
    return [fitted[cell.pretraining_key()] for cell, _ in unit]


def measure(unit: Unit, profile: Profile) -> tuple[float, float]:
    """(peak resident GiB, seconds) of pre-training, training and evaluating ``unit``."""
    start = time.perf_counter()
    settings = Settings(profile, device="cpu", threads=2, precision="auto")
    sources = pretrained_sources(unit, settings) if unit[0][0].pretrained else None
    rows = ensemble_task(unit, settings, sources)
    failed = [r["error"] for cell_rows in rows for r in cell_rows if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} models failed, first: {failed[0]}")
    return peak_rss_mib() / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILE_SETTINGS), default="paper")
    parser.add_argument("--only", help="experiments, comma-separated (default: all)")
    parser.add_argument("--steps", type=int, default=10, help="Adam steps of each training")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else [e.name for e in EXPERIMENTS]
    base = PROFILE_SETTINGS[args.profile]
    training = dataclasses.replace(base.training, max_steps=args.steps)
    profile = dataclasses.replace(base, training=training)
    print(f"profile={args.profile} steps={args.steps} torch={torch.__version__}")
    print(f"{'experiment':<17} {'model':<16} {'method':<9} {'members':>7} {'peak GiB':>8} {'s':>6}")
    context = multiprocessing.get_context("spawn")
    for name in names:
        for unit in largest_units(name, args.profile):
            cell = unit[0][0]
            members = sum(len(seeds) for _, seeds in unit)
            with ProcessPoolExecutor(1, mp_context=context) as fresh:
                peak, seconds = fresh.submit(measure, unit, profile).result()
            print(
                f"{name:<17} {cell.model:<16} {cell.method:<9} {members:>7} {peak:>8.2f} "
                f"{seconds:>6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
