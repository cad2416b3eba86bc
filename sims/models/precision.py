"""The precision of the networks' matrix products during training steps.

Training may run the networks built by ``sims.models.base.mlp``, and the conditioner
networks of spline flows (``sims.models.splines``), in bfloat16: each step
multiplies bfloat16 copies of the weights and keeps the hidden activations in bfloat16,
while the weights themselves, their gradients and the optimiser state stay float32, and
each network's output is cast back to float32. Nothing else follows: the exact parts of a
model (a subspace frame, a closed-form latent law, the spline arithmetic of flows), every
held-out loss and every evaluation stay in float32 or float64. Only batched products large
enough to be limited by arithmetic gain from it, which on a CPU means an ensemble's, not
one model's.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

PRECISIONS = ("auto", "float32", "bfloat16")
"""``auto``: bfloat16 where the device multiplies bfloat16 matrices natively, else float32."""

_NETWORK_DTYPE: contextvars.ContextVar[torch.dtype | None] = contextvars.ContextVar(
    "network_dtype", default=None
)


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` (``cpu`` or ``cuda[:i]``) has native bfloat16 matrix products."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    # torch has no public query for the CPU's bfloat16 instructions; oneDNN's check is it
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


def resolve(precision: str, device: str) -> str:
    """``precision`` (one of ``PRECISIONS``) as ``float32`` or ``bfloat16`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


@contextlib.contextmanager
def networks_in(precision: str) -> Iterator[None]:
    """Within the block, networks run by ``run_layers`` multiply in ``precision`` (``float32`` or
    ``bfloat16``, as ``resolve`` gives)."""
    dtype = {"float32": None, "bfloat16": torch.bfloat16}[precision]
    token = _NETWORK_DTYPE.set(dtype)
    try:
        yield
    finally:
        _NETWORK_DTYPE.reset(token)


def network_dtype() -> torch.dtype | None:
    """The dtype of the current ``networks_in`` block; ``None`` for float32."""
    return _NETWORK_DTYPE.get()
