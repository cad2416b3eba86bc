"""The runner's parts: cells from grids, failure recording, and the verdict on planted rows."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_DIMS

from sims.experiments import EXPERIMENTS, PROFILE_SETTINGS, PROFILES, get_experiment
from sims.generators import families, make_task_pair
from sims.runner import tasks
from sims.runner.cells import expand, parse_override
from sims.runner.run import Backend, Plan, assemble, execute
from sims.runner.store import Store
from sims.runner.tasks import Settings


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
