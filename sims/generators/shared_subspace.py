"""``shared_subspace``: x = U w + sigma_0 eps, a shared subspace with task-specific laws on it."""

from __future__ import annotations

import torch

from sims.generators.embeddings import LinearEmbedding, blend_embeddings
from sims.generators.gaussian_mixture import random_mixture
from sims.generators.registry import register_family
from sims.generators.seeding import seeded_rng
from sims.generators.tasks import UnconditionalTask
from sims.validation import check_positive, check_positive_int


@register_family(structure="subspace")
def shared_subspace(
    *,
    d_x: int = 8,
    d_h: int = 2,
    similarity: float = 0.0,
    seed: int = 0,
    n_components: int = 3,
    separation: float = 2.0,
    component_scale: float = 0.5,
    noise_floor: float = 0.1,
) -> tuple[UnconditionalTask, UnconditionalTask]:
    """x = U w + sigma_0 eps with U (d_x, d_h) of orthonormal columns shared by both tasks,
    w ~ a Gaussian mixture in R^{d_h} drawn per task, eps ~ N(0, I_{d_x}).

    The embedding is the projection onto span(U); the similarity knob gives the source the
    frame nearest to sqrt(1 - delta) U + sqrt(delta) U', U' independent.

    Knobs:
        n_components, separation, component_scale: the law of w (see ``random_mixture``).
        noise_floor: sigma_0 > 0, which keeps a density in R^{d_x}.

    params: ``U`` (d_x, d_h) and the law of w as ``w_log_weights`` (K,), ``w_means`` (K, d_h),
    ``w_covariances`` (K, d_h, d_h).
    """
    if d_h > d_x:
        raise ValueError(
            f"d_h={d_h!r} is not allowed for shared_subspace: expected d_h <= d_x = {d_x}"
        )
    n_components = check_positive_int("n_components", n_components)
    separation = check_positive("separation", separation)
    component_scale = check_positive("component_scale", component_scale)
    noise_floor = check_positive("noise_floor", noise_floor)

    def projection(*names: str) -> LinearEmbedding:
        return LinearEmbedding.random(seeded_rng(seed, "subspace", *names), d_x, d_h)

    shared = projection()
    source_projection = blend_embeddings(shared, projection("independent"), similarity)

    def task(name: str, projection: LinearEmbedding) -> UnconditionalTask:
        rng = seeded_rng(seed, "head", name)
        w_law = random_mixture(rng, d_h, n_components, separation, component_scale)
        frame = projection.weight.T
        law = w_law.affine(frame, torch.zeros(d_x, dtype=frame.dtype), noise_floor**2)
        params = {
            "U": frame,
            "w_log_weights": w_law.log_weights,
            "w_means": w_law.means,
            "w_covariances": w_law.covariances,
        }
        return UnconditionalTask(name, law, params)

    return task("target", shared), task("source", source_projection)
