"""Architectures: for each family, one model with an embedding part and a head, built the
same way for every method (only what is trained, and on what, differs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from torch import nn

from sims.data import Dataset
from sims.generators import GaussianMixture, TaskPair
from sims.models.base import DensityModel, FixedEmbedding, Standardiser, TrainedModel
from sims.models.flows import (
    ConditionalFlow,
    FixedFrame,
    LatentAffineFlow,
    SubspaceFlow,
)
from sims.models.latent import FixedLatent
from sims.models.linear_gaussian import LinearGaussianModel
from sims.models.scores import (
    ConditionalScore,
    LatentAffineScore,
    LinearScoreModel,
    SubspaceScore,
)


class Architecture(Protocol):
    """What a model kind gives the methods and the runner.

    Attributes:
        name: the ``model`` column of a results row.
        families: the families it has a model for.
        full_batch: fitted by full-batch L-BFGS to convergence (else Adam on minibatches).
    """

    name: ClassVar[str]
    families: ClassVar[tuple[str, ...]]
    full_batch: ClassVar[bool]

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> TrainedModel:
        """A fresh model for ``pair``, standardised on ``data``, over ``embedding`` where
        given (else a fresh embedding part)."""
        ...

    def true_embedding(self, pair: TaskPair) -> nn.Module:
        """The truth's embedding as a frozen module, which ``oracle`` trains a head over."""
        ...


def check_family(architecture: Architecture, pair: TaskPair) -> None:
    """Raise ``ValueError`` unless ``architecture`` has a model for the family of ``pair``."""
    if pair.family not in architecture.families:
        raise ValueError(
            f"family={pair.family!r} has no {architecture.name} model: expected one of "
            f"{list(architecture.families)}"
        )


def true_embedding(pair: TaskPair) -> nn.Module:
    """The target's true embedding part, as a module without parameters: h for conditional
    families, the frame U of ``shared_subspace``, the latent law of ``shared_latent``."""
    target = pair.target
    if target.d_z is not None:
        return FixedEmbedding(target.embedding)
    if pair.family == "shared_subspace":
        return FixedFrame(target.params["U"])
    names = ("latent_log_weights", "latent_means", "latent_covariances")
    return FixedLatent(GaussianMixture(*(target.params[n] for n in names)))


@dataclass(frozen=True)
class FlowArchitecture:
    """Neural spline flows: ``ConditionalFlow`` for conditional families, ``SubspaceFlow``
    for ``shared_subspace``, ``LatentAffineFlow`` for ``shared_latent``.

    Attributes:
        hidden: width of every hidden layer; transforms, bins: of each spline flow.
    """

    hidden: int = 64
    transforms: int = 3
    bins: int = 8
    full_batch = False
    name = "flow"
    families = ("gaussian_smooth", "linear_gaussian", "mixture", "shared_latent", "shared_subspace")

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> DensityModel:
        """A fresh model for ``pair``, standardised on ``data``; ``embedding`` if given."""
        check_family(self, pair)
        c = pair.config
        sizes = {"hidden": self.hidden, "transforms": self.transforms, "bins": self.bins}
        if pair.target.d_z is not None:
            standardiser = Standardiser.per_coordinate(data.x.float())
            return ConditionalFlow(c["d_x"], c["d_z"], c["d_h"], standardiser, embedding, **sizes)
        if pair.family == "shared_subspace":
            standardiser = Standardiser.isotropic(data.x.float())
            return SubspaceFlow(
                c["d_x"], c["d_h"], standardiser, data.x.float(), embedding, **sizes
            )
        standardiser = Standardiser.per_coordinate(data.x.float())  # shared_latent
        return LatentAffineFlow(c["d_x"], standardiser, data.x.float(), embedding)

    def true_embedding(self, pair: TaskPair) -> nn.Module:
        return true_embedding(pair)


@dataclass(frozen=True)
class LinearGaussianArchitecture:
    """The well-specified model of ``linear_gaussian``, fitted by full-batch L-BFGS."""

    full_batch = True
    name = "linear_gaussian"
    families = ("linear_gaussian",)

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> DensityModel:
        check_family(self, pair)
        c = pair.config
        return LinearGaussianModel(c["d_x"], c["d_z"], c["d_h"], embedding)

    def true_embedding(self, pair: TaskPair) -> nn.Module:
        return true_embedding(pair)


@dataclass(frozen=True)
class LinearScoreArchitecture:
    """The well-specified linear score model of ``linear_gaussian``, trained by denoising
    score matching (its expectation over noise and time in closed form, minimised by full-batch
    L-BFGS): the parametric anchor for diffusion, whose sampler law is exact."""

    tau0: float = 1e-3
    full_batch = True
    name = "linear_score"
    families = ("linear_gaussian",)

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> TrainedModel:
        check_family(self, pair)
        c = pair.config
        return LinearScoreModel(c["d_x"], c["d_z"], c["d_h"], embedding, pair.target.sde, self.tau0)

    def true_embedding(self, pair: TaskPair) -> nn.Module:
        return true_embedding(pair)


@dataclass(frozen=True)
class ScoreArchitecture:
    """Score models trained by denoising score matching: ``ConditionalScore`` for the
    conditional families, ``SubspaceScore`` for ``shared_subspace``, ``LatentAffineScore``
    for ``shared_latent``.

    Attributes:
        hidden, layers: size of the networks; components: of a learned latent mixture;
        tau0: early-stopping time of training.
    """

    hidden: int = 128
    layers: int = 3
    components: int = 8
    tau0: float = 1e-3
    full_batch = False
    name = "diffusion"
    families = ("gaussian_smooth", "linear_gaussian", "mixture", "shared_latent", "shared_subspace")

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> TrainedModel:
        check_family(self, pair)
        c = pair.config
        sizes = {"hidden": self.hidden, "layers": self.layers, "tau0": self.tau0}
        if pair.target.d_z is not None:
            return ConditionalScore(
                c["d_x"], c["d_z"], c["d_h"], embedding, sde=pair.target.sde, **sizes
            )
        if pair.family == "shared_subspace":
            return SubspaceScore(
                c["d_x"], c["d_h"], data.x, embedding, sde=pair.target.sde, **sizes
            )
        return LatentAffineScore(  # shared_latent
            c["d_x"], data.x, embedding, self.components, pair.target.sde, self.tau0
        )

    def true_embedding(self, pair: TaskPair) -> nn.Module:
        return true_embedding(pair)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        FlowArchitecture(),
        ScoreArchitecture(),
        LinearGaussianArchitecture(),
        LinearScoreArchitecture(),
    )
}
"""The models by name (the ``model`` column of a results row); each lists the ``families``
it has an architecture for."""
