"""The runner's parts: cells from grids, failure recording, and the verdict on planted rows."""

from __future__ import annotations

import dataclasses
import io
import shutil
import warnings
from collections import defaultdict
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from conftest import SMALL_DIMS
from holding import holding

import sims
from sims.experiments import (
    EXPERIMENTS,
    PROFILE_SETTINGS,
    PROFILES,
    Experiment,
    get_experiment,
)
from sims.generators import families, family_knobs, make_task_pair
from sims.methods import make_members, pretrain
from sims.runner import run as run_module
from sims.runner import tasks
from sims.runner.cells import Cell, expand, parse_override
from sims.runner.cli import _plan, build_parser
from sims.runner.keys import code_version
from sims.runner.run import LOKY_REPLACED_A_WORKER, Backend, Plan, assemble, execute
from sims.runner.schedule import MAX_SIZE_RATIO, PRETRAIN, TRAIN, Task, schedule, units
from sims.runner.store import Store
from sims.runner.tasks import Settings, restored, stored


@pytest.mark.parametrize("family", [f for f in families() if "similarity" in family_knobs(f)])
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


def test_a_profiles_replacements_split_the_grid_by_model_and_method():
    """A tuple of replacements makes one sub-grid of each: here the flows' transfer at two
    source levels, the score networks' at three and their oracle at another n_t, while the
    quick profile keeps the grid; a key the grid lacks is not added."""
    experiment = Experiment(
        "toy",
        "two models, one with a third source level",
        "rates",
        "n_target",
        {
            "model": ("flow", "diffusion"),
            "method": ("transfer", "oracle"),
            "family": ("gaussian_smooth",),
            "n_target": (100,),
            "n_source": (1000,),
        },
        seeds={"quick": 1, "reference": 1},
        sizes={
            "reference": (
                {"model": ("flow",), "method": ("transfer",), "n_source": (2000, 8000)},
                {"model": ("diffusion",), "method": ("transfer",), "n_source": (500, 2000, 8000)},
                {"model": ("diffusion",), "method": ("oracle",), "n_target": (300,), "d_z": (4,)},
            )
        },
    )
    levels = defaultdict(set)
    for cell in expand(experiment, "reference", {}):
        levels[cell.model, cell.method].add((cell.n_target, cell.n_source))
    assert levels == {
        ("flow", "transfer"): {(100, 2000), (100, 8000)},
        ("diffusion", "transfer"): {(100, 500), (100, 2000), (100, 8000)},
        ("diffusion", "oracle"): {(300, None)},
    }
    assert {(c.n_source, c.method) for c in expand(experiment, "quick", {})} == {
        (1000, "transfer"),
        (None, "oracle"),
    }
    assert all("d_z" not in dict(c.knobs) for c in expand(experiment, "reference", {}))


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
    smooth = [c for c in cells + floor if c.family == "gaussian_smooth"]
    work = [(c, [0]) for c in smooth if c.model == "flow"]
    found = units(work, Cell.batch_key, Cell.rows)
    for unit in found:
        sizes = [cell.n_target for cell, _ in unit]
        assert max(sizes) <= MAX_SIZE_RATIO * min(sizes)
    assert sorted(len(u) for u in found) == [1, 3, 5]  # 50-800, 1600-6400, the floor
    assert sum(len(u) for u in found) == len(work)


def test_overrides_replace_grid_keys():
    key, values = parse_override("n_target=50,100")
    cells = expand(get_experiment("calibration"), "quick", {key: values})
    assert sorted({c.n_target for c in cells}) == [50, 100]
    assert parse_override("similarity=0,0.5,mixture") == ("similarity", (0, 0.5, "mixture"))


def test_a_failed_ensemble_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    def diverging(members, training):
        raise FloatingPointError("loss became nan")

    scratch = dataclasses.replace(tasks.METHODS["scratch"], fit=diverging)
    monkeypatch.setitem(tasks.METHODS, "scratch", scratch)
    experiment = get_experiment("calibration")
    cells = expand(experiment, "smoke", {})
    plan = Plan({experiment.name: cells}, {experiment.name: [0, 1]})
    store = Store(tmp_path)
    summary = execute(plan, store, Settings(PROFILE_SETTINGS["smoke"]), Backend(), progress=False)
    frame = assemble(plan, store, Settings(PROFILE_SETTINGS["smoke"]))
    failed = frame[frame.method == "scratch"]
    assert summary.failed == len(failed) == 4
    assert (failed.status == "failed").all() and failed.kl.isna().all()
    assert failed.error.str.contains("loss became nan").all()
    assert (frame[frame.method == "oracle"].status == "ok").all()


def test_a_model_with_its_own_seeds_is_run_and_assembled_with_them(tmp_path, monkeypatch):
    def diverging(members, training):
        raise FloatingPointError("loss became nan")  # a failed row costs no training

    monkeypatch.setitem(
        tasks.METHODS, "scratch", dataclasses.replace(tasks.METHODS["scratch"], fit=diverging)
    )
    experiment = get_experiment("target_scaling")
    overrides = {"model": ("flow", "diffusion"), "method": ("scratch",), "n_target": (60,)}
    cells = {experiment.name: expand(experiment, "smoke", overrides)}
    plan = Plan(cells, {experiment.name: [0]}, {experiment.name: {"flow": [0, 1, 2]}})
    settings = Settings(PROFILE_SETTINGS["smoke"])
    execute(plan, Store(tmp_path), settings, Backend(), progress=False)
    for frame in (
        assemble(plan, Store(tmp_path), settings),
        assemble(plan.part(experiment.name), Store(tmp_path), settings),
    ):
        for (model, _), seeds in frame.groupby(["model", "cell"]).seed:
            assert sorted(seeds) == ([0, 1, 2] if model == "flow" else [0])
        assert set(frame.model) == {"flow", "diffusion"}


def test_the_reference_runs_flows_with_more_seeds_unless_seeds_are_given(tmp_path):
    parser = build_parser(tmp_path)
    for argv, flows, networks in (([], 16, 10), (["--seeds", "3"], 3, 3)):
        args = parser.parse_args(["--profile", "reference", "--only", "target_scaling", *argv])
        plan, _ = _plan(args, parser)
        seeds = {
            c.model: len(plan.seeds_of("target_scaling", c)) for c in plan.cells["target_scaling"]
        }
        assert seeds == {"flow": flows, "diffusion": networks}


def _flow_scratch_plan() -> Plan:
    experiment = get_experiment("target_scaling")
    overrides = {"model": ("flow",), "method": ("scratch",), "n_target": (50,)}
    return Plan({experiment.name: expand(experiment, "smoke", overrides)}, {experiment.name: [0]})


def test_the_cache_reuses_rows_only_under_the_settings_that_made_them(tmp_path, monkeypatch):
    """An unchanged rerun trains nothing; an edited training setting, evaluation size or
    architecture width recomputes, and the rows of the run's own settings are the ones
    assembled."""
    plan, store = _flow_scratch_plan(), Store(tmp_path)
    smoke = PROFILE_SETTINGS["smoke"]
    first = Settings(smoke)
    rows = len(plan.cells["target_scaling"])
    assert execute(plan, store, first, Backend(), progress=False).new_rows == rows
    assert execute(plan, store, first, Backend(), progress=False).tasks == 0
    longer = dataclasses.replace(smoke.training, max_steps=smoke.training.max_steps + 20)
    edited = Settings(dataclasses.replace(smoke, training=longer))
    assert execute(plan, store, edited, Backend(), progress=False).new_rows == rows
    sizes = dataclasses.replace(smoke.sizes, n_kl=smoke.sizes.n_kl + 1)
    resized = Settings(dataclasses.replace(smoke, sizes=sizes))
    assert execute(plan, store, resized, Backend(), progress=False).new_rows == rows
    narrower = dataclasses.replace(tasks.ARCHITECTURES["flow"], hidden=16)
    monkeypatch.setitem(tasks.ARCHITECTURES, "flow", narrower)
    assert execute(plan, store, first, Backend(), progress=False).new_rows == rows
    monkeypatch.undo()
    keys = {first.key(c) for c in plan.cells["target_scaling"]}
    assert set(assemble(plan, store, first).cell) == keys
    assert set(assemble(plan, store, edited).cell).isdisjoint(keys)


def test_more_seeds_train_and_pre_train_only_the_new_ones(tmp_path, monkeypatch):
    """Declaring more seeds trains rows for the new seeds alone, pre-trains source models for
    them alone, and gives every seed the row a run of all seeds at once gives it."""
    experiment = get_experiment("target_scaling")
    overrides = {"model": ("flow",), "method": ("transfer",), "n_target": (50,)}
    cells = {experiment.name: expand(experiment, "smoke", overrides)}
    settings = Settings(PROFILE_SETTINGS["smoke"])
    pretrained_seeds = []

    def recording(unit, settings):
        pretrained_seeds.extend(seed for _, seeds in unit for seed in seeds)
        return tasks.pretrain_task(unit, settings)

    monkeypatch.setattr(run_module, "pretrain_task", recording)
    extended = tmp_path / "extended"
    execute(
        Plan(cells, {experiment.name: [0, 1]}), Store(extended), settings, Backend(), progress=False
    )
    pretrained_seeds.clear()
    plan = Plan(cells, {experiment.name: [0, 1, 2]})
    summary = execute(plan, Store(extended), settings, Backend(), progress=False)
    assert summary.new_rows == len(cells[experiment.name])
    assert set(pretrained_seeds) == {2}
    at_once = tmp_path / "at_once"
    execute(plan, Store(at_once), settings, Backend(), progress=False)
    rows = [
        assemble(plan, Store(d), settings).set_index(["cell", "seed"]).kl.sort_index()
        for d in (extended, at_once)
    ]
    assert rows[0].to_numpy() == pytest.approx(rows[1].to_numpy(), rel=1e-6)


def test_a_worker_replaced_for_its_memory_does_not_warn():
    """loky replaces a worker whose memory grew by 300 MB after its first task and warns
    while tasks wait; the runner's backend keeps that warning out of a run's output."""
    tasks_ = [(holding, 0)] * 2 + [(holding, 400)] * 2 + [(holding, 0)] * 4
    for quiet in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if quiet:
                results = sorted(result for _, result in Backend(jobs=2).run(tasks_))
            else:
                calls = (joblib.delayed(holding)(size) for _, size in tasks_)
                results = sorted(joblib.Parallel(n_jobs=2)(calls))
        assert results == sorted(size for _, size in tasks_)
        replaced = [w for w in caught if LOKY_REPLACED_A_WORKER in str(w.message)]
        assert bool(replaced) != quiet


def test_the_code_version_follows_the_sources_that_compute_rows(tmp_path):
    package = tmp_path / "sims"
    shutil.copytree(Path(sims.__file__).parent, package)
    version = code_version.__wrapped__(package)
    (package / "report" / "new.py").write_text("# not a row's code\n")
    declared = package / "experiments.py"
    declared.write_text(declared.read_text() + "\n# more seeds declared\n")
    assert code_version.__wrapped__(package) == version
    (package / "engine.py").write_text((package / "engine.py").read_text() + "\n# edited\n")
    assert code_version.__wrapped__(package) != version


@pytest.mark.parametrize("model", ["flow", "diffusion"])
def test_a_stored_source_model_loads_with_weights_only_to_the_same_model_on_the_cpu(model, family):
    """Restored for training on a GPU, the source model still loads on the CPU: transfer
    builds its target model there over the source embedding and computes its start there (a
    latent law's draws, a moment-matched head), so a source model on the GPU left such models
    split across devices. No GPU is touched here."""
    pair = make_task_pair(family, similarity=0.3, seed=2, **SMALL_DIMS[family])
    training = Settings(PROFILE_SETTINGS["smoke"], device="cpu").training(model)
    (member,) = make_members(pair, [4], 64, 64)
    (fitted,) = pretrain([member], training)
    buffer = io.BytesIO()
    torch.save({"source": [stored(fitted)]}, buffer)
    buffer.seek(0)
    (record,) = torch.load(buffer, weights_only=True)["source"]
    loaded = restored(record, member, dataclasses.replace(training, device="cuda"))
    assert {t.device.type for t in loaded.model.state_dict().values()} == {"cpu"}
    assert (loaded.n_train, loaded.best_step) == (fitted.n_train, fitted.best_step)
    noise = torch.randn(64, fitted.model.noise_features)
    x, z, weight = member.source.x, member.source.z, torch.ones(64)
    with torch.no_grad():
        expected = fitted.model(x.float(), None if z is None else z.float(), weight, noise)
        found = loaded.model(x.float(), None if z is None else z.float(), weight, noise)
    torch.testing.assert_close(found, expected, rtol=1e-6, atol=1e-6)


def test_a_models_own_step_size_trains_it_and_keys_only_its_rows():
    smoke = PROFILE_SETTINGS["smoke"]
    own = Settings(dataclasses.replace(smoke, model_training=(("flow", {"learning_rate": 5e-3}),)))
    assert own.training("flow").config.learning_rate == 5e-3
    assert own.training("diffusion").config == smoke.training
    assert own.fingerprint("flow") != Settings(smoke).fingerprint("flow")
    assert own.fingerprint("diffusion") == Settings(smoke).fingerprint("diffusion")


def _two_experiments(profile: str = "smoke") -> dict[str, list[Cell]]:
    rates = {"model": ("flow",), "n_target": (50, 100)}
    return {
        "calibration": expand(get_experiment("calibration"), profile, {}),
        "source_scaling": expand(get_experiment("source_scaling"), profile, rates),
    }


def test_the_schedule_trains_every_missing_seed_once_first_experiments_first():
    experiments = _two_experiments()
    missing = {cell: [0, 1] for cells in experiments.values() for cell in cells}
    sources = {c.pretraining_key(): c for c in missing if c.pretrained}
    plan = schedule(experiments, missing, {c: [0, 1] for c in sources.values()})
    trained = [
        (cell, seed)
        for task in plan.tasks()
        if task.kind == TRAIN
        for cell, seeds in task.unit
        for seed in seeds
    ]
    assert sorted(trained, key=str) == sorted(
        [(c, s) for c, seeds in missing.items() for s in seeds], key=str
    )
    first, second = plan.waves
    assert all(t.unit[0][0].pretrained for t in second)
    assert sorted(c.pretraining_key() for t in first if t.kind == PRETRAIN for c, _ in t.unit) == (
        sorted(sources)
    )
    calibration = set(experiments["calibration"])
    needs = [any(c in calibration for c, _ in t.unit) for t in first if t.kind == TRAIN]
    assert needs == sorted(needs, reverse=True)  # calibration's ensembles lead the wave
    for name, cells in experiments.items():
        serving = {
            i
            for i, t in enumerate(plan.tasks())
            if t.kind == TRAIN and set(cells) & {c for c, _ in t.unit}
        }
        assert plan.waits[name] == serving


def test_each_experiment_is_announced_once_when_its_rows_are_done(tmp_path):
    experiments = _two_experiments()
    plan, store = Plan(experiments, {name: [0] for name in experiments}), Store(tmp_path)
    settings = Settings(PROFILE_SETTINGS["smoke"])
    announced = []

    def finished(name):
        have = set(assemble(plan, store, settings).query("experiment == @name").cell)
        assert have == {settings.key(c) for c in experiments[name]}
        announced.append(name)

    execute(plan, store, settings, Backend(), progress=False, finished=finished)
    assert announced == ["calibration", "source_scaling"]
    execute(plan, store, settings, Backend(), progress=False, finished=finished)
    assert announced[2:] == ["calibration", "source_scaling"]  # nothing to train: at once


def test_the_progress_counts_work_so_that_thousands_of_closed_form_fits_weigh_little():
    experiments = {
        name: expand(get_experiment(name), "quick", {}) for name in ("calibration", "dimension")
    }
    seeds = {name: get_experiment(name).seeds["quick"] for name in experiments}
    missing = {c: list(range(seeds[n])) for n, cells in experiments.items() for c in cells}
    tasks = schedule(experiments, missing, {}).tasks()
    steps = PROFILE_SETTINGS["quick"].training.max_steps
    anchors = [t for t in tasks if t.unit[0][0].model == "linear_gaussian"]
    share = lambda measure: sum(map(measure, anchors)) / sum(map(measure, tasks))  # noqa: E731
    assert share(Task.models) > 0.9  # most models are closed-form fits
    assert share(lambda t: t.work(steps)) < 0.5  # but they are not most of the work
