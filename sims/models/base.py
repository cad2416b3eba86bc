"""What every trained density model shares: an embedding part, a head, and a training loss.

A model's ``embedding`` sub-module is the part that transfers between tasks; everything
else is its head. Freezing the embedding means leaving out the parameters whose names start
with ``"embedding."``.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import zuko
from torch import Tensor, nn

from sims.models.precision import network_dtype

EMBEDDING_PREFIX = "embedding."


def is_embedding_parameter(name: str) -> bool:
    """Whether the parameter ``name`` belongs to a model's embedding part."""
    return name.startswith(EMBEDDING_PREFIX)


class TrainedModel(nn.Module):
    """What the training engine trains: an ``embedding`` part, a head, and a loss.

    ``forward(x, z, weight, noise)`` is the weighted training loss on rows x (N, d_x) and
    z (N, d_z) or ``None``, with weight (N,) 0 on padding rows; ``noise`` (N,
    ``noise_features``) is standard normal noise the engine draws from the member's own
    stream, for losses that need randomness. A conditional model reads z only through
    ``embedding(z)``: where its embedding is frozen, the engine applies it to each row once
    and runs the model with the identity in its place.

    Each kind declares how it is evaluated against the truth (``sims.evaluation``):
    ``evaluation`` is ``density`` (its log-density) or ``score`` (its score, the ODE
    likelihood, reverse-SDE samples), and ``closed_form`` names the errors it has in closed
    form beyond those (``None``: none).
    """

    embedding: nn.Module
    noise_features: int = 0
    evaluation: str = "density"
    closed_form: str | None = None

    def as_input(self, tensor: Tensor | None) -> Tensor | None:
        """``tensor`` on the model's device and in its dtype (``None`` stays ``None``)."""
        if tensor is None:
            return None
        parameter = next(self.parameters())
        return tensor.to(parameter.device, parameter.dtype)


class DensityModel(TrainedModel):
    """A model of log p(x | z) (z is ``None`` for unconditional models).

    Subclasses implement ``log_prob``; the training loss is the weighted negative
    log-likelihood.
    """

    def log_prob(self, x: Tensor, z: Tensor | None) -> Tensor:
        """log p(x | z) in nats for x (N, d_x) and z (N, d_z) or ``None``; returns (N,)."""
        raise NotImplementedError

    def forward(self, x: Tensor, z: Tensor | None, weight: Tensor, noise: Tensor) -> Tensor:
        """Weighted mean negative log-likelihood (``noise`` is not used)."""
        return -(self.log_prob(x, z) * weight).sum() / weight.sum()

    def truth_log_prob(self, x: Tensor, z: Tensor | None) -> Tensor:
        """``log_prob`` for the float64 CPU tensors of ``sims.metrics.divergences``."""
        return self.log_prob(self.as_input(x), self.as_input(z)).to("cpu", torch.float64)


_LINEAR_LAYERS = (nn.Linear, zuko.nn.Linear)
"""torch's linear layers (zuko's masked ones among them) and zuko's own."""


def _weight(layer: nn.Module) -> Tensor:
    """The weight a linear layer multiplies by: zuko's masked layers apply their mask."""
    if isinstance(layer, zuko.nn.MaskedLinear):
        return layer.mask * layer.weight
    return layer.weight


def run_layers(layers: nn.Sequential, x: Tensor) -> Tensor:
    """``layers`` applied in turn to x; inside ``sims.models.precision.networks_in("bfloat16")``
    in bfloat16 (weights and activations), the output back in x's dtype."""
    dtype = network_dtype()
    if dtype is None:
        return nn.Sequential.forward(layers, x)
    # cast by hand, not by torch.autocast: it leaves bias additions in float32, and so
    # converts every hidden activation forward and back
    h = x.to(dtype)
    for layer in layers:
        if isinstance(layer, _LINEAR_LAYERS):
            bias = None if layer.bias is None else layer.bias.to(dtype)
            h = nn.functional.linear(h, _weight(layer).to(dtype), bias)
        else:
            h = layer(h)
    return h.to(x.dtype)


class Network(nn.Sequential):
    """Layers applied in turn, in the precision of ``run_layers``."""

    def forward(self, x: Tensor) -> Tensor:
        return run_layers(self, x)


def mlp(d_in: int, d_out: int, hidden: int, layers: int = 2) -> Network:
    """A SiLU perceptron with ``layers`` hidden layers of width ``hidden``."""
    widths = [d_in] + [hidden] * layers
    blocks = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        blocks += [nn.Linear(a, b), nn.SiLU()]
    return Network(*blocks, nn.Linear(widths[-1], d_out))


def _path(prefix: str, name: str) -> str:
    return f"{prefix}__{name}" if prefix else name


def tensor_leaves(value, prefix: str = ""):
    """(path, tensor) for every tensor in a nested frozen dataclass; paths join names by '__'."""
    if isinstance(value, Tensor):
        yield prefix, value
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from tensor_leaves(getattr(value, field.name), _path(prefix, field.name))


def rebuilt(template, lookup, prefix: str = ""):
    """``template`` with each tensor replaced by ``lookup(path)`` (paths of ``tensor_leaves``)."""
    if isinstance(template, Tensor):
        return lookup(prefix)
    if dataclasses.is_dataclass(template):
        fields = {
            f.name: rebuilt(getattr(template, f.name), lookup, _path(prefix, f.name))
            for f in dataclasses.fields(template)
        }
        return dataclasses.replace(template, **fields)
    return template


class FixedEmbedding(nn.Module):
    """A known map z -> h(z), e.g. the truth's embedding for the ``oracle`` method.

    The map is a frozen dataclass of tensors (see ``sims.generators.embeddings``); its
    tensors become buffers, so that ensembles stack each member's own map and ``.to``
    moves it. It is evaluated in float64 and cast to the input's dtype.
    """

    def __init__(self, function):
        super().__init__()
        self.template = function
        for path, tensor in tensor_leaves(function):
            self.register_buffer(path, tensor)

    def forward(self, z: Tensor) -> Tensor:
        function = rebuilt(self.template, lambda path: getattr(self, path))
        return function(z.to(torch.float64)).to(z.dtype)


class Standardiser(nn.Module):
    """u = (x - shift) / scale with fixed buffers, and log |du/dx| = -sum log scale.

    Spline flows act on a bounded box, so each model sees its data standardised.
    """

    def __init__(self, shift: Tensor, scale: Tensor):
        super().__init__()
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    @classmethod
    def per_coordinate(cls, x: Tensor) -> Standardiser:
        """Mean and standard deviation of each coordinate of x (N, d)."""
        return cls(x.mean(0), x.std(0).clamp(min=1e-6))

    @classmethod
    def isotropic(cls, x: Tensor) -> Standardiser:
        """Mean of x and one scale for all coordinates: the largest standard deviation along
        any direction, so that a rotation of x commutes with the standardisation."""
        top_variance = torch.linalg.eigvalsh(torch.cov(x.T).reshape(x.shape[1], x.shape[1]))[-1]
        return cls(x.mean(0), top_variance.clamp(min=1e-12).sqrt().expand(x.shape[1]).clone())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised x (N, d) and the log-Jacobian, a scalar."""
        return (x - self.shift) / self.scale, -self.scale.log().sum()


LOG_2PI = math.log(2 * math.pi)
