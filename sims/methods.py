"""The five estimators: one function per method over one shared architecture.

| method     | trained on                                                  |
|------------|-------------------------------------------------------------|
| scratch    | the whole model, on the target samples                      |
| transfer   | the head only, on the target samples, over the embedding    |
|            | pre-trained on the source samples and frozen                |
| finetune   | the whole pre-trained source model, on the target samples   |
| oracle     | the head only, on the target samples, over the true h       |
| pooled     | the whole model, on source and target samples together      |

Each function trains one ensemble: member i is replicate ``members[i]``. Minibatch
architectures hold out a share of each member's target samples for early stopping (the
pre-training stage holds out source samples); full-batch architectures (the parametric
anchor) fit all samples to convergence. ``Fitted.n_train`` says how many target samples the
model was trained on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from sims.data import Dataset
from sims.engine import MinibatchConfig, fit_full_batch, fit_minibatch
from sims.generators import TaskPair
from sims.models.architectures import Architecture
from sims.models.base import TrainedModel, is_embedding_parameter
from sims.models.precision import resolve


@dataclass(frozen=True)
class Member:
    """One replicate: a task pair, its samples and a seed for initialisation and minibatches.

    Attributes:
        pair: the truth.
        target: the n_t target samples.
        source: the n_s source samples (``None`` when no method needs them).
        seed: replicate seed.
    """

    pair: TaskPair
    target: Dataset
    source: Dataset | None
    seed: int


def make_members(
    pair: TaskPair, seeds: Sequence[int], n_target: int, n_source: int | None
) -> list[Member]:
    """Replicates of one truth: for each seed, fresh target (and source) samples."""
    members = []
    for seed in seeds:
        z, x = pair.target.sample(n_target, seed)
        source = None
        if n_source is not None:
            z_source, x_source = pair.source.sample(n_source, seed)
            source = Dataset(x_source, z_source)
        members.append(Member(pair, Dataset(x, z), source, seed))
    return members


@dataclass(frozen=True)
class Training:
    """How to train: the architecture, the minibatch settings, the device, and the precision
    of the networks' products in minibatch training steps (``sims.models.precision``)."""

    architecture: Architecture
    config: MinibatchConfig = field(default_factory=MinibatchConfig)
    device: str = "cpu"
    precision: str = "float32"

    def training_precision(self) -> str:
        """The precision the networks' products are trained in: ``float32`` or ``bfloat16``
        (full-batch fits are float32)."""
        if self.architecture.full_batch:
            return "float32"
        return resolve(self.precision, self.device)


@dataclass
class Fitted:
    """A trained target model and how it was obtained."""

    model: TrainedModel
    n_train: int
    best_step: int
    failure: str | None


def _built(
    training: Training, members: Sequence[Member], data: Sequence[Dataset], embeddings, stage: int
) -> list[TrainedModel]:
    """Fresh models, member i standardised on ``data[i]`` over ``embeddings[i]`` (``None``: a
    fresh embedding part) and initialised from its seed; ``stage`` separates training stages."""
    models = []
    for member, dataset, embedding in zip(members, data, embeddings, strict=True):
        with torch.random.fork_rng():
            torch.manual_seed(member.seed * 1000 + stage)
            models.append(training.architecture.build(member.pair, dataset, embedding))
    return models


def _fit(
    training: Training,
    models: list[TrainedModel],
    members: Sequence[Member],
    train: list[Dataset],
    held_out: list[Dataset] | None,
    trainable: Callable[[str], bool],
) -> list[Fitted]:
    if training.architecture.full_batch:
        fitted, report = fit_full_batch(models, train, trainable, device=training.device)
    else:
        seeds = [m.seed for m in members]
        fitted, report = fit_minibatch(
            models,
            train,
            held_out,
            seeds,
            training.config,
            trainable,
            training.device,
            training.precision,
        )
    return [
        Fitted(model, len(data), step, failure)
        for model, data, step, failure in zip(
            fitted, train, report.best_step, report.failure, strict=True
        )
    ]


def _splits(training: Training, members: Sequence[Member], which: str):
    """Each member's (train, held-out) samples of the ``which`` task; for full-batch
    architectures all of them, and no held-out set."""
    datasets = [getattr(m, which) for m in members]
    if training.architecture.full_batch:
        return datasets, None
    config = training.config
    splits = [
        d.split(config.held_out_fraction, m.seed, config.held_out_max)
        for d, m in zip(datasets, members, strict=True)
    ]
    return [s[0] for s in splits], [s[1] for s in splits]


def _everything(name: str) -> bool:
    return True


def _head_only(name: str) -> bool:
    return not is_embedding_parameter(name)


def scratch(members: Sequence[Member], training: Training) -> list[Fitted]:
    """The whole model, trained on the target samples only."""
    train, held_out = _splits(training, members, "target")
    models = _built(training, members, train, [None] * len(members), stage=0)
    return _fit(training, models, members, train, held_out, _everything)


def pretrain(members: Sequence[Member], training: Training) -> list[Fitted]:
    """The whole model, trained on the source samples: the start of transfer and finetune."""
    train, held_out = _splits(training, members, "source")
    models = _built(training, members, train, [None] * len(members), stage=1)
    return _fit(training, models, members, train, held_out, _everything)


def transfer(
    members: Sequence[Member], training: Training, pretrained: list[Fitted] | None = None
) -> list[Fitted]:
    """A fresh head on the target samples over the pre-trained source embedding, frozen.

    ``pretrained`` (from ``pretrain`` on the same members) is reused when given.
    """
    pretrained = pretrained or pretrain(members, training)
    train, held_out = _splits(training, members, "target")
    embeddings = [copy.deepcopy(p.model.embedding) for p in pretrained]
    models = _built(training, members, train, embeddings, stage=2)
    return _fit(training, models, members, train, held_out, _head_only)


def finetune(
    members: Sequence[Member], training: Training, pretrained: list[Fitted] | None = None
) -> list[Fitted]:
    """The pre-trained source model, all of it trained further on the target samples."""
    pretrained = pretrained or pretrain(members, training)
    train, held_out = _splits(training, members, "target")
    models = [copy.deepcopy(p.model) for p in pretrained]
    return _fit(training, models, members, train, held_out, _everything)


def oracle(members: Sequence[Member], training: Training) -> list[Fitted]:
    """A head on the target samples over the true embedding."""
    train, held_out = _splits(training, members, "target")
    embeddings = [training.architecture.true_embedding(m.pair) for m in members]
    models = _built(training, members, train, embeddings, stage=3)
    return _fit(training, models, members, train, held_out, _head_only)


def pooled(members: Sequence[Member], training: Training) -> list[Fitted]:
    """One model on the source and target samples together, with no task distinction;
    stopped early on held-out target samples."""
    target_train, held_out = _splits(training, members, "target")
    train = [Dataset.union(m.source, t) for m, t in zip(members, target_train, strict=True)]
    models = _built(training, members, train, [None] * len(members), stage=4)
    fitted = _fit(training, models, members, train, held_out, _everything)
    for f, t in zip(fitted, target_train, strict=True):
        f.n_train = len(t)
    return fitted


@dataclass(frozen=True)
class Method:
    """One estimator: how it fits, and what it needs.

    Attributes:
        name: the ``method`` column of a row.
        fit: ``(members, training) -> list[Fitted]``, one ensemble; where ``pretrained``, it
            also takes ``pretrained=`` (each member's source model from ``pretrain``).
        uses_source: whether it reads source samples (its cells have an ``n_source``).
        pretrained: whether it starts from a model pre-trained on the source samples, which
            the runner trains once per source and hands to every cell that shares it.
    """

    name: str
    fit: Callable[..., list[Fitted]]
    uses_source: bool
    pretrained: bool = False


METHODS = {
    m.name: m
    for m in (
        Method("scratch", scratch, uses_source=False),
        Method("transfer", transfer, uses_source=True, pretrained=True),
        Method("finetune", finetune, uses_source=True, pretrained=True),
        Method("oracle", oracle, uses_source=False),
        Method("pooled", pooled, uses_source=True),
    )
}
"""The methods by name; nothing else lists them."""
