"""Each ensemble member's random stream: its minibatch rows and noise, a block of steps at a time.

Two kinds give the same things, and in both a member's draws depend on its seed alone, never
on the other members of its ensemble:
- ``GeneratorStreams``: one ``torch.Generator`` per member, drawn on the CPU and moved to the
  members' device; the engine's streams on a CPU.
- ``KeyedStreams``: counter-based Philox4x32-10 keyed by each member's seed, drawn for all
  members at once on their device; the engine's streams on a GPU, where per-member draws on
  the host would cost a call per member and a copy per block. torch has no generator keyed
  per element, so the Philox rounds are written out here (Salmon et al., "Parallel random
  numbers: as easy as 1, 2, 3", 2011; tests check its published known answers). Their
  integer arithmetic is exact on every device, so a member draws the same rows on a CPU
  and a GPU, and the same noise up to the rounding of float64 logarithms and cosines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

STREAMS = ("auto", "generator", "keyed")
"""``auto``: ``keyed`` on a GPU, ``generator`` on a CPU."""

_WORD = 0xFFFFFFFF  # 32 bits
_HALF = 0xFFFF  # 16 bits
_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_KEY_STEPS = (0x9E3779B9, 0xBB67AE85)
_ROUNDS = 10
_ROWS, _NOISE = 0, 1  # counter word 2: what a block's words are for


def normal_draws(
    generators: Sequence[torch.Generator],
    features: int,
    dtype: torch.dtype,
    *shape: int,
    lengths: Sequence[int] | None = None,
) -> Tensor:
    """(*shape[:-1], E, shape[-1], features) standard normal draws on the CPU, each member's
    from its own generator (none drawn when ``features`` is 0).

    With ``lengths``, member i draws only the first ``lengths[i]`` entries along the last
    axis of ``shape``, and the rest are zeros: torch's CPU normals of a tensor's last
    incomplete block of 16 depend on the tensor's size, so draws of a padded length would
    make a member's noise depend on the longest member of its ensemble.
    """
    if features == 0:
        return torch.zeros(*shape[:-1], len(generators), shape[-1], 0, dtype=dtype)
    *leading, padded = shape
    lengths = [padded] * len(generators) if lengths is None else lengths
    draws = [
        nn.functional.pad(
            torch.randn(*leading, length, features, generator=g, dtype=dtype),
            (0, 0, 0, padded - length),
        )
        for g, length in zip(generators, lengths, strict=True)
    ]
    return torch.stack(draws, dim=len(shape) - 1)


class GeneratorStreams:
    """A ``torch.Generator`` per member, seeded with the member's seed.

    Args:
        seeds: the L members' seeds.
        sizes: the L members' numbers of training rows.
        device: where the draws go.
    """

    def __init__(self, seeds: Sequence[int], sizes: Sequence[int], device: str):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.sizes = list(sizes)
        self.device = device

    def block(
        self, steps: int, batch: int, features: int, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor]:
        """The next ``steps`` steps' rows (steps, L, batch), each member's in [0, its size),
        and noise (steps, L, batch, features) in ``dtype``, on the device."""
        rows = torch.stack(
            [
                torch.randint(size, (steps, batch), generator=g)
                for size, g in zip(self.sizes, self.generators, strict=True)
            ],
            dim=1,
        )
        noise = normal_draws(self.generators, features, dtype, steps, batch)
        return rows.to(self.device), noise.to(self.device)

    def subset(self, keep: Sequence[bool]) -> GeneratorStreams:
        """The streams of the members where ``keep`` is true, where they stand."""
        part = GeneratorStreams([], [], self.device)
        part.generators = [g for g, kept in zip(self.generators, keep, strict=True) if kept]
        part.sizes = [n for n, kept in zip(self.sizes, keep, strict=True) if kept]
        return part


def _multiply(multiplier: int, word: Tensor) -> tuple[Tensor, Tensor]:
    """(high, low) 32-bit words of ``multiplier * word`` (both below 2^32), by 16-bit halves
    of ``word`` so that no int64 product overflows."""
    low_part = multiplier * (word & _HALF)  # < 2^48
    high_part = multiplier * (word >> 16)  # < 2^48
    middle = ((high_part & _HALF) << 16) + (low_part & _WORD)  # < 2^33
    high = (high_part >> 16) + (low_part >> 32) + (middle >> 32)
    return high, middle & _WORD


def philox(counter: Sequence[Tensor], key: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """Philox4x32-10: four 32-bit words from a counter of four and a key of two, elementwise.

    Args:
        counter: four int64 tensors of words in [0, 2^32), broadcastable together.
        key: two int64 tensors of words in [0, 2^32), broadcastable with the counter.

    Returns:
        four int64 tensors of words in [0, 2^32), of the broadcast shape.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_ in range(_ROUNDS):
        if round_:
            k0, k1 = (k0 + _KEY_STEPS[0]) & _WORD, (k1 + _KEY_STEPS[1]) & _WORD
        high0, low0 = _multiply(_MULTIPLIERS[0], c0)
        high1, low1 = _multiply(_MULTIPLIERS[1], c2)
        c0, c1, c2, c3 = high1 ^ c1 ^ k0, low1, high0 ^ c3 ^ k1, low0
    return c0, c1, c2, c3


def _uniform(words: Tensor) -> Tensor:
    """Words in [0, 2^32) as float64 uniforms in (0, 1): (word + 1/2) / 2^32."""
    return (words.double() + 0.5) * 2.0**-32


class KeyedStreams:
    """Philox streams keyed by each member's seed (its low and high 32 bits).

    Block b of a member's draws is Philox at counters (i, b, purpose, 0), i = 0, 1, ...: the
    rows from purpose 0, the noise from purpose 1. Arguments as ``GeneratorStreams``; keys
    and sizes live on the device, so that a block's draws need nothing from the host.
    """

    def __init__(self, seeds: Sequence[int], sizes: Sequence[int], device: str):
        keys = [[seed & _WORD, (seed >> 32) & _WORD] for seed in seeds]
        self.keys = torch.tensor(keys, dtype=torch.int64, device=device).reshape(-1, 2)
        self.sizes = torch.tensor(list(sizes), dtype=torch.float64, device=device)
        self.blocks = 0  # drawn so far, the same for every member

    def _words(self, purpose: int, count: int) -> Tensor:
        """(L, count) words of the current block for ``purpose``."""
        index = torch.arange(math.ceil(count / 4), device=self.keys.device)
        block = torch.full_like(index, self.blocks)
        counter = (index, block, torch.full_like(index, purpose), torch.zeros_like(index))
        key = (self.keys[:, :1], self.keys[:, 1:])
        return torch.stack(philox(counter, key), -1).flatten(-2)[:, :count]

    def block(
        self, steps: int, batch: int, features: int, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor]:
        """As ``GeneratorStreams.block``; rows by flooring uniforms times the size, noise by
        the Box-Muller transform of pairs of uniforms, both computed in float64."""
        members = len(self.keys)
        rows = (_uniform(self._words(_ROWS, steps * batch)) * self.sizes[:, None]).long()
        rows = rows.view(members, steps, batch).transpose(0, 1)
        count = steps * batch * features
        uniforms = _uniform(self._words(_NOISE, count + count % 2)).view(members, -1, 2)
        radius = (-2 * uniforms[..., 0].log()).sqrt()
        angle = 2 * math.pi * uniforms[..., 1]
        normals = torch.stack([radius * angle.cos(), radius * angle.sin()], -1).flatten(-2)
        noise = normals[:, :count].view(members, steps, batch, features).transpose(0, 1)
        self.blocks += 1
        return rows, noise.to(dtype)

    def subset(self, keep: Sequence[bool]) -> KeyedStreams:
        """The streams of the members where ``keep`` is true, where they stand."""
        part = KeyedStreams([], [], self.keys.device)
        kept = torch.tensor(list(keep), device=self.keys.device)
        part.keys, part.sizes, part.blocks = self.keys[kept], self.sizes[kept], self.blocks
        return part


def make_streams(
    kind: str, seeds: Sequence[int], sizes: Sequence[int], device: str
) -> GeneratorStreams | KeyedStreams:
    """The streams of ``kind`` (one of ``STREAMS``) of members with ``seeds`` and ``sizes``
    training rows, drawing on ``device``."""
    if kind not in STREAMS:
        raise ValueError(f"streams {kind!r}: expected one of {', '.join(STREAMS)}")
    if kind == "auto":
        kind = "keyed" if str(device).startswith("cuda") else "generator"
    return {"generator": GeneratorStreams, "keyed": KeyedStreams}[kind](seeds, sizes, device)
