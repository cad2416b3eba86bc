"""Shared settings for the tests: small dimensions for every family, float64 by default."""

import pytest

from sims.generators import families, make_task_pair

# Small dimensions per family (and few Fourier features per map), so that quadrature over x
# runs in a blink: it evaluates the maps at every grid point.
SMALL_DIMS = {
    "linear_gaussian": {"d_x": 2, "d_z": 3, "d_h": 1},
    "gaussian_smooth": {"d_x": 2, "d_z": 3, "d_h": 2, "n_features": 32},
    "mixture": {"d_x": 2, "d_z": 3, "d_h": 2, "n_features": 32},
    "shared_latent": {"d_x": 2},
    "shared_subspace": {"d_x": 2, "d_h": 1},
}


@pytest.fixture(params=families())
def family(request):
    return request.param


def small_pair(family, **knobs):
    """A task pair of ``family`` in the dimensions of SMALL_DIMS, with a blended source."""
    config = SMALL_DIMS[family] | {"similarity": 0.3, "seed": 2} | knobs
    return make_task_pair(family, **config)
