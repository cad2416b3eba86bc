"""What the conditional families share: one embedding h for the target, h_delta for the source."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sims.generators.embeddings import Embedding, blend_embeddings
from sims.generators.seeding import seeded_rng


def embedding_pair(
    seed: int, similarity: float, draw: Callable[[np.random.Generator], Embedding]
) -> tuple[Embedding, Embedding]:
    """The target's embedding h and the source's h_delta, a blend of h and an independent h'.

    Args:
        seed: structure seed of the family.
        similarity: delta in [0, 1]; 0 gives the source h itself, 1 gives it h'.
        draw: draws one embedding from a numpy generator.
    """
    h = draw(seeded_rng(seed, "embedding"))
    h_prime = draw(seeded_rng(seed, "embedding", "independent"))
    return h, blend_embeddings(h, h_prime, similarity)
