"""The log-density of a zuko neural spline flow, with its spline arithmetic written out.

``spline_log_prob(flow, x, context)`` equals zuko's ``flow(context).log_prob(x)`` up to
rounding, for every ``zuko.flows.NSF``: masked autoregressive transforms (or, with
one feature, element-wise ones) whose univariate maps are monotonic rational-quadratic
splines on [-B, B], identity outside, over a standard normal base.

It is written by hand, not left to zuko's transform objects, for speed in ensembles, where
every tensor operation carries a fixed cost under ``vmap``: zuko builds each spline from
three parameter tensors with three gathers (a forward and backward pass of a conditional
flow of 3 transforms takes 1094 tensor operations there, 835 here), and torch's softmax
over a last dimension of 8 bins is several times slower on a CPU than the one written
here. The conditioner networks follow ``sims.models.precision`` like the networks of
``sims.models.base.mlp``, so that in bfloat16 training steps their products run in
bfloat16 too; the spline arithmetic always runs in the input's dtype. zuko still builds,
initialises, inverts and samples the flow.
"""

from __future__ import annotations

import functools
import math

import torch
import zuko
from torch import Tensor
from torch.nn import functional

from sims.models.base import LOG_2PI, run_layers


@functools.cache
def _squash_scales(bins: int, slope: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """zuko's squashing v / (1 + |a v|) of the unconstrained parameters, a per parameter:
    2 / log(slope) for the 2K widths and heights, 1 / log(slope) for the K - 1 derivatives.
    Kept per device, so that no training step copies it from the host (on a GPU, a copy
    would wait for the device)."""
    log_slope = math.log(slope)
    scales = (2 / log_slope,) * (2 * bins) + (1 / log_slope,) * (bins - 1)
    return torch.tensor(scales, device=device, dtype=dtype)


def rational_quadratic(
    x: Tensor, parameters: Tensor, bound: float, slope: float
) -> tuple[Tensor, Tensor]:
    """zuko's monotonic rational-quadratic spline, y and log dy/dx, elementwise.

    Args:
        x: (..., F) inputs.
        parameters: (..., F, 3K - 1) unconstrained widths (K), heights (K) and inner knot
            derivatives (K - 1) of each coordinate's spline, as zuko packs them.
        bound: the spline maps [-bound, bound] onto itself; outside it is the identity.
        slope: the smallest derivative at a knot.

    Returns:
        y (..., F) and log dy/dx (..., F), 0 outside the bound.
    """
    bins = (parameters.shape[-1] + 1) // 3
    scales = _squash_scales(bins, slope, parameters.device, parameters.dtype)
    parameters = parameters / (1 + (parameters * scales).abs())
    sizes = parameters[..., : 2 * bins].unflatten(-1, (2, bins))
    # softmax over the bins of the widths and of the heights at once
    weights = (sizes - sizes.amax(-1, keepdim=True)).exp()
    cumulative = (weights / weights.sum(-1, keepdim=True)).cumsum(-1)
    knots = bound * (2 * functional.pad(cumulative, (1, 0)) - 1)  # (..., F, 2, K + 1)
    derivatives = functional.pad(parameters[..., 2 * bins :], (1, 1)).exp()
    table = torch.cat([knots, derivatives.unsqueeze(-2)], -2)  # (..., F, 3, K + 1): x, y, d

    k = (knots[..., 0, :] < x.unsqueeze(-1)).sum(-1) - 1  # the bin of x, -1 or K outside
    inside = (k >= 0) & (k < bins)
    k = k % bins
    ends = torch.stack([k, k + 1], -1).unsqueeze(-2).expand(*k.shape, 3, 2)
    (x0, x1), (y0, y1), (d0, d1) = (pair.unbind(-1) for pair in table.gather(-1, ends).unbind(-2))

    # zuko's formulas (Durkan et al. 2019, eqs. 4 and 5), term by term
    width, height = x1 - x0, y1 - y0
    s = height / width
    z = inside * (x - x0) / width
    zz = z * (1 - z)
    denominator = s + (d0 + d1 - 2 * s) * zz
    y = y0 + height * (s * z**2 + d0 * zz) / denominator
    derivative = s**2 * (2 * s * zz + d0 * (1 - z) ** 2 + d1 * z**2) / denominator**2
    return torch.where(inside, y, x), inside * derivative.log()


def _spline_parameters(transform, x: Tensor, context: Tensor | None) -> Tensor:
    """(..., F, 3K - 1): the packed spline parameters one of the flow's transforms gives x."""
    if isinstance(transform, zuko.flows.MaskedAutoregressiveTransform):
        inputs = x if context is None else torch.cat([x, context.expand(*x.shape[:-1], -1)], -1)
        return run_layers(transform.hyper, inputs).unflatten(-1, (-1, transform.total))
    if context is not None:  # element-wise (one feature): the parameters depend on context
        return run_layers(transform.hyper, context).unflatten(-1, (-1, transform.total))
    packed = torch.cat(list(transform.phi), -1)  # (F, 3K - 1)
    return packed.expand(*x.shape, -1)


def _spline_options(transform) -> tuple[float, float]:
    """(bound, slope) of the transform's splines; raises ``TypeError`` for other maps."""
    univariate = transform.univariate
    if getattr(univariate, "func", None) is not zuko.transforms.MonotonicRQSTransform:
        raise TypeError(f"{type(transform).__name__} does not use rational-quadratic splines")
    return univariate.keywords.get("bound", 5.0), univariate.keywords.get("slope", 1e-3)


def spline_log_prob(flow: zuko.flows.NSF, x: Tensor, context: Tensor | None = None) -> Tensor:
    """log p(x | context) in nats under ``flow``, as ``flow(context).log_prob(x)``: the
    transforms in turn, then zuko's standard normal base.

    Args:
        flow: a zuko neural spline flow over F features.
        x: (..., F) points.
        context: (..., C) conditions, or ``None`` for an unconditional flow.

    Returns:
        (...,) log-densities.
    """
    log_det = 0
    for transform in flow.transform.transforms:
        bound, slope = _spline_options(transform)
        parameters = _spline_parameters(transform, x, context)
        x, log_derivative = rational_quadratic(x, parameters, bound, slope)
        log_det = log_det + log_derivative.sum(-1)
    return log_det - 0.5 * (x**2).sum(-1) - 0.5 * x.shape[-1] * LOG_2PI
