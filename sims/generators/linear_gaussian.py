"""``linear_gaussian``: x | z ~ N(B W z + b, Sigma), the parametric anchor."""

from __future__ import annotations

import torch

from sims.generators.conditional import embedding_pair
from sims.generators.embeddings import LinearEmbedding
from sims.generators.heads import AffineMap, GaussianHead
from sims.generators.linalg import random_frame, random_spd, spd_sqrt
from sims.generators.registry import register_family
from sims.generators.seeding import seeded_rng
from sims.generators.tasks import ConditionalTask
from sims.validation import check_positive


@register_family(structure="embedding", params=("W", "B", "b", "Sigma"))
def linear_gaussian(
    *,
    d_x: int = 2,
    d_z: int = 8,
    d_h: int = 2,
    similarity: float = 0.0,
    seed: int = 0,
    noise: float = 1.0,
    signal_target: float = 1.0,
    signal_source: float = 1.0,
) -> tuple[ConditionalTask, ConditionalTask]:
    """z ~ N(0, I_{d_z}); h(z) = W z with W (d_h, d_z) of orthonormal rows;
    x | z ~ N(B h(z) + b, Sigma) with (B, b, Sigma) drawn per task.

    Each task's head is B = Sigma^{1/2} Q * signal with Q (d_x, d_h) of orthonormal columns,
    so its information about the subspace, G = B^T Sigma^{-1} B = signal^2 I, is set by the
    knob: kappa = tr(G_t G_s^{-1}) / d_h = (signal_target / signal_source)^2.

    Knobs:
        noise: Sigma has eigenvalues uniform in [noise^2 / 2, 3 noise^2 / 2].
        signal_target, signal_source: whitened singular values of each task's B.

    params: ``W`` (d_h, d_z), ``B`` (d_x, d_h), ``b`` (d_x,), ``Sigma`` (d_x, d_x).
    """
    if d_h > d_x:
        raise ValueError(
            f"d_h={d_h!r} is not allowed for linear_gaussian: expected d_h <= d_x = {d_x} "
            "(otherwise the embedding is not identifiable)"
        )
    noise = check_positive("noise", noise)
    signal_target = check_positive("signal_target", signal_target)
    signal_source = check_positive("signal_source", signal_source)
    h_target, h_source = embedding_pair(
        seed, similarity, lambda rng: LinearEmbedding.random(rng, d_z, d_h)
    )

    def task(name: str, embedding: LinearEmbedding, signal: float) -> ConditionalTask:
        rng = seeded_rng(seed, "head", name)
        covariance = random_spd(rng, d_x, 0.5 * noise**2, 1.5 * noise**2)
        weight = spd_sqrt(covariance) @ random_frame(rng, d_x, d_h) * signal
        bias = torch.from_numpy(rng.standard_normal(d_x))
        params = {"W": embedding.weight, "B": weight, "b": bias, "Sigma": covariance}
        head = GaussianHead(AffineMap(weight, bias), covariance)
        return ConditionalTask(name, d_x, d_z, embedding, head, params)

    return task("target", h_target, signal_target), task("source", h_source, signal_source)
