"""The ensemble training engine: E independent models trained in one loop.

Every member has its own data, its own initialisation and its own minibatch stream; the
members are stacked with ``torch.func.stack_module_state`` and their losses evaluated in
one ``vmap`` of ``functional_call``, so that the loss is computed inside the function that
sees the member's own parameters. Adam acts elementwise, so stacking leaves each member's
trajectory its own: a member trained alone and inside any ensemble gives the same weights
up to floating-point reassociation.

Two ways to fit:
- ``fit_minibatch``: Adam on minibatches, early stopping on each member's held-out split of
  its own target samples (never the truth), keeping each member's best weights;
- ``fit_full_batch``: L-BFGS on all of each member's samples to convergence, for the
  parametric anchor whose theory is about the maximum-likelihood fit on all n samples.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

from sims.generators.seeding import seeded_generator
from sims.models.base import TrainedModel


@dataclass(frozen=True)
class Dataset:
    """One member's samples: x (n, d_x) and z (n, d_z) or ``None``."""

    x: Tensor
    z: Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def split(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """(train, held-out) with ``round(fraction * n)`` rows held out at random (at least 1)."""
        n = len(self)
        held = max(1, round(fraction * n))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        keep, out = order[held:], order[:held]
        pick = lambda rows: Dataset(self.x[rows], None if self.z is None else self.z[rows])  # noqa: E731
        return pick(keep), pick(out)

    def repeated(self, times: int) -> Dataset:
        """The rows ``times`` over."""
        z = None if self.z is None else self.z.repeat(times, 1)
        return Dataset(self.x.repeat(times, 1), z)

    @staticmethod
    def union(first: Dataset, second: Dataset) -> Dataset:
        """The rows of both (same dimensions)."""
        z = None if first.z is None else torch.cat([first.z, second.z])
        return Dataset(torch.cat([first.x, second.x]), z)


@dataclass(frozen=True)
class MinibatchConfig:
    """Adam with early stopping.

    Attributes:
        held_out_fraction: share of each member's target samples held out for stopping.
        learning_rate: Adam step size.
        batch_size: rows per minibatch, drawn with replacement from the member's data.
        max_steps: hard limit on optimiser steps.
        eval_every: steps between evaluations of the held-out loss; small, so that members
            with few samples (many epochs per step) are not stopped late.
        patience: evaluations without improvement before a member stops.
        held_out_noise_draws: noise draws per held-out row for losses that use noise
            (denoising score matching), fixed for the whole fit, so that successive
            evaluations compare the same quantity with less noise.
    """

    held_out_fraction: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 256
    max_steps: int = 5000
    eval_every: int = 10
    patience: int = 50
    held_out_noise_draws: int = 8


@dataclass
class FitReport:
    """Per member: the step whose weights were kept, its loss, and whether it failed."""

    best_step: list[int] = field(default_factory=list)
    best_loss: list[float] = field(default_factory=list)
    failure: list[str | None] = field(default_factory=list)


class _Stack:
    """Members stacked for ``vmap``: parameters (trainable and frozen), buffers, padded data."""

    def __init__(
        self, models: Sequence[TrainedModel], trainable: Callable[[str], bool], device: str
    ):
        if len({type(m) for m in models}) != 1:
            raise ValueError("an ensemble needs members of one architecture")
        self.models = models
        self.base = copy.deepcopy(models[0]).to(device)
        params, buffers = stack_module_state(list(models))
        params = {k: v.detach().to(device) for k, v in params.items()}
        self.buffers = {k: v.to(device) for k, v in buffers.items()}
        self.trainable = {k: v.requires_grad_() for k, v in params.items() if trainable(k)}
        self.frozen = {k: v for k, v in params.items() if not trainable(k)}
        self.dtype = next(iter(params.values())).dtype
        self.device = device

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

    def losses(self, x: Tensor, z: Tensor | None, weights: Tensor, noise: Tensor) -> Tensor:
        """Each member's training loss on its own rows and noise, (E,)."""

        def member(params, buffers, x, z, weights, noise):
            return functional_call(self.base, (params, buffers), (x, z, weights, noise))

        params = self.trainable | self.frozen
        in_dims = (0, 0, 0, None if z is None else 0, 0, 0)
        return vmap(member, in_dims=in_dims)(params, self.buffers, x, z, weights, noise)

    def noise(self, generators: Sequence[torch.Generator], *shape: int) -> Tensor:
        """(*shape[:-1], E, shape[-1], noise_features) standard normal noise, each member's from
        its own generator (nothing is drawn for models that need no noise)."""
        features = self.base.noise_features
        options = {"dtype": self.dtype}
        if features == 0:
            return torch.zeros(*shape[:-1], len(generators), shape[-1], 0, **options).to(
                self.device
            )
        draws = [torch.randn(*shape, features, generator=g, **options) for g in generators]
        return torch.stack(draws, dim=len(shape) - 1).to(self.device)

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


def fit_minibatch(
    models: Sequence[TrainedModel],
    train: Sequence[Dataset],
    held_out: Sequence[Dataset],
    seeds: Sequence[int],
    config: MinibatchConfig = MinibatchConfig(),
    trainable: Callable[[str], bool] = lambda name: True,
    device: str = "cpu",
) -> tuple[list[TrainedModel], FitReport]:
    """Train each member on its ``train`` set by Adam, stopping early on its ``held_out`` set.

    Args:
        models: E members of one architecture, already initialised.
        train, held_out: E datasets each.
        seeds: E seeds of the members' minibatch streams.
        trainable: which parameter names are trained; the others stay bit-identical.

    Returns:
        the members with their best weights (lowest held-out loss), and the report.
    """
    stack = _Stack(models, trainable, device)
    x, z, _ = stack.pad(train)
    if stack.base.noise_features:
        held_out = [d.repeated(config.held_out_noise_draws) for d in held_out]
    x_held, z_held, w_held = stack.pad(held_out)
    sizes = torch.tensor([len(d) for d in train])
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    optimiser = torch.optim.Adam(stack.trainable.values(), lr=config.learning_rate)
    ensemble = len(models)
    members = torch.arange(ensemble, device=device)[:, None]
    ones = torch.ones(ensemble, config.batch_size, dtype=stack.dtype, device=device)

    held_out_generators = [seeded_generator(s, "held-out noise") for s in seeds]
    noise_held = stack.noise(held_out_generators, x_held.shape[1])

    def held_out_losses() -> Tensor:
        with torch.no_grad():
            return stack.losses(x_held, z_held, w_held, noise_held)

    best = {k: v.detach().clone() for k, v in stack.trainable.items()}
    best_loss = held_out_losses().nan_to_num(nan=math.inf)
    best_step = torch.zeros(ensemble, dtype=torch.long)
    waiting = torch.zeros(ensemble, dtype=torch.long)
    active = torch.ones(ensemble, dtype=torch.bool)
    step = 0
    while step < config.max_steps and active.any():
        block = min(config.eval_every, config.max_steps - step)
        rows = torch.stack(
            [
                torch.randint(int(n), (block, config.batch_size), generator=g)
                for n, g in zip(sizes, generators, strict=True)
            ],
            dim=1,
        ).to(device)
        noise = stack.noise(generators, block, config.batch_size)
        for b in range(block):
            batch_x = x[members, rows[b]]
            batch_z = None if z is None else z[members, rows[b]]
            optimiser.zero_grad(set_to_none=True)
            stack.losses(batch_x, batch_z, ones, noise[b]).sum().backward()
            optimiser.step()
        step += block
        loss = held_out_losses().cpu()
        improved = active & (loss < best_loss)
        for k, v in stack.trainable.items():
            best[k][improved] = v.detach()[improved]
        best_loss = torch.where(improved, loss, best_loss)
        best_step[improved] = step
        waiting = torch.where(improved, 0, waiting + 1)
        active &= waiting < config.patience
    report = FitReport(
        best_step=best_step.tolist(),
        best_loss=best_loss.tolist(),
        failure=_failures(best_loss.tolist(), "no finite held-out loss"),
    )
    return stack.unstacked(best | stack.frozen), report


def fit_full_batch(
    models: Sequence[TrainedModel],
    train: Sequence[Dataset],
    trainable: Callable[[str], bool] = lambda name: True,
    max_iterations: int = 2000,
    tolerance: float = 1e-10,
    device: str = "cpu",
) -> tuple[list[TrainedModel], FitReport]:
    """Maximise each member's likelihood on all of its samples by L-BFGS, to convergence.

    The objective is the sum of the members' mean negative log-likelihoods, which separates,
    so its minimiser is every member's own; members agree with a lone fit up to
    ``tolerance`` on the gradient.
    """
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
