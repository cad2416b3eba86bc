"""The work sent to a worker: pre-train source models, or train and evaluate one ensemble.

Both functions rebuild the truth from the cell (it is deterministic), so that a task carries
only small arguments and runs the same on a local process or a Dask worker on another host.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from sims.engine import MinibatchConfig
from sims.evaluation import draw_samples, evaluate
from sims.experiments import Profile
from sims.generators import make_task_pair
from sims.methods import TRAINERS, Fitted, Training, make_members, pretrain
from sims.models.architectures import ARCHITECTURES
from sims.runner.cells import Cell

PRETRAINING_TARGET_ROWS = 2  # pre-training reads only source samples


@dataclass(frozen=True)
class Settings:
    """What every task of a run shares.

    Attributes:
        device: ``auto`` (CUDA when the worker has it), ``cpu`` or ``cuda``.
        threads: torch threads per task.
    """

    profile: Profile
    device: str = "auto"
    threads: int = 1

    def training(self, model: str) -> Training:
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        config = MinibatchConfig(max_steps=self.profile.max_steps)
        return Training(ARCHITECTURES[model], config, device)


def pretrain_task(cell: Cell, seeds: list[int], settings: Settings) -> list[Fitted]:
    """Source models for every seed of ``seeds``, moved to the CPU."""
    torch.set_num_threads(settings.threads)
    pair = make_task_pair(cell.family, **cell.pair_knobs())
    members = make_members(pair, seeds, PRETRAINING_TARGET_ROWS, cell.n_source)
    fitted = pretrain(members, settings.training(cell.model))
    for f in fitted:
        f.model.cpu()
    return fitted


def _failed(seed: int, reason: str) -> dict:
    return {"seed": seed, "status": "failed", "error": reason}


def ensemble_task(
    cell: Cell, seeds: list[int], settings: Settings, pretrained: dict[int, Fitted] | None
) -> list[dict]:
    """Train ``cell``'s method for ``seeds`` as one ensemble and evaluate every model.

    Returns one row per seed: ``status`` (``ok`` or ``failed`` with the reason in
    ``error``), the errors of ``sims.evaluation.evaluate``, ``n_train``, ``best_step``,
    ``seconds`` (the member's share of the training time plus its own evaluation time) and,
    for cells that keep samples, ``samples`` (model and truth draws as nested lists).
    """
    torch.set_num_threads(settings.threads)
    start = time.perf_counter()
    pair = make_task_pair(cell.family, **cell.pair_knobs())
    members = make_members(pair, seeds, cell.n_target, cell.n_source)
    options = {}
    if cell.pretrained:
        options["pretrained"] = [pretrained[seed] for seed in seeds]
    try:
        fitted = TRAINERS[cell.method](members, settings.training(cell.model), **options)
    except Exception as error:  # a failed ensemble is recorded, and the sweep goes on
        return [_failed(seed, f"training: {error!r}") for seed in seeds]
    training_seconds = (time.perf_counter() - start) / len(members)
    sources = options.get("pretrained", [None] * len(members))
    rows = []
    for f, member, source in zip(fitted, members, sources, strict=True):
        started = time.perf_counter()
        row = {"seed": member.seed, "n_train": f.n_train, "best_step": f.best_step}
        failure = f.failure
        if source is not None and source.failure:
            failure = f"pre-training: {source.failure}"
        if failure:
            row |= _failed(member.seed, failure)
        else:
            row |= _evaluated(f, member, cell, settings)
        row["seconds"] = training_seconds + time.perf_counter() - started
        rows.append(row)
    return rows


def _evaluated(fitted: Fitted, member, cell: Cell, settings: Settings) -> dict:
    try:
        row = {"status": "ok", "error": ""} | evaluate(fitted, member, settings.profile.sizes)
        if not math.isfinite(row["kl"]):
            return _failed(member.seed, "non-finite KL estimate")
        if cell.keep_samples:
            drawn = draw_samples(fitted, member, cell.keep_samples)
            row["samples"] = {name: array.tolist() for name, array in drawn.items()}
    except Exception as error:  # a model that breaks its evaluation is recorded as failed
        return _failed(member.seed, f"evaluation: {error!r}")
    return row
