"""Tasks: one exact law per task, with sampling, log-density and score at any diffusion time.

A task's law given its condition is a Gaussian mixture (``law``); every other method is
built from it, so the density, the score and the sampler cannot disagree.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sims.generators.devices import fields_on_device
from sims.generators.embeddings import Embedding
from sims.generators.gaussian_mixture import GaussianMixture
from sims.generators.seeding import seeded_generator
from sims.sde import VPSDE, check_tau
from sims.validation import check_positive_int


def as_points(name: str, values, dim: int, device: torch.device) -> Tensor:
    """``values`` as a float64 tensor of shape (N, dim) on ``device``, or ``ValueError``."""
    tensor = torch.as_tensor(values, dtype=torch.float64, device=device)
    if tensor.ndim != 2 or tensor.shape[1] != dim:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}: expected (N, {dim})")
    return tensor


CHUNK_ROWS = 65_536  # rows per block: bounds memory and keeps temporaries cache-sized


def row_blocks(n: int) -> list[slice]:
    """Consecutive slices of at most CHUNK_ROWS rows that cover range(n)."""
    return [slice(start, min(start + CHUNK_ROWS, n)) for start in range(0, n, CHUNK_ROWS)]


def block_of(z: Tensor | None, block: slice) -> Tensor | None:
    """Rows ``block`` of the conditions, or ``None`` for an unconditional task."""
    return None if z is None else z[block]


class Task(ABC):
    """The exact law of one task (target or source).

    Attributes:
        name: ``"target"`` or ``"source"``; also keys the task's sampling stream.
        d_x: dimension of x.
        d_z: dimension of the condition z, or ``None`` for an unconditional task.
        sde: forward process that defines the noised laws p_tau.
        params: the task's true parameters, by name (family-specific).
        device: where the law's tensors live, and where the task samples and evaluates.
    """

    name: str
    d_x: int
    d_z: int | None
    sde: VPSDE
    params: dict[str, Tensor]
    device: torch.device

    @abstractmethod
    def _law(self, z: Tensor | None) -> GaussianMixture:
        """Law of x_0 given checked conditions z (N, d_z), or the unconditional law."""

    @abstractmethod
    def _sample_conditions(self, n: int, generator: torch.Generator) -> Tensor | None:
        """(n, d_z) conditions drawn from the task's law of z, or ``None``."""

    def _checked_conditions(self, z, n: int) -> Tensor | None:
        if self.d_z is None:
            if z is not None:
                raise ValueError("this task is unconditional: pass z=None")
            return None
        if z is None:
            raise ValueError(f"this task is conditional: pass z of shape (N, {self.d_z})")
        z = as_points("z", z, self.d_z, self.device)
        if z.shape[0] != n:
            raise ValueError(f"z has {z.shape[0]} rows but x has {n}: expected one z per x")
        return z

    def to(self, device: str | torch.device) -> Task:
        """This task with its law on ``device``. Its samples there come from a generator on
        that device: the same on every run, but not the numbers the CPU draws."""
        moved = fields_on_device(self, device) | {"device": torch.device(device)}
        return dataclasses.replace(self, **moved)

    def law(self, z=None, tau: float = 0.0) -> GaussianMixture:
        """The law p_tau(x | z) as a Gaussian mixture batched over the rows of z."""
        n = None if z is None else torch.as_tensor(z).shape[0]
        return self._noised_law(self._checked_conditions(z, n), tau)

    def _noised_law(self, z: Tensor | None, tau: float) -> GaussianMixture:
        return self._law(z).noised(self.sde, check_tau(tau))

    def sample(self, n: int, seed: int, tau: float = 0.0) -> tuple[Tensor | None, Tensor]:
        """Draw n pairs (z, x) from the task, x from p_tau(x | z).

        Returns:
            z: (n, d_z) float64, or ``None`` for an unconditional task.
            x: (n, d_x) float64.
        Both on the task's device.
        The same (n, seed) always gives the same draws; target and source use independent
        streams even under the same seed.
        """
        n = check_positive_int("n", n)
        generator = seeded_generator(seed, "sample", self.name, device=self.device)
        z = self._sample_conditions(n, generator)
        x = [
            self._noised_law(block_of(z, block), tau).sample(block.stop - block.start, generator)
            for block in row_blocks(n)
        ]
        return z, torch.cat(x)

    def log_prob(self, x, z=None, tau: float = 0.0) -> Tensor:
        """Exact log p_tau(x | z) in nats: x (N, d_x), z (N, d_z) or ``None``, moved to the
        task's device; returns (N,) there."""
        return self._per_block(GaussianMixture.log_prob, x, z, tau)

    def score(self, x, z=None, tau: float = 0.0) -> Tensor:
        """Exact score grad_x log p_tau(x | z): x (N, d_x), z (N, d_z) or ``None``, moved to the
        task's device; returns (N, d_x) there."""
        return self._per_block(GaussianMixture.score, x, z, tau)

    def _per_block(self, method: Callable, x, z, tau: float) -> Tensor:
        """``method(law, x)`` of the law p_tau(. | z), over blocks of rows, concatenated."""
        x = as_points("x", x, self.d_x, self.device)
        z = self._checked_conditions(z, x.shape[0])
        blocks = row_blocks(x.shape[0])
        return torch.cat([method(self._noised_law(block_of(z, b), tau), x[b]) for b in blocks])


@dataclass
class ConditionalTask(Task):
    """x | z ~ head(embedding(z)), z ~ N(0, I_{d_z}).

    Attributes:
        embedding: the map h, (N, d_z) -> (N, d_h); shared across tasks up to the similarity knob.
        head: the task-specific map from e (N, d_h) to the law of x given e.
    """

    name: str
    d_x: int
    d_z: int
    embedding: Embedding
    head: Callable[[Tensor], GaussianMixture]
    params: dict[str, Tensor] = field(default_factory=dict)
    sde: VPSDE = field(default_factory=VPSDE)
    device: torch.device = torch.device("cpu")

    def _law(self, z: Tensor) -> GaussianMixture:
        return self.head(self.embedding(z))

    def _sample_conditions(self, n: int, generator: torch.Generator) -> Tensor:
        options = {"generator": generator, "dtype": torch.float64, "device": self.device}
        return torch.randn(n, self.d_z, **options)


@dataclass
class UnconditionalTask(Task):
    """x ~ mixture."""

    name: str
    mixture: GaussianMixture
    params: dict[str, Tensor] = field(default_factory=dict)
    sde: VPSDE = field(default_factory=VPSDE)
    d_z: None = None
    device: torch.device = torch.device("cpu")

    @property
    def d_x(self) -> int:
        return self.mixture.dim

    def _law(self, z: None) -> GaussianMixture:
        return self.mixture

    def _sample_conditions(self, n: int, generator: torch.Generator) -> None:
        return None

    @classmethod
    def of_latent(
        cls, name: str, latent: GaussianMixture, weight: Tensor, bias: Tensor
    ) -> UnconditionalTask:
        """The law of x = weight v + bias for v from the ``latent`` mixture, with the params
        of the ``latent`` structure: ``A`` (d_x, d_x), ``b`` (d_x,), and the latent law as
        ``latent_log_weights`` (K,), ``latent_means`` (K, d_x), ``latent_covariances``
        (K, d_x, d_x)."""
        params = {
            "A": weight,
            "b": bias,
            "latent_log_weights": latent.log_weights,
            "latent_means": latent.means,
            "latent_covariances": latent.covariances,
        }
        return cls(name, latent.affine(weight, bias), params)


def stacked_samples(
    tasks: Sequence[Task], n: int, seeds: Sequence[int], tau: float = 0.0
) -> tuple[Tensor | None, Tensor]:
    """``n`` samples of each task, task i's drawn with ``seeds[i]``, stacked: z (E, n, d_z)
    or ``None``, x (E, n, d_x); the tasks share their dimensions and their device."""
    drawn = [task.sample(n, seed, tau) for task, seed in zip(tasks, seeds, strict=True)]
    z = None if drawn[0][0] is None else torch.stack([z for z, _ in drawn])
    return z, torch.stack([x for _, x in drawn])


@dataclass(frozen=True)
class TaskPair:
    """A target task and a source task that share an embedding (up to the similarity knob).

    Attributes:
        family: the registered family name.
        config: every knob of the family with the value used, defaults included.
        target, source: the two tasks.
    """

    family: str
    config: dict
    target: Task
    source: Task
