"""The runner's parts: cells from grids, failure recording, and the verdict on planted rows."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_DIMS

from sims.experiments import EXPERIMENTS, PROFILE_SETTINGS, PROFILES, get_experiment
from sims.generators import families, make_task_pair
from sims.runner import tasks
from sims.runner.cells import Cell, expand, parse_override
from sims.runner.run import MAX_SIZE_RATIO, Backend, Plan, _units, assemble, execute
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
def test_every_experiment_expands_in_every_profile_it_runs_in(profile):
    for experiment in EXPERIMENTS:
        if profile not in experiment.seeds:
            with pytest.raises(ValueError, match="does not run in profile"):
                expand(experiment, profile, {})
            continue
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


def test_ensembles_split_where_sample_sizes_differ_too_much():
    """Members are padded to the largest member's rows: a floor cell (n_t = 51 200) does not
    train beside cells of n_t = 50, which would pay its held-out checks."""
    cells = expand(get_experiment("target_scaling"), "reference", {"method": ("scratch",)})
    floor = expand(get_experiment("floor"), "reference", {"method": ("scratch",)})
    work = [(c, [0]) for c in cells + floor if c.model == "flow"]
    units = _units(work, Cell.batch_key, Cell.rows)
    for unit in units:
        sizes = [cell.n_target for cell, _ in unit]
        assert max(sizes) <= MAX_SIZE_RATIO * min(sizes)
    assert sorted(len(u) for u in units) == [1, 3, 5]  # 50-800, 1600-6400, the floor
    assert sum(len(u) for u in units) == len(work)


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
