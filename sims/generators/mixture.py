"""``mixture``: x | z a Gaussian mixture whose weights and centres move with h(z)."""

from __future__ import annotations

import torch

from sims.generators.conditional import embedding_pair
from sims.generators.embeddings import Smoothness, draw_embedding
from sims.generators.heads import MixtureHead
from sims.generators.registry import register_family
from sims.generators.seeding import seeded_rng
from sims.generators.tasks import ConditionalTask
from sims.validation import check_positive, check_positive_int


@register_family(structure="embedding")
def mixture(
    *,
    d_x: int = 2,
    d_z: int = 8,
    d_h: int = 2,
    similarity: float = 0.0,
    seed: int = 0,
    beta: float = 2.0,
    beta_h: float = 2.0,
    embedding: str = "matern",
    maps: str = "matern",
    lengthscale: float = 1.0,
    n_features: int = 256,
    n_terms: int = 64,
    n_components: int = 3,
    component_scale: float = 0.3,
    separation: float = 2.0,
) -> tuple[ConditionalTask, ConditionalTask]:
    """z ~ N(0, I_{d_z}); x | z ~ sum_k pi_k(h(z)) N(m_k(h(z)), s^2 I): a multimodal law with
    task-specific weights pi and centres m, h shared.

    pi = softmax of a random smooth map of smoothness beta; m_k = c_k + a random smooth map
    of smoothness beta, with fixed centres c_k ~ N(0, separation^2 I).

    Knobs:
        beta, beta_h, embedding, maps, lengthscale, n_features, n_terms: as for
            ``gaussian_smooth``.
        n_components: number of components K.
        component_scale: the components' standard deviation s.
        separation: spread of the fixed centres c_k.

    params: ``centres`` (K, d_x).
    """
    beta, beta_h = check_positive("beta", beta), check_positive("beta_h", beta_h)
    smoothness = Smoothness(
        maps,
        check_positive("lengthscale", lengthscale),
        check_positive_int("n_features", n_features),
        check_positive_int("n_terms", n_terms),
    )
    n_components = check_positive_int("n_components", n_components)
    component_scale = check_positive("component_scale", component_scale)
    separation = check_positive("separation", separation)
    h_target, h_source = embedding_pair(
        seed, similarity, lambda rng: draw_embedding(embedding, rng, d_z, d_h, beta_h, smoothness)
    )

    def task(name: str, h) -> ConditionalTask:
        rng = seeded_rng(seed, "head", name)
        logits = smoothness.draw(rng, d_h, n_components, beta)
        centres = torch.from_numpy(separation * rng.standard_normal((n_components, d_x)))
        displacement = smoothness.draw(rng, d_h, n_components * d_x, beta)
        head = MixtureHead(logits, centres, displacement, component_scale)
        return ConditionalTask(name, d_x, d_z, h, head, {"centres": centres})

    return task("target", h_target), task("source", h_source)
