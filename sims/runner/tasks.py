"""The work sent to a worker: pre-train source models, or train and evaluate one ensemble.

Both functions rebuild the truth from the cell (it is deterministic), so that a task carries
only small arguments and runs the same on a local process or a Dask worker on another host.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch

from sims.data import Dataset
from sims.evaluation import EvaluationSizes, draw_samples, evaluate_ensemble
from sims.experiments import Profile
from sims.generators import load_plugin, make_task_pair
from sims.methods import METHODS, Fitted, Member, Training, make_members, pretrain
from sims.models.architectures import ARCHITECTURES
from sims.process import configure
from sims.runner.cells import Cell
from sims.runner.keys import code_version, digest, plugin_version
from sims.runner.schedule import Unit

PRETRAINING_TARGET_ROWS = 2  # pre-training reads only source samples
SKELETON_ROWS = 16  # source rows a stored model is rebuilt on before its weights are loaded


@dataclass(frozen=True)
class Settings:
    """What every task of a run shares.

    Attributes:
        device: ``auto`` (CUDA when the worker has it), ``cpu`` or ``cuda``.
        threads: torch threads per task.
        precision: of the networks' products in training steps, ``float32`` or
            ``bfloat16`` (see ``sims.models.precision``).
        plugins: modules or files of families of one's own (``load_plugin``), loaded in
            every worker.
    """

    profile: Profile
    device: str = "auto"
    threads: int = 1
    precision: str = "float32"
    plugins: tuple[str, ...] = ()

    def prepare(self) -> None:
        """Set a worker process up for a task: its threads, its memory reuse, and the
        plugins' families registered."""
        configure(self.threads)
        for spec in self.plugins:
            load_plugin(spec)

    def training(self, model: str) -> Training:
        device = local_device(self.device)
        config = self.profile.training_of(model)
        return Training(ARCHITECTURES[model], config, device, self.precision)

    def fingerprint(self, model: str) -> str:
        """A digest of what, besides its cell, makes a row of ``model``: the profile's
        training and evaluation settings, the architecture and its settings, the precision
        of training, the device kind and the version of the code (``sims.runner.keys``)."""
        architecture = ARCHITECTURES[model]
        return digest(
            [
                dataclasses.asdict(self.profile.training_of(model)),
                dataclasses.asdict(self.profile.sizes),
                type(architecture).__name__,
                dataclasses.asdict(architecture),
                self.training(model).training_precision(),
                local_device(self.device),
                code_version(),
                [plugin_version(spec) for spec in self.plugins],
            ]
        )

    def key(self, cell: Cell) -> str:
        """The key of ``cell``'s rows: the cell and everything else that makes them."""
        return digest([cell.key(), self.fingerprint(cell.model)])

    def pretraining_name(self, cell: Cell, seeds: list[int]) -> str:
        """The name of the source models pre-trained for ``cell``'s group with ``seeds``."""
        return digest([cell.pretraining_key(), seeds, self.fingerprint(cell.model)])


def local_device(device: str) -> str:
    """``device`` (``auto``, ``cpu`` or ``cuda``) as this process uses it: ``auto`` is CUDA
    where torch sees a GPU, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _members(unit: Unit, n_target=None, with_source: bool = True) -> list[list[Member]]:
    """Each cell's members: target samples of each seed, and source samples where the
    cell has a source size and ``with_source``."""
    pairs = {}
    members = []
    for cell, seeds in unit:
        if cell.knobs not in pairs:
            pairs[cell.knobs] = make_task_pair(cell.family, **cell.pair_knobs())
        size = n_target or cell.n_target
        n_source = cell.n_source if with_source else None
        members.append(make_members(pairs[cell.knobs], seeds, size, n_source))
    return members


def _split(values: list, members: list[list[Member]]) -> list[list]:
    """``values`` (one per member, in order) cut back into one list per cell."""
    out, start = [], 0
    for group in members:
        out.append(values[start : start + len(group)])
        start += len(group)
    return out


def stored(fitted: Fitted) -> dict:
    """``fitted`` as plain data that ``torch.load(..., weights_only=True)`` reads: its
    weights on the CPU (``state``) and how it was obtained."""
    return {
        "state": fitted.model.cpu().state_dict(),
        "n_train": fitted.n_train,
        "best_step": fitted.best_step,
        "failure": fitted.failure,
    }


def restored(record: dict, member: Member, training: Training) -> Fitted:
    """The source model of ``stored``'s ``record`` for ``member``: the architecture's model
    of the member's truth (built on a few source rows), its weights loaded, on the CPU like
    every model between training and evaluation (which move their ensembles to the device):
    a target model built on its embedding starts on the CPU whole."""
    z, x = member.pair.source.sample(SKELETON_ROWS, member.seed)
    model = training.architecture.build(member.pair, Dataset(x, z), None)
    model.load_state_dict(record["state"])
    return Fitted(model, record["n_train"], record["best_step"], record["failure"])


def pretrain_task(unit: Unit, settings: Settings) -> list[list[dict]]:
    """Source models for every (cell, seeds) of ``unit``, trained as one ensemble (the
    cells share an architecture), as ``stored`` records; one list per cell."""
    settings.prepare()
    members = _members(unit, PRETRAINING_TARGET_ROWS)
    flat = [m for group in members for m in group]
    fitted = pretrain(flat, settings.training(unit[0][0].model))
    return _split([stored(f) for f in fitted], members)


def _failed(seed: int, reason: str) -> dict:
    return {"seed": seed, "status": "failed", "error": reason}


def ensemble_task(
    unit: Unit, settings: Settings, pretrained: list[list[dict]] | None
) -> list[list[dict]]:
    """Train the cells of ``unit`` (one method, one architecture) as one ensemble and
    evaluate every model; ``pretrained[i]`` holds cell i's source models (``stored``
    records), seed by seed.

    Returns, per cell, one row per seed: ``status`` (``ok``, or ``failed`` with the reason
    in ``error``), the errors of ``sims.evaluation.evaluate_ensemble``, ``n_train``,
    ``best_step``, ``precision`` (of the networks' products in training), ``device``
    (``cpu`` or ``cuda``, which also decides the members' random streams), ``seconds`` (the
    model's share of the ensemble's training and evaluation time) and, for cells that keep
    samples, ``samples`` (model and truth draws as nested lists).
    """
    settings.prepare()
    start = time.perf_counter()
    members = _members(unit, with_source=pretrained is None)  # pre-trained: no source needed
    flat = [m for group in members for m in group]
    cell = unit[0][0]
    training = settings.training(cell.model)
    options = {}
    if pretrained is not None:
        records = [r for group in pretrained for r in group]
        sources = zip(records, flat, strict=True)
        options["pretrained"] = [restored(r, m, training) for r, m in sources]
    try:
        fitted = METHODS[cell.method].fit(flat, training, **options)
    except Exception as error:  # a failed ensemble is recorded, and the sweep goes on
        return [[_failed(m.seed, f"training: {error!r}") for m in group] for group in members]
    sources = options.get("pretrained", [None] * len(flat))
    rows = _rows(fitted, flat, sources, settings.profile.sizes, training.device)
    keep = [c.keep_samples for (c, _), group in zip(unit, members, strict=True) for _ in group]
    for row, f, member, n in zip(rows, fitted, flat, keep, strict=True):
        if n and row["status"] == "ok":
            row |= _samples(f, member, n)
    shared = {
        "seconds": (time.perf_counter() - start) / len(flat),
        "precision": training.training_precision(),
        "device": training.device,
    }
    for row in rows:
        row |= shared
    return _split(rows, members)


def _rows(
    fitted: list[Fitted],
    members: list[Member],
    sources: list[Fitted | None],
    sizes: EvaluationSizes,
    device: str,
) -> list[dict]:
    """One row per model: failed where its training or pre-training failed, else its
    errors, the models evaluated together."""
    rows = [
        {"seed": m.seed, "n_train": f.n_train, "best_step": f.best_step}
        for f, m in zip(fitted, members, strict=True)
    ]
    failures = [
        f"pre-training: {s.failure}" if s is not None and s.failure else f.failure
        for f, s in zip(fitted, sources, strict=True)
    ]
    ok = [i for i, failure in enumerate(failures) if not failure]
    evaluated = _evaluated([fitted[i] for i in ok], [members[i] for i in ok], sizes, device)
    for i, errors in zip(ok, evaluated, strict=True):
        rows[i] |= errors
    for row, member, failure in zip(rows, members, failures, strict=True):
        if failure:
            row |= _failed(member.seed, failure)
    return rows


def _evaluated(
    fitted: list[Fitted], members: list[Member], sizes: EvaluationSizes, device: str
) -> list[dict]:
    """Each model's errors, evaluated together; where that raises, each model alone, so that
    only a model that breaks its evaluation is recorded as failed."""
    try:
        rows = evaluate_ensemble(fitted, members, sizes, device)
    except Exception as error:  # a model that breaks its evaluation is recorded as failed
        if len(fitted) == 1:
            return [_failed(members[0].seed, f"evaluation: {error!r}")]
        alone = zip(fitted, members, strict=True)
        return [row for f, m in alone for row in _evaluated([f], [m], sizes, device)]
    return [
        {"status": "ok", "error": ""} | row
        if math.isfinite(row["kl"])
        else _failed(m.seed, "non-finite KL estimate")
        for row, m in zip(rows, members, strict=True)
    ]


def _samples(fitted: Fitted, member: Member, n: int) -> dict:
    """``n`` model and truth draws as nested lists, under ``samples``; a model that breaks
    its sampling is recorded as failed."""
    try:
        drawn = draw_samples(fitted, member, n)
    except Exception as error:  # recorded, and the sweep goes on
        return _failed(member.seed, f"evaluation: {error!r}")
    return {"samples": {name: array.tolist() for name, array in drawn.items()}}
