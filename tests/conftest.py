"""Shared settings for the tests: small dimensions for every registered family."""

import pytest

from sims.generators import families, family_knobs, family_structure, make_task_pair

# Small dimensions by declared structure (and few Fourier features per map, where a family
# has them), so that quadrature over x runs in a blink: it evaluates the maps at every point.
STRUCTURE_DIMS = {
    "embedding": {"d_x": 2, "d_z": 3, "d_h": 2},
    "subspace": {"d_x": 2, "d_h": 1},
    "latent": {"d_x": 2},
}


def small_dims(family: str) -> dict[str, int]:
    """Small knobs for any registered family, from its declared structure."""
    dims = dict(STRUCTURE_DIMS[family_structure(family)])
    if "n_features" in family_knobs(family):
        dims["n_features"] = 32
    return dims


SMALL_DIMS = {family: small_dims(family) for family in families()}


@pytest.fixture(params=families())
def family(request):
    return request.param


def small_pair(family, **knobs):
    """A task pair of ``family`` in the dimensions of SMALL_DIMS, with a blended source."""
    config = SMALL_DIMS[family] | {"similarity": 0.3, "seed": 2} | knobs
    return make_task_pair(family, **config)
