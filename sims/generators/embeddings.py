"""Shared embeddings h: R^{d_z} -> R^{d_h}, and how a source task's embedding departs from h.

Every embedding can be blended with an independent draw of its own kind: the similarity knob
delta in [0, 1] gives the source the embedding h_delta, equal to h at delta = 0 and to the
independent h' at delta = 1. Weights sqrt(1 - delta) and sqrt(delta) keep the variance of a
blend of two independent embeddings equal to theirs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor

from sims.generators.fourier import FourierSeries
from sims.generators.linalg import nearest_frame, random_frame
from sims.validation import check_choice

T = TypeVar("T")


class Embedding(Protocol):
    """A map from conditions z (N, d_z) to embeddings (N, d_h)."""

    def __call__(self, z: Tensor) -> Tensor: ...

    def mix(self, other, similarity: float): ...


def interpolate(first: T, second: T, similarity: float, mix: Callable[[T, T, float], T]) -> T:
    """``first`` at similarity 0, ``second`` at 1, ``mix(first, second, similarity)`` between."""
    if similarity == 0.0:
        return first
    if similarity == 1.0:
        return second
    return mix(first, second, similarity)


def blend_embeddings(h: Embedding, h_prime: Embedding, similarity: float) -> Embedding:
    """The source embedding h_delta of the similarity knob: h at 0, h' at 1."""
    return interpolate(h, h_prime, similarity, lambda a, b, s: a.mix(b, s))


@dataclass(frozen=True)
class LinearEmbedding:
    """h(z) = W z with W (d_h, d_z) of orthonormal rows: a projection onto a d_h-subspace."""

    weight: Tensor

    @classmethod
    def random(cls, rng: np.random.Generator, d_z: int, d_h: int) -> LinearEmbedding:
        """Uniformly random d_h-dimensional subspace of R^{d_z}."""
        return cls(random_frame(rng, d_z, d_h).T)

    def __call__(self, z: Tensor) -> Tensor:
        return z @ self.weight.T

    def mix(self, other: LinearEmbedding, similarity: float) -> LinearEmbedding:
        """Orthonormal rows nearest to sqrt(1 - delta) W + sqrt(delta) W'."""
        blend = math.sqrt(1 - similarity) * self.weight + math.sqrt(similarity) * other.weight
        return LinearEmbedding(nearest_frame(blend.T).T)


@dataclass(frozen=True)
class TanhEmbedding:
    """h(z) = tanh(A z), A (d_h, d_z): a parametric embedding with d_h * d_z parameters."""

    weight: Tensor

    @classmethod
    def random(cls, rng: np.random.Generator, d_z: int, d_h: int) -> TanhEmbedding:
        """A with N(0, 1/d_z) entries, so each pre-activation has unit variance."""
        return cls(torch.from_numpy(rng.standard_normal((d_h, d_z)) / math.sqrt(d_z)))

    def __call__(self, z: Tensor) -> Tensor:
        return torch.tanh(z @ self.weight.T)

    def mix(self, other: TanhEmbedding, similarity: float) -> TanhEmbedding:
        """tanh of sqrt(1 - delta) A + sqrt(delta) A', which has the law of A."""
        blend = math.sqrt(1 - similarity) * self.weight + math.sqrt(similarity) * other.weight
        return TanhEmbedding(blend)


@dataclass(frozen=True)
class SeriesEmbedding:
    """h = a random Fourier series (``sims.generators.fourier``), standardised to mean 0 and
    variance 1 per output under z ~ N(0, I) (exactly, from the series' closed-form moments)."""

    series: FourierSeries

    def __call__(self, z: Tensor) -> Tensor:
        return self.series(z)

    def mix(self, other: SeriesEmbedding, similarity: float) -> SeriesEmbedding:
        """sqrt(1 - delta) h + sqrt(delta) h', standardised again."""
        blend = self.series.combine(other.series, math.sqrt(1 - similarity), math.sqrt(similarity))
        return SeriesEmbedding(blend.standardised())


EMBEDDING_KINDS = ("matern", "ridge", "tanh")


@dataclass(frozen=True)
class Smoothness:
    """How the random smooth maps of a family are drawn.

    Attributes:
        kind: ``matern`` (isotropic: Matérn random Fourier features) or ``ridge`` (a ridge
            series, one-dimensional in effect).
        lengthscale: of a Matérn map, per unit of sqrt(input dimension): a map of D inputs
            has lengthscale ``lengthscale * sqrt(D)``, the typical distance between two
            inputs drawn from N(0, I_D), so that it stays learnable while its difficulty
            grows with D.
        n_features: terms of a Matérn map; n_terms: terms of a ridge series.
    """

    kind: str = "matern"
    lengthscale: float = 1.0
    n_features: int = 256
    n_terms: int = 64

    def __post_init__(self):
        check_choice("maps", self.kind, ("matern", "ridge"))

    def draw(self, rng: np.random.Generator, d_in: int, d_out: int, beta: float) -> FourierSeries:
        """A random map R^{d_in} -> R^{d_out} of smoothness ``beta``."""
        if self.kind == "ridge":
            return FourierSeries.ridge(rng, d_in, d_out, beta, self.n_terms)
        length = self.lengthscale * math.sqrt(d_in)
        return FourierSeries.matern(rng, d_in, d_out, beta, length, self.n_features)


def draw_embedding(
    kind: str, rng: np.random.Generator, d_z: int, d_h: int, beta_h: float, maps: Smoothness
) -> Embedding:
    """A random embedding: ``matern`` or ``ridge`` (nonparametric, smoothness beta_h, drawn
    as ``maps`` says but for its kind), or ``tanh`` (parametric)."""
    check_choice("embedding", kind, EMBEDDING_KINDS)
    if kind == "tanh":
        return TanhEmbedding.random(rng, d_z, d_h)
    series = replace(maps, kind=kind).draw(rng, d_z, d_h, beta_h)
    return SeriesEmbedding(series.standardised())
