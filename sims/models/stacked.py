"""Models of one architecture stacked along a leading member dimension, run in one ``vmap``.

``torch.func.stack_module_state`` stacks the members' parameters and buffers, and
``functional_call`` runs a copy of the first member with member i's own tensors on member
i's slice of every argument. Whatever the method computes (a loss, a log-density, a score)
is computed inside the function that ``functional_call`` runs, so that it sees the
member's parameters and not the copy's.

A conditional model reads z only through ``embedding(z)`` (``sims.models.base``), so where
the embedding is fixed (frozen in training, or at evaluation) each row's condition can be
embedded once (``embedded_each``) and the model run with the identity in its place
(``without_embedding``, on ``head_state``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from sims.models.base import EMBEDDING_PREFIX, is_embedding_parameter

State = dict[str, Tensor]
EMBEDDED_ROWS = 2**15  # rows of all members together embedded in one call


def check_one_architecture(models: Sequence[nn.Module]) -> None:
    """Raise ``ValueError`` unless ``models`` are of one class."""
    if len({type(m) for m in models}) != 1:
        raise ValueError("an ensemble needs members of one architecture")


def stacked_state(models: Sequence[nn.Module], device: str) -> tuple[nn.Module, State, State]:
    """A copy of the first model on ``device`` (the template ``functional_call`` runs) and
    the members' parameters (detached) and buffers, each stacked to (E, ...) on ``device``."""
    check_one_architecture(models)
    base = copy.deepcopy(models[0]).to(device)
    params, buffers = stack_module_state(list(models))
    params = {k: v.detach().to(device) for k, v in params.items()}
    return base, params, {k: v.to(device) for k, v in buffers.items()}


def call_each(module: nn.Module, params: State, buffers: State, *args) -> Tensor:
    """``module(*args)`` for every member at once: member i runs with its own ``params`` and
    ``buffers`` (stacked (E, ...)) on slice i of each tensor argument (E, ...); other
    arguments (``None``, numbers) go to every member as they are. Returns the outputs
    stacked (E, ...)."""

    def member(params, buffers, *args):
        return functional_call(module, (params, buffers), args)

    in_dims = (0, 0) + tuple(0 if isinstance(a, Tensor) else None for a in args)
    return vmap(member, in_dims=in_dims)(params, buffers, *args)


def embedding_state(state: State) -> State:
    """The entries of a model's ``state`` (parameters or buffers by name) that belong to its
    embedding part, named as within the embedding."""
    return {
        k.removeprefix(EMBEDDING_PREFIX): v for k, v in state.items() if is_embedding_parameter(k)
    }


def head_state(state: State) -> State:
    """The entries of a model's ``state`` outside its embedding part."""
    return {k: v for k, v in state.items() if not is_embedding_parameter(k)}


def without_embedding(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with the identity as its embedding: it takes each row's embedded
    condition in place of z, and runs on ``head_state`` of the model's state."""
    head = copy.deepcopy(model)
    head.embedding = nn.Identity()
    return head


def embedded_each(model: nn.Module, params: State, buffers: State, z: Tensor) -> Tensor:
    """Each member's embedding of its own rows z (E, n, d_z), without gradients: (E, n, d_h).
    ``params`` and ``buffers`` are the members' whole states stacked (E, ...), ``model`` the
    template; rows go in groups that stay within ``EMBEDDED_ROWS`` for all members together."""
    params, buffers = embedding_state(params), embedding_state(buffers)
    step = max(1, EMBEDDED_ROWS // z.shape[0])
    with torch.no_grad():
        return torch.cat(
            [
                call_each(model.embedding, params, buffers, z[:, start : start + step])
                for start in range(0, z.shape[1], step)
            ],
            dim=1,
        )


class _Method(nn.Module):
    """A module whose forward is ``model.<name>``, for ``functional_call``."""

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, *args):
        return getattr(self.model, self.name)(*args)


class StackedModels:
    """E trained models of one architecture as one batched model on ``device``, for
    evaluation: ``score`` and ``log_prob`` take the members' inputs stacked (E, N, ...) in
    any float dtype (on any device) and return float64 on ``device``, without gradients to
    the weights."""

    def __init__(self, models: Sequence[nn.Module], device: str = "cpu"):
        base, params, buffers = stacked_state(models, device)
        self._hold(base, params, buffers)
        self.dtype = next(iter(params.values())).dtype
        self.device = device

    def _hold(self, base: nn.Module, params: State, buffers: State) -> None:
        """Run ``base`` with the members' ``params`` and ``buffers``."""
        self.base, self.state = base, (params, buffers)
        prefixed = lambda state: {f"model.{k}": v for k, v in state.items()}  # noqa: E731
        self.params, self.buffers = prefixed(params), prefixed(buffers)
        self.methods = {name: _Method(base, name) for name in ("log_prob", "score")}

    def on_conditions(self, z: Tensor | None) -> tuple[StackedModels, Tensor | None]:
        """For many calls on the same conditions z (E, N, d_z): these models with their
        embedding left out, and each member's embedding of its rows (E, N, d_h), which the
        returned models take in place of z. Where z is ``None``, these models and ``None``."""
        if z is None:
            return self, None
        params, buffers = self.state
        embedded = embedded_each(self.base, params, buffers, z.to(self.device, self.dtype))
        heads = copy.copy(self)
        heads._hold(without_embedding(self.base), head_state(params), head_state(buffers))
        return heads, embedded

    def _call(self, name: str, *args) -> Tensor:
        inputs = [a.to(self.device, self.dtype) if isinstance(a, Tensor) else a for a in args]
        output = call_each(self.methods[name], self.params, self.buffers, *inputs)
        return output.to(torch.float64)

    def log_prob(self, x: Tensor, z: Tensor | None) -> Tensor:
        """log p_i(x_i | z_i) in nats for x (E, N, d_x) and z (E, N, d_z) or ``None``; (E, N)."""
        with torch.no_grad():
            return self._call("log_prob", x, z)

    def score(self, x: Tensor, z: Tensor | None, tau: float) -> Tensor:
        """s_i(x_i, tau | z_i) for x (E, N, d_x), z (E, N, d_z) or ``None``; (E, N, d_x).

        Differentiable in x (the likelihood ODE takes its divergence)."""
        return self._call("score", x, z, float(tau))
