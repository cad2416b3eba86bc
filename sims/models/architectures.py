"""Architectures: for each family, one model with an embedding part and a head, built the
same way for every method (only what is trained, and on what, differs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from torch import nn

from sims.data import Dataset
from sims.generators import GaussianMixture, TaskPair, family_params, family_structure
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
        structures: the family structures it builds models for (``sims.generators``).
        params: the ``params`` a family's tasks must carry for its models.
        full_batch: fitted by full-batch L-BFGS to convergence (else Adam on minibatches).
    """

    name: ClassVar[str]
    structures: ClassVar[tuple[str, ...]]
    params: ClassVar[tuple[str, ...]]
    full_batch: ClassVar[bool]

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> TrainedModel:
        """A fresh model for ``pair``, standardised on ``data``, over ``embedding`` where
        given (else a fresh embedding part)."""
        ...

    def true_embedding(self, pair: TaskPair) -> nn.Module:
        """The truth's embedding as a frozen module, which ``oracle`` trains a head over."""
        ...


def supports(architecture: Architecture, family: str) -> bool:
    """Whether ``architecture`` has a model for ``family``: for its declared structure, with
    the params the model needs."""
    params = set(family_params(family))
    return family_structure(family) in architecture.structures and params >= set(
        architecture.params
    )


def check_family(architecture: Architecture, family: str) -> None:
    """Raise ``ValueError`` unless ``architecture`` has a model for ``family``."""
    if not supports(architecture, family):
        needs = f" with params {', '.join(architecture.params)}" if architecture.params else ""
        raise ValueError(
            f"family={family!r} has no {architecture.name} model: it builds models for "
            f"families of structure {', '.join(architecture.structures)}{needs}"
        )


def true_embedding(pair: TaskPair) -> nn.Module:
    """The target's true embedding part, as a module without parameters, by the family's
    structure: h (``embedding``), the frame U (``subspace``), the latent law (``latent``)."""
    target, structure = pair.target, family_structure(pair.family)
    if structure == "embedding":
        return FixedEmbedding(target.embedding)
    if structure == "subspace":
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
    structures = ("embedding", "subspace", "latent")
    params = ()

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> DensityModel:
        """A fresh model for ``pair``, standardised on ``data``; ``embedding`` if given."""
        check_family(self, pair.family)
        c = pair.config
        sizes = {"hidden": self.hidden, "transforms": self.transforms, "bins": self.bins}
        structure = family_structure(pair.family)
        if structure == "embedding":
            standardiser = Standardiser.per_coordinate(data.x.float())
            return ConditionalFlow(c["d_x"], c["d_z"], c["d_h"], standardiser, embedding, **sizes)
        if structure == "subspace":
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
    structures = ("embedding",)
    params = ("W", "B", "b", "Sigma")

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> DensityModel:
        check_family(self, pair.family)
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
    structures = ("embedding",)
    params = ("W", "B", "b", "Sigma")

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> TrainedModel:
        check_family(self, pair.family)
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
    structures = ("embedding", "subspace", "latent")
    params = ()

    def build(self, pair: TaskPair, data: Dataset, embedding: nn.Module | None) -> TrainedModel:
        check_family(self, pair.family)
        c = pair.config
        sizes = {"hidden": self.hidden, "layers": self.layers, "tau0": self.tau0}
        structure = family_structure(pair.family)
        if structure == "embedding":
            return ConditionalScore(
                c["d_x"], c["d_z"], c["d_h"], embedding, sde=pair.target.sde, **sizes
            )
        if structure == "subspace":
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
