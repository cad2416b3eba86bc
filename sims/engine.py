"""The ensemble training engine: E independent models trained in one loop.

Every member has its own data, its own initialisation and its own minibatch stream; the
members are stacked with ``torch.func.stack_module_state`` and their losses evaluated in
one ``vmap`` of ``functional_call``, so that the loss is computed inside the function that
sees the member's own parameters. Adam acts elementwise, so stacking leaves each member's
trajectory its own: a member trained alone and inside any ensemble gives the same weights
up to floating-point reassociation. Members that have stopped early leave the loop, so they
cost nothing more. A conditional model's frozen embedding (``transfer``, ``oracle``) is a
fixed map of each row's z: ``fit_minibatch`` applies it once to every row, in float32, and
trains the head on those conditions, not again at every step.

Two ways to fit:
- ``fit_minibatch``: Adam on minibatches, early stopping on each member's held-out split of
  its own target samples (never the truth), keeping each member's best weights;
- ``fit_full_batch``: L-BFGS on all of each member's samples to convergence, for the
  parametric anchors, whose theory is about the minimiser of the loss on all n samples.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sims.data import Dataset
from sims.generators.seeding import seeded_generator
from sims.models.base import TrainedModel, is_embedding_parameter
from sims.models.precision import networks_in, resolve
from sims.models.stacked import (
    call_each,
    check_one_architecture,
    embedded_each,
    head_state,
    stacked_state,
    without_embedding,
)
from sims.streams import GeneratorStreams, KeyedStreams, make_streams, normal_draws
from sims.validation import check_choice, check_positive_int

SCHEDULES = ("constant", "cosine")
HELD_OUT_ROWS = 2**18  # padded held-out rows of all members together in one call


@dataclass(frozen=True)
class MinibatchConfig:
    """Adam with early stopping.

    Attributes:
        held_out_fraction: share of each member's target samples held out for stopping.
        held_out_max: most rows held out: a larger held-out set makes every check cost
            more in proportion and tells the stopping rule little more; the rows beyond it
            are trained on.
        learning_rate: Adam step size.
        batch_size: rows per minibatch, drawn with replacement from the member's data.
        max_steps: hard limit on optimiser steps.
        eval_every: steps between evaluations of the held-out loss; small, so that members
            with few samples (many epochs per step) are not stopped late.
        patience: evaluations without improvement before a member stops.
        held_out_noise_draws: noise draws per held-out row for losses that use noise
            (denoising score matching), fixed for the whole fit, so that successive
            evaluations compare the same quantity with less noise.
        schedule: of the step size over the steps: ``constant``, or ``cosine`` (from
            ``learning_rate`` down to 0 at ``max_steps``), which lets the last steps settle
            the minibatch noise that a constant step size leaves in the weights.
    """

    held_out_fraction: float = 0.2
    held_out_max: int = 2048
    learning_rate: float = 1e-3
    batch_size: int = 256
    max_steps: int = 5000
    eval_every: int = 10
    patience: int = 50
    held_out_noise_draws: int = 8
    schedule: str = "constant"

    def __post_init__(self):
        check_choice("schedule", self.schedule, SCHEDULES)
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(
                f"held_out_fraction={self.held_out_fraction} is not allowed: expected a share "
                "in (0, 1)"
            )
        check_positive_int("held_out_max", self.held_out_max)

    def step_size(self, step: int) -> float:
        """The step size of optimiser step ``step`` (counted from 0)."""
        if self.schedule == "cosine":
            return self.learning_rate * 0.5 * (1 + math.cos(math.pi * step / self.max_steps))
        return self.learning_rate


@dataclass
class FitReport:
    """Per member: the step whose weights were kept, its loss, and whether it failed."""

    best_step: list[int] = field(default_factory=list)
    best_loss: list[float] = field(default_factory=list)
    failure: list[str | None] = field(default_factory=list)


class _Stack:
    """Members stacked for ``vmap``: parameters (trainable and frozen), buffers, padded data.

    ``losses`` runs the whole model on rows (x, z), or, once ``on_conditions`` has made the
    stack, the model with its embedding left out on rows (x, embedding(z)).
    """

    def __init__(
        self, models: Sequence[TrainedModel], trainable: Callable[[str], bool], device: str
    ):
        self.models = models
        self.base, params, self.buffers = stacked_state(models, device)
        self.trainable = {k: v.requires_grad_() for k, v in params.items() if trainable(k)}
        self.frozen = {k: v for k, v in params.items() if not trainable(k)}
        self.dtype = next(iter(params.values())).dtype
        self.device = device
        self.runs = self.base  # the module ``losses`` runs

    def embedding_frozen(self) -> bool:
        """Whether no parameter of the members' embedding part is trained."""
        return not any(is_embedding_parameter(k) for k in self.trainable)

    def embedded(self, z: Tensor) -> Tensor:
        """Each member's embedding of its own rows z (E, n, d_z): (E, n, d_h)."""
        return embedded_each(self.base, self.frozen, self.buffers, z)

    def on_conditions(self) -> _Stack:
        """This stack running the model with its embedding left out: ``losses`` then takes
        the rows' conditions ``embedded(z)`` in place of z."""
        stack = copy.copy(self)
        stack.runs = without_embedding(self.base)
        return stack

    def _running_state(self, params: dict[str, Tensor], buffers: dict[str, Tensor]):
        """``params`` and ``buffers`` of what ``runs`` holds: without the embedding's when
        the stack runs on conditions."""
        if self.runs is self.base:
            return params, buffers
        return head_state(params), head_state(buffers)

    def subset(self, keep: Tensor) -> _Stack:
        """The members where the boolean mask ``keep`` (E,) is true, as a stack of their own
        (trainable parameters as fresh leaves); this stack is left as it is."""
        part = copy.copy(self)
        part.models = [m for m, kept in zip(self.models, keep.tolist(), strict=True) if kept]
        part.trainable = {k: v.detach()[keep].requires_grad_() for k, v in self.trainable.items()}
        part.frozen = {k: v[keep] for k, v in self.frozen.items()}
        part.buffers = {k: v[keep] for k, v in self.buffers.items()}
        return part

    def pad(self, datasets: Sequence[Dataset]) -> tuple[Tensor, Tensor | None, Tensor]:
        """x (E, n_max, d_x), z (E, n_max, d_z) or None, weights (E, n_max): 1 on real rows."""
        n_max = max(len(d) for d in datasets)
        options = {"dtype": self.dtype, "device": self.device}

        def padded(tensors: list[Tensor]) -> Tensor:
            out = torch.zeros(len(tensors), n_max, tensors[0].shape[1], **options)
            for i, t in enumerate(tensors):
                out[i, : len(t)] = t.to(**options)
            return out

        weights = torch.zeros(len(datasets), n_max, **options)
        for i, d in enumerate(datasets):
            weights[i, : len(d)] = 1.0
        z = None if datasets[0].z is None else padded([d.z for d in datasets])
        return padded([d.x for d in datasets]), z, weights

    def losses(
        self,
        x: Tensor,
        z: Tensor | None,
        weights: Tensor,
        noise: Tensor,
        rows_per_call: int | None = None,
    ) -> Tensor:
        """Each member's training loss on its own rows and noise, (E,). With
        ``rows_per_call``, the members go in consecutive groups whose padded rows stay
        within it (or one member's), which bounds memory and gives the same values."""
        params, buffers = self._running_state(self.trainable | self.frozen, self.buffers)
        members, rows = x.shape[:2]
        group = members if rows_per_call is None else max(1, rows_per_call // rows)
        if group >= members:
            return call_each(self.runs, params, buffers, x, z, weights, noise)
        parts = []
        for start in range(0, members, group):
            part = slice(start, start + group)
            member_params = {k: v[part] for k, v in params.items()}
            member_buffers = {k: v[part] for k, v in buffers.items()}
            args = (x[part], None if z is None else z[part], weights[part], noise[part])
            parts.append(call_each(self.runs, member_params, member_buffers, *args))
        return torch.cat(parts)

    def noise(
        self,
        generators: Sequence[torch.Generator],
        *shape: int,
        lengths: Sequence[int] | None = None,
    ) -> Tensor:
        """(*shape[:-1], E, shape[-1], noise_features) standard normal noise on the device,
        each member's from its own generator, of its own length where ``lengths`` are given
        (``sims.streams.normal_draws``)."""
        features = self.base.noise_features
        draws = normal_draws(generators, features, self.dtype, *shape, lengths=lengths)
        return draws.to(self.device)

    def unstacked(self, params: dict[str, Tensor]) -> list[TrainedModel]:
        """Copies of the members carrying ``params`` (stacked) and their own buffers."""
        members = []
        for i, model in enumerate(self.models):
            member = copy.deepcopy(model)
            state = {k: v[i].detach().clone() for k, v in (params | self.buffers).items()}
            member.load_state_dict(state)
            members.append(member)
        return members


def _failures(losses: list[float], reason: str) -> list[str | None]:
    return [None if math.isfinite(v) else reason for v in losses]


def _restricted(
    optimiser: torch.optim.Adam, params: Iterable[Tensor], keep: Tensor
) -> torch.optim.Adam:
    """A fresh optimiser over ``params`` carrying the members ``keep`` (a boolean mask over
    the leading dimension) of ``optimiser``'s state; the scalar step count is shared."""
    state = optimiser.state_dict()
    state["state"] = {
        i: {name: value[keep] if value.dim() else value for name, value in entry.items()}
        for i, entry in state["state"].items()
    }
    fresh = torch.optim.Adam(params, **optimiser.defaults)
    fresh.load_state_dict(state)
    return fresh


@dataclass
class _Running:
    """The members still training: their stack, optimiser state, data and streams.

    Stopped members leave, so that their steps and held-out checks cost nothing; a running
    member's trajectory is its own and does not depend on who else is running.

    Attributes:
        index: (L,) positions of the running members in the ensemble, on the CPU.
        x, z: (L, n, d_x) and (L, n, d_z) or ``None``: training rows, padded to the longest.
        sizes: (L,) training rows of each member, on the CPU.
        x_held, z_held, w_held, noise_held: held-out rows padded to the longest, their
            weights (1 on real rows) and their fixed noise (L, n_held, noise_features).
        held_sizes: (L,) held-out rows of each member, on the CPU.
        streams: the members' streams of minibatch rows and noise (``sims.streams``).
        precision: of the networks' products in training steps (``float32``, ``bfloat16``).
    """

    stack: _Stack
    optimiser: torch.optim.Adam
    index: Tensor
    x: Tensor
    z: Tensor | None
    sizes: Tensor
    x_held: Tensor
    z_held: Tensor | None
    w_held: Tensor
    noise_held: Tensor
    held_sizes: Tensor
    streams: GeneratorStreams | KeyedStreams
    precision: str

    def train(self, first: int, steps: int, config: MinibatchConfig) -> None:
        """Adam steps ``first`` to ``first + steps - 1``, each member on
        ``config.batch_size`` rows drawn with replacement from its own rows and on noise from
        its own stream, at the step sizes of ``config``'s schedule."""
        batch_size = config.batch_size
        members, n = self.x.shape[:2]
        features, dtype = self.stack.base.noise_features, self.stack.dtype
        rows, noise = self.streams.block(steps, batch_size, features, dtype)
        rows = (rows + n * torch.arange(members, device=rows.device)[:, None]).flatten()

        def batches(padded: Tensor) -> Tensor:
            """(steps, L, batch_size, d): each step's rows of each member, in one gather."""
            picked = padded.flatten(0, 1).index_select(0, rows)
            return picked.view(steps, members, batch_size, padded.shape[-1])

        x = batches(self.x)
        z = None if self.z is None else batches(self.z)
        ones = torch.ones(members, batch_size, dtype=x.dtype, device=x.device)
        for b in range(steps):
            for group in self.optimiser.param_groups:
                group["lr"] = config.step_size(first + b)
            self.optimiser.zero_grad(set_to_none=True)
            batch_z = None if z is None else z[b]
            with networks_in(self.precision):
                loss = self.stack.losses(x[b], batch_z, ones, noise[b]).sum()
            loss.backward()
            self.optimiser.step()

    def held_out_losses(self) -> Tensor:
        """Each running member's loss on its held-out rows and fixed noise, (L,), over at
        most ``HELD_OUT_ROWS`` padded rows per call."""
        held = (self.x_held, self.z_held, self.w_held, self.noise_held)
        with torch.no_grad():
            return self.stack.losses(*held, rows_per_call=HELD_OUT_ROWS)

    def subset(self, keep: Tensor) -> _Running:
        """The members where the boolean mask ``keep`` (L,) is true, with the padding trimmed
        to the longest of theirs."""
        n, n_held = int(self.sizes[keep].max()), int(self.held_sizes[keep].max())
        kept = keep.to(self.x.device)
        stack = self.stack.subset(kept)

        def trimmed(padded: Tensor | None, length: int) -> Tensor | None:
            return None if padded is None else padded[kept, :length]

        return _Running(
            stack=stack,
            optimiser=_restricted(self.optimiser, stack.trainable.values(), kept),
            index=self.index[keep],
            x=trimmed(self.x, n),
            z=trimmed(self.z, n),
            sizes=self.sizes[keep],
            x_held=trimmed(self.x_held, n_held),
            z_held=trimmed(self.z_held, n_held),
            w_held=trimmed(self.w_held, n_held),
            noise_held=trimmed(self.noise_held, n_held),
            held_sizes=self.held_sizes[keep],
            streams=self.streams.subset(keep.tolist()),
            precision=self.precision,
        )


def fit_minibatch(
    models: Sequence[TrainedModel],
    train: Sequence[Dataset],
    held_out: Sequence[Dataset],
    seeds: Sequence[int],
    config: MinibatchConfig = MinibatchConfig(),
    trainable: Callable[[str], bool] = lambda name: True,
    device: str = "cpu",
    precision: str = "float32",
    streams: str = "auto",
) -> tuple[list[TrainedModel], FitReport]:
    """Train each member on its ``train`` set by Adam, stopping early on its ``held_out`` set.

    Args:
        models: E members of one architecture, already initialised.
        train, held_out: E datasets each.
        seeds: E seeds of the members' minibatch streams.
        trainable: which parameter names are trained; the others stay bit-identical.
        precision: of the networks' matrix products in training steps, one of
            ``sims.models.precision.PRECISIONS``; held-out losses are always float32.
        streams: the kind of the members' streams of minibatch rows and noise, one of
            ``sims.streams.STREAMS`` (``auto``: generators on a CPU, keyed on a GPU).

    Returns:
        the members with their best weights (lowest held-out loss), and the report.
    """
    stack = _Stack(models, trainable, device)
    x, z, _ = stack.pad(train)
    if stack.base.noise_features:
        held_out = [d.repeated(config.held_out_noise_draws) for d in held_out]
    x_held, z_held, w_held = stack.pad(held_out)
    if z is not None and stack.embedding_frozen():
        z, z_held = stack.embedded(z), stack.embedded(z_held)
        stack = stack.on_conditions()
    held_sizes = [len(d) for d in held_out]
    held_out_generators = [seeded_generator(s, "held-out noise") for s in seeds]
    ensemble = len(models)
    running = _Running(
        stack=stack,
        optimiser=torch.optim.Adam(stack.trainable.values(), lr=config.learning_rate),
        index=torch.arange(ensemble),
        x=x,
        z=z,
        sizes=torch.tensor([len(d) for d in train]),
        x_held=x_held,
        z_held=z_held,
        w_held=w_held,
        noise_held=stack.noise(held_out_generators, x_held.shape[1], lengths=held_sizes),
        held_sizes=torch.tensor(held_sizes),
        streams=make_streams(streams, seeds, [len(d) for d in train], device),
        precision=resolve(precision, device),
    )
    best = {k: v.detach().clone() for k, v in stack.trainable.items()}
    best_loss = running.held_out_losses().cpu().nan_to_num(nan=math.inf)
    best_step = torch.zeros(ensemble, dtype=torch.long)
    waiting = torch.zeros(ensemble, dtype=torch.long)
    step = 0
    while step < config.max_steps:
        block = min(config.eval_every, config.max_steps - step)
        running.train(step, block, config)
        step += block
        loss = running.held_out_losses().cpu()
        index = running.index
        improved = loss < best_loss[index]
        on_device = improved.to(device)
        for k, v in running.stack.trainable.items():
            best[k][index[improved].to(device)] = v.detach()[on_device]
        best_loss[index] = torch.where(improved, loss, best_loss[index])
        best_step[index[improved]] = step
        waiting[index] = torch.where(improved, 0, waiting[index] + 1)
        keep = waiting[index] < config.patience
        if not keep.any():
            break
        if not keep.all():
            running = running.subset(keep)
    report = FitReport(
        best_step=best_step.tolist(),
        best_loss=best_loss.tolist(),
        failure=_failures(best_loss.tolist(), "no finite held-out loss"),
    )
    return stack.unstacked(best | stack.frozen), report


FULL_BATCH_ROWS = 2**21  # padded rows of all members together in one full-batch fit


def fit_full_batch(
    models: Sequence[TrainedModel],
    train: Sequence[Dataset],
    trainable: Callable[[str], bool] = lambda name: True,
    max_iterations: int = 2000,
    tolerance: float = 1e-10,
    device: str = "cpu",
) -> tuple[list[TrainedModel], FitReport]:
    """Minimise each member's deterministic training loss (a mean negative log-likelihood,
    or a denoising loss with its noise integrated out) on all of its samples by L-BFGS, to
    convergence.

    The objective is the sum of the members' losses, which separates, so its minimiser is
    every member's own; members agree with a lone fit up to ``tolerance`` on the gradient.
    The members are fitted in groups of similar sizes whose padded rows stay within
    ``FULL_BATCH_ROWS`` (or one member's, where that is more), so that memory stays bounded
    however many members and samples an ensemble has.
    """
    check_one_architecture(models)
    order = sorted(range(len(models)), key=lambda i: len(train[i]))
    fitted: list[TrainedModel | None] = [None] * len(models)
    report = FitReport([0] * len(models), [math.nan] * len(models), [None] * len(models))
    for group in _row_bounded_groups([len(train[i]) for i in order], FULL_BATCH_ROWS):
        members = [order[k] for k in group]
        part, part_report = _fit_full_batch_group(
            [models[i] for i in members],
            [train[i] for i in members],
            trainable,
            max_iterations,
            tolerance,
            device,
        )
        for k, i in enumerate(members):
            fitted[i] = part[k]
            report.best_step[i] = part_report.best_step[k]
            report.best_loss[i] = part_report.best_loss[k]
            report.failure[i] = part_report.failure[k]
    return fitted, report


def _row_bounded_groups(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive positions of ``sizes`` (ascending) in groups whose members, padded to the
    group's largest, hold at most ``budget`` rows (a single member may hold more)."""
    groups: list[list[int]] = []
    for k, size in enumerate(sizes):
        if groups and (len(groups[-1]) + 1) * size <= budget:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def _fit_full_batch_group(
    models: Sequence[TrainedModel],
    train: Sequence[Dataset],
    trainable: Callable[[str], bool],
    max_iterations: int,
    tolerance: float,
    device: str,
) -> tuple[list[TrainedModel], FitReport]:
    """``fit_full_batch`` of members fitted together."""
    stack = _Stack(models, trainable, device)
    if stack.base.noise_features:
        raise ValueError("full-batch fitting needs a loss without noise")
    x, z, weights = stack.pad(train)
    no_noise = stack.noise([None] * len(models), x.shape[1])
    optimiser = torch.optim.LBFGS(
        stack.trainable.values(),
        lr=1.0,
        max_iter=max_iterations,
        tolerance_grad=tolerance,
        tolerance_change=0.0,
        history_size=100,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimiser.zero_grad(set_to_none=True)
        total = stack.losses(x, z, weights, no_noise).sum()
        total.backward()
        return total

    optimiser.step(closure)
    with torch.no_grad():
        loss = stack.losses(x, z, weights, no_noise).cpu()
    iterations = optimiser.state_dict()["state"][0]["n_iter"]
    report = FitReport(
        best_step=[iterations] * len(models),
        best_loss=loss.tolist(),
        failure=_failures(loss.tolist(), "non-finite training loss"),
    )
    return stack.unstacked(stack.trainable | stack.frozen), report
