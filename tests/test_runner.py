"""The runner's parts: cells from grids, failure recording, and the verdict on planted rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_DIMS

from sims.experiments import EXPERIMENTS, PROFILE_SETTINGS, PROFILES, get_experiment
from sims.generators import families, make_task_pair
from sims.runner import tasks
from sims.runner.cells import expand, parse_override
from sims.runner.run import Backend, Plan, assemble, execute
from sims.runner.store import Store
from sims.runner.tasks import Settings
from theory.parametric import k_oracle, k_scratch
from theory.verdict import judge


@pytest.mark.parametrize("family", families())
def test_similarity_changes_only_the_source(family):
    """Why cells of source-free methods drop ``similarity``: the target is the same."""
    near = make_task_pair(family, similarity=0.0, seed=3, **SMALL_DIMS[family])
    far = make_task_pair(family, similarity=1.0, seed=3, **SMALL_DIMS[family])
    z, x = near.target.sample(200, seed=1)
    assert np.allclose(near.target.log_prob(x, z), far.target.log_prob(x, z), atol=1e-12)
    assert not np.allclose(near.source.log_prob(x, z), far.source.log_prob(x, z))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_experiment_expands_in_every_profile(profile):
    for experiment in EXPERIMENTS:
        cells = expand(experiment, profile, {})
        assert cells and len(set(cells)) == len(cells)
        for cell in cells:
            assert (cell.n_source is None) == (not cell.uses_source)
            assert "similarity" not in dict(cell.knobs) or cell.uses_source


def test_source_free_cells_are_shared_across_source_sizes():
    cells = expand(get_experiment("source_scaling"), "quick", {})
    scratch = [c for c in cells if c.method == "scratch"]
    transfer = [c for c in cells if c.method == "transfer"]
    assert len(scratch) == 1 and len(transfer) == 4


def test_overrides_replace_grid_keys():
    key, values = parse_override("n_target=50,100")
    cells = expand(get_experiment("calibration"), "quick", {key: values})
    assert sorted({c.n_target for c in cells}) == [50, 100]
    assert parse_override("similarity=0,0.5,mixture") == ("similarity", (0, 0.5, "mixture"))


def test_a_failed_ensemble_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    def diverging(members, training):
        raise FloatingPointError("loss became nan")

    monkeypatch.setitem(tasks.TRAINERS, "scratch", diverging)
    experiment = get_experiment("calibration")
    cells = expand(experiment, "smoke", {})
    plan = Plan({experiment.name: cells}, {experiment.name: [0, 1]})
    store = Store(tmp_path)
    summary = execute(plan, store, Settings(PROFILE_SETTINGS["smoke"]), Backend(), progress=False)
    frame = assemble(plan, store)
    failed = frame[frame.method == "scratch"]
    assert summary.failed == len(failed) == 4
    assert (failed.status == "failed").all() and failed.kl.isna().all()
    assert failed.error.str.contains("loss became nan").all()
    assert (frame[frame.method == "oracle"].status == "ok").all()


def _calibration_rows(scale: float, seeds: int = 10) -> pd.DataFrame:
    """Planted rows whose exact KL is ``scale`` times k/(2n), with seed-to-seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for method, k in (("scratch", k_scratch(4, 8, 2)), ("oracle", k_oracle(4, 2))):
        for n in (500, 1000, 2000):
            for seed in range(seeds):
                kl = scale * k / (2 * n) * rng.uniform(0.95, 1.05)
                rows.append(
                    {"experiment": "calibration", "model": "linear_gaussian", "method": method}
                    | {"family": "linear_gaussian", "n_target": n, "seed": seed, "status": "ok"}
                    | {"d_x": 4, "d_z": 8, "d_h": 2, "truth_seed": 0, "signal_source": 0.5}
                    | {"kl": kl, "kl_se": 0.01 * kl, "kl_exact": kl, "tv": 0.0, "tv_se": 0.0}
                )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("scale", "passes"), [(1.0, True), (2.0, False), (0.5, False)])
def test_verdict_calibration_fails_on_a_wrong_constant(scale, passes):
    found, slopes = judge(_calibration_rows(scale))
    calibration = [c for c in found if c.name.startswith("calibration 2nKL/k")]
    assert len(calibration) == 2 and all(c.passed == passes for c in calibration)
    assert np.allclose(slopes.fitted, -1.0, atol=0.1) and slopes.consistent.all()
