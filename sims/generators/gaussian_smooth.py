"""``gaussian_smooth``: x | z ~ N(mu(h(z)), Sigma) with a smooth random embedding and mean."""

from __future__ import annotations

from sims.generators.conditional import embedding_pair
from sims.generators.embeddings import Smoothness, draw_embedding
from sims.generators.heads import GaussianHead
from sims.generators.linalg import random_spd
from sims.generators.registry import register_family
from sims.generators.seeding import seeded_rng
from sims.generators.tasks import ConditionalTask
from sims.validation import check_positive, check_positive_int


@register_family(structure="embedding")
def gaussian_smooth(
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
    noise: float = 0.3,
) -> tuple[ConditionalTask, ConditionalTask]:
    """z ~ N(0, I_{d_z}); x | z ~ N(mu(h(z)), Sigma), h shared, (mu, Sigma) drawn per task.

    Knobs:
        beta: smoothness of the task-specific mean mu: R^{d_h} -> R^{d_x}.
        beta_h: smoothness of the shared embedding h (a ``matern`` or ``ridge`` one).
        embedding: ``"matern"`` (isotropic, Matérn-beta_h random Fourier features),
            ``"ridge"`` (a ridge series, one-dimensional in effect), both standardised to
            mean 0 and variance 1 under z ~ N(0, I), or ``"tanh"`` (h = tanh(A z),
            parametric).
        maps: how mu is drawn: ``"matern"`` or ``"ridge"`` (``sims.generators.embeddings.
            Smoothness``).
        lengthscale: of a Matérn map of D inputs, per unit of sqrt(D).
        n_features: terms of a Matérn map; n_terms: terms of a ridge series.
        noise: Sigma has eigenvalues uniform in [noise^2 / 2, 3 noise^2 / 2].

    params: ``Sigma`` (d_x, d_x).
    """
    beta, beta_h = check_positive("beta", beta), check_positive("beta_h", beta_h)
    noise = check_positive("noise", noise)
    smoothness = Smoothness(
        maps,
        check_positive("lengthscale", lengthscale),
        check_positive_int("n_features", n_features),
        check_positive_int("n_terms", n_terms),
    )
    h_target, h_source = embedding_pair(
        seed, similarity, lambda rng: draw_embedding(embedding, rng, d_z, d_h, beta_h, smoothness)
    )

    def task(name: str, h) -> ConditionalTask:
        rng = seeded_rng(seed, "head", name)
        mean = smoothness.draw(rng, d_h, d_x, beta)
        covariance = random_spd(rng, d_x, 0.5 * noise**2, 1.5 * noise**2)
        head = GaussianHead(mean, covariance)
        return ConditionalTask(name, d_x, d_z, h, head, {"Sigma": covariance})

    return task("target", h_target), task("source", h_source)
