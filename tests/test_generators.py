"""The ground-truth families: exact densities, scores and samplers, and their knobs."""

import dataclasses
import math
import re
from functools import partial

import numpy as np
import pytest
import torch
from conftest import SMALL_DIMS, small_pair
from scipy import special
from scipy.stats import kstest

from sims.generators import (
    STRUCTURES,
    families,
    family_knobs,
    family_params,
    family_structure,
    make_task_pair,
    register_family,
    registry,
)
from sims.generators.fourier import FourierSeries

TAUS = [0.0, 0.05, 0.5]


def test_every_family_declares_a_structure_whose_knobs_it_takes():
    for family in families():
        structure = STRUCTURES[family_structure(family)]
        assert set(structure.knobs) <= set(family_knobs(family))
        pair = make_task_pair(family, **SMALL_DIMS[family])
        assert set(family_params(family)) <= set(pair.target.params)


@pytest.mark.parametrize(
    ("structure", "signature", "message"),
    [
        ("embedding", "*, d_x=2, d_h=1", "families of structure embedding take the knob(s) d_z"),
        ("tree", "*, d_x=2", "structure='tree' is not allowed"),
        ("latent", "*, d_x", "knob(s) d_x need a default"),
    ],
)
def test_a_declaration_that_misses_something_is_refused_in_one_line(
    structure, signature, message, monkeypatch
):
    monkeypatch.setattr(registry, "FAMILIES", dict(registry.FAMILIES))
    namespace = {}
    exec(f"def broken({signature}):\n    pass", namespace)
    with pytest.raises(ValueError, match=re.escape(message)):
        register_family(structure=structure)(namespace["broken"])
    assert "broken" not in families()


def test_a_family_whose_tasks_lack_their_declared_params_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "FAMILIES", dict(registry.FAMILIES))
    builder = registry.FAMILIES["shared_latent"].builder

    def latent_without_a(*, d_x: int = 2):
        target, source = builder(d_x=d_x)
        return dataclasses.replace(target, params={}), source

    register_family(structure="latent")(latent_without_a)
    with pytest.raises(ValueError, match="its tasks lack the params A, b"):
        make_task_pair("latent_without_a")


def tasks_of(pair):
    return {"target": pair.target, "source": pair.source}


def quadrature_grid(law, d_x, points_per_axis):
    """A box grid covering the mixture law with 10 standard deviations to spare; returns
    the points (G, d_x) and the volume of one cell."""
    means = law.means.reshape(-1, d_x)
    spread = law.covariances.diagonal(dim1=-2, dim2=-1).max().sqrt().item()
    low = means.min(0).values - 10 * spread
    high = means.max(0).values + 10 * spread
    axes = [
        torch.linspace(low[i], high[i], points_per_axis, dtype=torch.float64) for i in range(d_x)
    ]
    grid = torch.cartesian_prod(*axes).reshape(-1, d_x)
    cell = math.prod(((high - low) / (points_per_axis - 1)).tolist())
    return grid, cell


@pytest.mark.parametrize("d_x", [1, 2])
@pytest.mark.parametrize("tau", TAUS)
def test_density_integrates_to_one(family, d_x, tau):
    dims = SMALL_DIMS[family] | {"d_x": d_x}
    if "d_h" in dims:
        dims["d_h"] = min(dims["d_h"], d_x)
    pair = small_pair(family, **dims)
    for task in tasks_of(pair).values():
        z, _ = task.sample(3, seed=0)
        for row in range(3):
            condition = None if z is None else z[row : row + 1]
            law = task.law(condition, tau)
            grid, cell = quadrature_grid(law, d_x, 4001 if d_x == 1 else 601)
            z_grid = None if z is None else condition.expand(len(grid), -1)
            mass = task.log_prob(grid, z_grid, tau).exp().sum().item() * cell
            assert mass == pytest.approx(1.0, abs=1e-6), (task.name, row)


@pytest.mark.parametrize("tau", TAUS)
def test_score_is_gradient_of_log_prob(family, tau):
    for task in tasks_of(small_pair(family, d_x=3)).values():
        z, x = task.sample(500, seed=1, tau=tau)
        x = x.requires_grad_(True)
        (autograd_score,) = torch.autograd.grad(task.log_prob(x, z, tau).sum(), x)
        torch.testing.assert_close(task.score(x.detach(), z, tau), autograd_score)


@pytest.mark.parametrize("tau", TAUS)
def test_samples_follow_the_density(family, tau):
    """Probability integral transform of 1-D projections: uniform iff samples match the law."""
    pair = small_pair(family, d_x=3)
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.6, -0.8, 0.0], [0.5, 0.5, 0.5**0.5]])
    for task in tasks_of(pair).values():
        z, x = task.sample(20_000, seed=4, tau=tau)
        law = task.law(z, tau)
        for direction in directions.double():
            uniforms = law.projected_cdf(x, direction).numpy()
            assert kstest(uniforms, "uniform").pvalue > 1e-3, (task.name, direction)


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_noised_law_is_the_law_of_the_forward_process(family, tau):
    """x_0 from the task, pushed by x_tau = alpha x_0 + sigma eps, follows ``law(z, tau)``."""
    task = small_pair(family, d_x=3).source
    z, x0 = task.sample(20_000, seed=8)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, std = task.sde.marginal_prob(x0, tau)
    law = task.law(z, tau)
    for direction in torch.eye(3, dtype=torch.float64):
        uniforms = law.projected_cdf(mean + std * eps, direction).numpy()
        assert kstest(uniforms, "uniform").pvalue > 1e-3


def test_pit_detects_a_wrong_sampler():
    """The sampling test above has power: a 10 % scale error in the samples fails it."""
    task = small_pair("gaussian_smooth", d_x=3).target
    z, x = task.sample(20_000, seed=4)
    law = task.law(z)
    wrong = law.means[:, 0] + 1.1 * (x - law.means[:, 0])
    direction = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert kstest(law.projected_cdf(wrong, direction).numpy(), "uniform").pvalue < 1e-6


def test_sample_is_deterministic_and_streams_are_independent(family):
    pair = small_pair(family)
    z1, x1 = pair.target.sample(100, seed=5)
    z2, x2 = pair.target.sample(100, seed=5)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)
    _, x3 = pair.target.sample(100, seed=6)
    _, x_source = pair.source.sample(100, seed=5)
    assert not torch.allclose(x1, x3)
    assert not torch.allclose(x1, x_source)
    rebuilt = small_pair(family)
    torch.testing.assert_close(rebuilt.target.sample(100, seed=5)[1], x1, rtol=0, atol=0)


def test_a_task_on_another_device_computes_there(family):
    """Every tensor the law makes is on the task's device: on the meta device (shapes
    without data), mixing in a CPU tensor raises."""
    for task in tasks_of(small_pair(family)).values():
        z, x = task.sample(10, seed=1)
        moved = task.to("meta")
        z_meta = None if z is None else z.to("meta")
        for tau in TAUS:
            assert moved.log_prob(x.to("meta"), z_meta, tau).device.type == "meta"
            assert moved.score(x.to("meta"), z_meta, tau).shape == x.shape
        assert task.device.type == "cpu" and moved.device.type == "meta"


def test_a_task_moved_to_its_own_device_is_the_same_task(family):
    pair = small_pair(family)
    moved = pair.target.to("cpu")
    z, x = pair.target.sample(50, seed=3)
    z_moved, x_moved = moved.sample(50, seed=3)
    torch.testing.assert_close(x_moved, x, rtol=0, atol=0)
    torch.testing.assert_close(moved.log_prob(x, z, 0.5), pair.target.log_prob(x, z, 0.5))
    torch.testing.assert_close(moved.score(x, z, 0.5), pair.target.score(x, z, 0.5))
    assert moved.params.keys() == pair.target.params.keys()


def test_target_does_not_depend_on_similarity(family):
    z, x = small_pair(family, similarity=0.0).target.sample(200, seed=1)
    reference = small_pair(family, similarity=0.0).target.log_prob(x, z)
    for similarity in (0.5, 1.0):
        pair = small_pair(family, similarity=similarity)
        torch.testing.assert_close(pair.target.log_prob(x, z), reference, rtol=0, atol=0)


def shared_structure(task, z):
    """What the two tasks of a family share, as a tensor: h(z), the frame U, or the latent law."""
    if task.d_z is not None:
        return task.embedding(z)
    if "U" in task.params:
        return task.params["U"] @ task.params["U"].T
    return torch.cat([task.params["latent_means"].flatten(), task.params["latent_log_weights"]])


def test_zero_similarity_shares_the_embedding(family):
    pair = small_pair(family, similarity=0.0)
    z, _ = pair.target.sample(500, seed=0)
    torch.testing.assert_close(shared_structure(pair.source, z), shared_structure(pair.target, z))


def overlap(pair, z):
    """Cosine similarity between the target's and the source's shared structure (1: identical)."""
    if pair.target.d_z is None and "U" not in pair.target.params:  # shared_latent: mixture weight
        return 1.0 - pair.config["similarity"]
    a, b = shared_structure(pair.target, z), shared_structure(pair.source, z)
    a, b = a - a.mean(0), b - b.mean(0)
    return ((a * b).sum() / (a.norm() * b.norm())).abs().item()


@pytest.mark.parametrize(
    "name", ["linear_gaussian", "gaussian_smooth", "mixture", "shared_subspace"]
)
def test_similarity_moves_the_source_embedding_away(name):
    """Overlap falls from 1 at similarity 0 to the level of an independent draw at 1."""
    dims = {"d_x": 8, "d_h": 2} | ({} if name == "shared_subspace" else {"d_z": 16})
    z = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    curves = []
    for seed in range(5):
        curve = [
            overlap(make_task_pair(name, similarity=s, seed=seed, **dims), z)
            for s in (0.0, 0.25, 0.5, 0.75, 1.0)
        ]
        curves.append(curve)
    mean_curve = np.mean(curves, axis=0)
    assert mean_curve[0] == pytest.approx(1.0)
    assert np.all(np.diff(mean_curve) < 0), mean_curve
    assert mean_curve[-1] < 0.4, mean_curve


def test_full_dissimilarity_gives_the_independent_draw():
    """At similarity 1 the source embedding is the independent draw, whatever the seed says
    of the target's: two seeds with one independent stream would agree; here they don't, and
    the source at 1 matches the source at 0.999 closely (continuity of the blend)."""
    z = torch.randn(300, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    at_one = make_task_pair("gaussian_smooth", similarity=1.0, seed=3).source.embedding(z)
    near_one = make_task_pair("gaussian_smooth", similarity=0.999, seed=3).source.embedding(z)
    target = make_task_pair("gaussian_smooth", similarity=1.0, seed=3).target.embedding(z)
    # the blend at 0.999 weighs h by sqrt(0.001) and is standardised again: it moves by
    # about sqrt(0.001) times the embeddings' size
    tolerance = 2 * math.sqrt(0.001) * max(at_one.abs().max(), target.abs().max()).item()
    torch.testing.assert_close(at_one, near_one, atol=tolerance, rtol=0)
    assert not torch.allclose(at_one, target, atol=10 * tolerance)


def test_linear_gaussian_parameters_set_kappa():
    pair = make_task_pair(
        "linear_gaussian", d_x=4, d_z=6, d_h=2, signal_target=2.0, signal_source=0.5, seed=1
    )
    for task, signal in ((pair.target, 2.0), (pair.source, 0.5)):
        p = task.params
        information = p["B"].T @ torch.linalg.solve(p["Sigma"], p["B"])
        torch.testing.assert_close(information, signal**2 * torch.eye(2, dtype=torch.float64))
        torch.testing.assert_close(p["W"] @ p["W"].T, torch.eye(2, dtype=torch.float64))
        z, x = task.sample(5, seed=0)
        law = task.law(z)
        torch.testing.assert_close(law.means[:, 0], z @ p["W"].T @ p["B"].T + p["b"])


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_ridge_series_spectrum_decays_at_the_smoothness(beta):
    """In one input dimension the series is 2 pi-periodic with Fourier coefficients
    k^-(beta + 1/2) a_k: the log-power slope over frequency is -(2 beta + 1)."""
    rng = np.random.default_rng(0)
    slopes = []
    for _ in range(20):
        series = FourierSeries.ridge(rng, d_in=1, d_out=1, beta=beta, n_terms=128)
        t = torch.linspace(0, 2 * math.pi, 1024 + 1, dtype=torch.float64)[:-1, None]
        power = np.abs(np.fft.rfft(series(t)[:, 0].numpy())[1:129]) ** 2
        k = np.arange(1, 129)
        slopes.append(np.polyfit(np.log(k), np.log(power), 1)[0])
    assert np.mean(slopes) == pytest.approx(-(2 * beta + 1), abs=0.25)


def matern_kernel(r: np.ndarray, nu: float, lengthscale: float) -> np.ndarray:
    """The Matérn kernel 2^(1 - nu) / Gamma(nu) x^nu K_nu(x), x = sqrt(2 nu) r / l (1 at 0)."""
    x = np.sqrt(2 * nu) * np.maximum(r, 1e-12) / lengthscale
    return 2 ** (1 - nu) / special.gamma(nu) * x**nu * special.kv(nu, x)


@pytest.mark.parametrize(("nu", "d_in"), [(0.5, 1), (2.0, 3), (2.0, 32)])
def test_matern_features_have_the_matern_kernel_over_draws(nu, d_in):
    """E f(u) f(u') over draws equals k_nu,l(u - u') for every number of features: each
    draw's product is an unbiased estimate, averaged here over 4000 draws (within 5 se)."""
    rng = np.random.default_rng(0)
    length = math.sqrt(d_in)
    u = torch.zeros(1, d_in, dtype=torch.float64)
    distances = np.array([0.0, 0.25, 0.5, 1.0, 2.0]) * length
    direction = torch.from_numpy(rng.standard_normal(d_in))
    points = torch.from_numpy(distances)[:, None] * direction / direction.norm()
    products = []
    for _ in range(4000):
        f = FourierSeries.matern(rng, d_in, 1, nu, length, n_features=16)
        products.append((f(u) * f(points))[:, 0].numpy())
    products = np.array(products)
    mean, se = products.mean(0), products.std(0) / math.sqrt(len(products))
    expected = matern_kernel(distances, nu, length)
    expected[0] = 1.0
    assert np.all(np.abs(mean - expected) < 5 * se), (mean, expected, se)
    assert not np.allclose(matern_kernel(distances[1:], nu + 1, length), expected[1:], atol=0.02)


def relative_error_of_kernel_ridge(d_in: int, n: int, draws: int = 3) -> float:
    """Mean over draws of the relative squared error of kernel ridge regression with the true
    kernel (a near-best estimator) fitted to n noisy values (noise SD 0.3) of a standardised
    Matérn-2 map with inputs z ~ N(0, I_d_in), on 2000 fresh inputs."""
    errors = []
    for draw in range(draws):
        rng = np.random.default_rng(draw)
        pair = make_task_pair("gaussian_smooth", d_z=d_in, d_h=1, d_x=1, seed=draw)
        h = pair.target.embedding
        z = torch.from_numpy(rng.standard_normal((n + 2000, d_in)))
        values = h(z)[:, 0].numpy()
        train, test = z[:n].numpy(), z[n:].numpy()
        y = values[:n] + 0.3 * rng.standard_normal(n)
        kernel = partial(matern_kernel, nu=2.0, lengthscale=math.sqrt(d_in))
        gram = kernel(np.linalg.norm(train[:, None] - train[None], axis=-1))
        np.fill_diagonal(gram, 1.0)
        weights = np.linalg.solve(gram + 0.09 * np.eye(n), y)
        cross = kernel(np.linalg.norm(test[:, None] - train[None], axis=-1))
        errors.append(np.mean((cross @ weights - values[n:]) ** 2) / np.var(values[n:]))
    return float(np.mean(errors))


def test_an_isotropic_embedding_is_harder_to_learn_in_more_dimensions():
    """With the default lengthscale (sqrt(d_z)), kernel ridge regression with the true
    kernel learns h in d_z = 2 with a small error that falls fast; in d_z = 8 its error is
    larger and falls more slowly: the embedding's dimension is what it costs."""
    small = [relative_error_of_kernel_ridge(2, n) for n in (250, 1000)]
    large = [relative_error_of_kernel_ridge(8, n) for n in (250, 1000)]
    assert small[1] < small[0] and large[1] < large[0]
    assert large[0] > 3 * small[0] and large[1] > 3 * small[1]
    assert large[1] / large[0] > small[1] / small[0]


@pytest.mark.parametrize("name", ["gaussian_smooth", "mixture"])
@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_isotropic_families_stay_exact_with_a_condition_of_32_dimensions(name, tau):
    """d_z = 32 (the default Matérn maps): the density of x given z integrates to one and
    the score is the gradient of the log-density."""
    pair = make_task_pair(name, d_x=2, d_z=32, d_h=2, similarity=0.3, seed=1)
    for task in tasks_of(pair).values():
        z, _ = task.sample(2, seed=0)
        for row in range(2):
            condition = z[row : row + 1]
            grid, cell = quadrature_grid(task.law(condition, tau), 2, 401)
            z_grid = condition.expand(len(grid), -1)
            mass = task.log_prob(grid, z_grid, tau).exp().sum().item() * cell
            assert mass == pytest.approx(1.0, abs=1e-6)
        x = task.sample(50, seed=2, tau=tau)[1].requires_grad_()
        z_points = task.sample(50, seed=3)[0]
        (gradient,) = torch.autograd.grad(task.log_prob(x, z_points, tau).sum(), x)
        torch.testing.assert_close(task.score(x.detach(), z_points, tau), gradient)


@pytest.mark.parametrize("embedding", ["matern", "ridge"])
def test_standardised_embedding_has_unit_moments(embedding):
    pair = make_task_pair(
        "gaussian_smooth", d_z=4, d_h=3, similarity=0.5, seed=0, beta_h=0.5, embedding=embedding
    )
    z = torch.randn(400_000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for task in (pair.target, pair.source):
        e = task.embedding(z)
        se = e.std(0) / math.sqrt(len(z))
        assert torch.all(e.mean(0).abs() < 4 * se)
        assert torch.all((e.var(0) - 1).abs() < 0.02)


def test_tanh_embedding_option():
    pair = make_task_pair("gaussian_smooth", embedding="tanh", seed=0)
    z, _ = pair.target.sample(1000, seed=0)
    e = pair.target.embedding(z)
    assert e.shape == (1000, 2) and e.abs().max() < 1


@pytest.mark.parametrize(
    ("family", "knobs", "message"),
    [
        ("nope", {}, "family='nope'"),
        ("mixture", {"colour": 1}, "unknown knob 'colour'"),
        ("mixture", {"d_h": 5, "d_z": 3}, "d_h=5"),
        ("mixture", {"d_x": 0}, "d_x=0"),
        ("mixture", {"d_z": -2}, "d_z=-2"),
        ("gaussian_smooth", {"d_h": 2.5}, "d_h=2.5"),
        ("linear_gaussian", {"similarity": 1.5}, "similarity=1.5"),
        ("linear_gaussian", {"similarity": -0.1}, "similarity=-0.1"),
        ("linear_gaussian", {"d_x": 1, "d_h": 2}, "d_h=2"),
        ("linear_gaussian", {"noise": 0.0}, "noise=0.0"),
        ("shared_subspace", {"d_x": 2, "d_h": 3}, "d_h=3"),
        ("shared_latent", {"d_z": 3}, "unknown knob 'd_z'"),
        ("gaussian_smooth", {"embedding": "relu"}, "embedding='relu'"),
        ("mixture", {"n_components": 0}, "n_components=0"),
        ("mixture", {"seed": -1}, "seed=-1"),
    ],
)
def test_bad_knobs_raise_with_the_value_and_what_is_allowed(family, knobs, message):
    with pytest.raises(ValueError, match="expected") as error:
        make_task_pair(family, **knobs)
    assert message in str(error.value)


def test_bad_arguments_to_tasks_raise():
    conditional = make_task_pair("mixture").target
    unconditional = make_task_pair("shared_latent").target
    z, x = conditional.sample(4, seed=0)
    cases = [
        (lambda: conditional.sample(0, seed=0), "n=0"),
        (lambda: conditional.sample(3, seed=-2), "seed=-2"),
        (lambda: conditional.log_prob(x), "pass z"),
        (lambda: conditional.log_prob(x[:, :1], z), "x has shape (4, 1)"),
        (lambda: conditional.log_prob(x, z[:3]), "z has 3 rows"),
        (lambda: conditional.score(x, z, tau=1.5), "tau=1.5"),
        (lambda: unconditional.log_prob(x, z), "unconditional"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as error:
            call()
        assert message in str(error.value)
