"""``shared_latent``: each task an affine push-forward of one shared non-Gaussian latent law."""

from __future__ import annotations

import torch

from sims.generators.embeddings import interpolate
from sims.generators.gaussian_mixture import random_mixture
from sims.generators.linalg import random_frame
from sims.generators.registry import register_family
from sims.generators.seeding import seeded_rng
from sims.generators.tasks import UnconditionalTask
from sims.validation import check_positive, check_positive_int


@register_family(structure="latent")
def shared_latent(
    *,
    d_x: int = 2,
    similarity: float = 0.0,
    seed: int = 0,
    n_components: int = 4,
    separation: float = 2.0,
    component_scale: float = 0.5,
) -> tuple[UnconditionalTask, UnconditionalTask]:
    """x = A v + b, v ~ L, with L a Gaussian mixture in R^{d_x} shared by both tasks and
    (A, b) drawn per task (A with singular values uniform in [0.5, 1.5], b ~ N(0, I)).

    The similarity knob gives the source the latent law (1 - delta) L + delta L', with L'
    an independent draw of L.

    Knobs:
        n_components, separation, component_scale: the latent mixture (see ``random_mixture``).

    params: ``A`` (d_x, d_x), ``b`` (d_x,), and the task's latent law as
    ``latent_log_weights`` (K,), ``latent_means`` (K, d_x), ``latent_covariances`` (K, d_x, d_x).
    """
    n_components = check_positive_int("n_components", n_components)
    separation = check_positive("separation", separation)
    component_scale = check_positive("component_scale", component_scale)

    def latent(*names: str):
        rng = seeded_rng(seed, "latent", *names)
        return random_mixture(rng, d_x, n_components, separation, component_scale)

    shared = latent()
    source_latent = interpolate(shared, latent("independent"), similarity, type(shared).blend)

    def task(name: str, law) -> UnconditionalTask:
        rng = seeded_rng(seed, "head", name)
        singular_values = torch.from_numpy(rng.uniform(0.5, 1.5, size=d_x))
        weight = random_frame(rng, d_x, d_x) * singular_values @ random_frame(rng, d_x, d_x).T
        bias = torch.from_numpy(rng.standard_normal(d_x))
        return UnconditionalTask.of_latent(name, law, weight, bias)

    return task("target", shared), task("source", source_latent)
