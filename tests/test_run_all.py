"""run_all.py end to end: the smoke profile, resume after SIGKILL, determinism, the Dask
backend, and one-line errors for bad input."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sims.experiments import EXPERIMENTS
from sims.runner.cli import _plan, build_parser, main
from sims.runner.tasks import local_device
from sims.schema import CONTRACT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
# a small sweep: 2 methods x 2 n_t of flows at smoke size, transfer pre-trained first
SUBSET = [
    "--profile",
    "smoke",
    "--only",
    "target_scaling",
    "--set",
    "model=flow",
    "--set",
    "family=gaussian_smooth",
    "--set",
    "method=scratch,transfer",
]
pytestmark = pytest.mark.end_to_end
IDENTITY = ["experiment", "model", "method", "family", "n_source", "n_target", "seed"]


def run_all(*arguments, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_all.py", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The output directory of SUBSET run once with one job: the rows that every other run
    of it (again, resumed, on Dask) must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    run_all(*SUBSET, "--jobs", "1", "--out", str(out))
    return out


def numbers(out: Path) -> pd.DataFrame:
    """results.csv without the wall times, sorted by row identity."""
    frame = pd.read_csv(out / "results" / "results.csv").drop(columns="seconds")
    return frame.sort_values(IDENTITY).reset_index(drop=True)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The output directory of the whole smoke profile, and what the command printed."""
    out = tmp_path_factory.mktemp("smoke")
    return out, run_all("--profile", "smoke", "--out", str(out))


def test_smoke_profile_writes_every_output(smoke):
    tmp_path, result = smoke
    frame = pd.read_csv(tmp_path / "results" / "results.csv")
    assert list(frame.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    run = [e for e in EXPERIMENTS if "smoke" in e.seeds]
    assert set(frame.experiment) == {e.name for e in run}
    assert (frame.status == "ok").all(), frame[frame.status != "ok"].error.unique()
    assert not frame.duplicated(IDENTITY + ["d_z", "similarity"]).any()
    diffusion = frame[frame.model == "diffusion"]
    for column in ("score_err", "path_kl_bound", "kl_ode", "sw2", "mmd"):
        assert diffusion[column].notna().all(), column
    anchor = frame[frame.model == "linear_score"]
    assert anchor.kl_sampler.notna().all() and anchor.kl_ode_exact.notna().all()
    assert set(frame.precision) <= {"float32", "bfloat16"}
    full_batch = frame.model.isin(["linear_gaussian", "linear_score"])
    assert (frame[full_batch].precision == "float32").all()
    assert set(frame.device) == {local_device("auto")}
    report = (tmp_path / "results" / "report.md").read_text()
    for experiment in run:
        for suffix in ("png", "pdf"):
            figure = tmp_path / "figures" / f"{experiment.name}.{suffix}"
            assert figure.stat().st_size > 1000
            assert f"../figures/{experiment.name}.{suffix}" in report
        for suffix in ("md", "tex"):
            assert (tmp_path / "results" / "tables" / f"{experiment.name}.{suffix}").exists()
    for name in ("slopes.csv", "checks.csv", "tables/checks.md", "tables/slopes.tex"):
        assert (tmp_path / "results" / name).exists()
    for name in ("power", "claims"):
        assert (tmp_path / "results" / "tables" / f"{name}.md").exists()
    assert "0 failed" in result.stdout
    assert "## Must-hold checks and their power" in report and "What this run found:" in report


def verdict(*arguments) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "theory.verdict", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_the_verdict_judges_a_runs_rows_as_the_run_did(smoke, tmp_path):
    out, _ = smoke
    judged = verdict(str(out / "results" / "results.csv"), "--out", str(tmp_path))
    assert judged.returncode == 0, judged.stderr
    ran = pd.read_csv(out / "results" / "checks.csv")
    again = pd.read_csv(tmp_path / "checks.csv")
    pd.testing.assert_frame_equal(ran, again)
    assert "must-hold checks pass" in judged.stdout
    for name in ("slopes.csv", "tables/checks.md", "tables/power.md", "tables/claims.tex"):
        assert (tmp_path / name).exists()


def test_the_verdict_refuses_a_table_without_its_columns_in_one_line(smoke, tmp_path):
    out, _ = smoke
    rows = pd.read_csv(out / "results" / "results.csv").drop(columns="kl")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    refused = verdict(str(tmp_path / "rows.csv"))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "missing column(s) kl" in refused.stderr
    absent = verdict(str(tmp_path / "absent.csv"))
    assert absent.returncode == 2 and absent.stderr.count("\n") == 1


def test_the_verdict_fails_a_planted_error_and_exits_1(tmp_path):
    """Rows of the anchor whose KL is 20 % too high fail calibration."""
    from anchor import anchor_rows

    rows = anchor_rows(n_targets=(250, 1000, 4000), seeds=40)
    rows.assign(kl_exact=rows.kl_exact * 1.2).to_csv(tmp_path / "rows.csv", index=False)
    judged = verdict(str(tmp_path / "rows.csv"))
    assert judged.returncode == 1 and "failed" in judged.stderr
    rows.to_csv(tmp_path / "rows.csv", index=False)
    assert verdict(str(tmp_path / "rows.csv")).returncode == 0


def test_an_experiment_run_with_another_model_is_judged_without_a_traceback(tmp_path):
    result = run_all(
        "--profile", "smoke", "--only", "calibration", "--set", "model=flow", "--seeds", "5",
        "--out", str(tmp_path), "--check", check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr
    checks = pd.read_csv(tmp_path / "results" / "checks.csv")
    assert not checks.name.str.startswith("calibration").any()  # no closed-form KL to judge
    assert checks.name.str.startswith("oracle <= scratch").any()


def test_same_command_twice_gives_identical_numbers(tmp_path, reference):
    run_all(*SUBSET, "--jobs", "1", "--out", str(tmp_path))
    pd.testing.assert_frame_equal(numbers(reference), numbers(tmp_path))
    figures = sorted((reference / "figures").glob("*.pdf"))
    assert figures
    for first in figures:  # the same rows give the same files, to the byte
        assert first.read_bytes() == (tmp_path / "figures" / first.name).read_bytes()


def test_killed_run_resumes_to_the_uninterrupted_rows(tmp_path, reference):
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "run_all.py", *SUBSET, "--jobs", "1", "--out", str(killed)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = killed / "results" / "cache" / "rows"
    deadline = time.monotonic() + 120
    while not (rows.exists() and any(rows.glob("*.json"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list(rows.glob("*.json")))
    assert finished >= 1 and not (killed / "results" / "results.csv").exists()
    rerun = run_all(*SUBSET, "--jobs", "1", "--out", str(killed))
    trained = int(re.search(r"(\d+) ensembles trained", rerun.stdout).group(1))
    assert trained < 5  # 4 ensembles and 1 pre-training in all: the finished ones are skipped
    resumed = numbers(killed)
    assert not resumed.duplicated(IDENTITY).any()
    pd.testing.assert_frame_equal(resumed, numbers(reference))


def test_a_terminated_run_says_so_and_keeps_its_rows(tmp_path):
    """SIGTERM (a scheduler's pre-emption) stops the run as Ctrl-C does: exit 143."""
    process = subprocess.Popen(
        [sys.executable, "run_all.py", *SUBSET, "--jobs", "1", "--out", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    cache = tmp_path / "results" / "cache"
    deadline = time.monotonic() + 120
    while not any(cache.glob("rows/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "terminated: finished rows are saved" in stderr
    assert any(cache.glob("rows/*.json"))
    assert not (tmp_path / "results" / "results.csv").exists()


def test_another_precision_trains_anew(tmp_path, reference):
    """A run in the precision the reference run did not use reuses none of its rows."""
    shutil.copytree(reference, tmp_path, dirs_exist_ok=True)
    (used,) = pd.read_csv(reference / "results" / "results.csv").precision.unique()
    other = {"float32": "bfloat16", "bfloat16": "float32"}[used]
    second = run_all(*SUBSET, "--precision", other, "--out", str(tmp_path))
    assert f"networks trained in {other}" in second.stdout
    rows, new = re.search(r"(\d+) rows \((\d+) new", second.stdout).groups()
    assert new == rows  # nothing reused from the run in the other precision
    frame = pd.read_csv(tmp_path / "results" / "results.csv")
    assert (frame.precision == other).all()


def test_dask_backend_gives_the_rows_of_loky(tmp_path, reference):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        status = main(
            [*SUBSET, "--backend", "dask", "--scheduler", cluster.scheduler_address]
            + ["--out", str(tmp_path / "dask")]
        )
    assert status == 0
    pd.testing.assert_frame_equal(numbers(tmp_path / "dask"), numbers(reference))


BAD_INPUT = [
    (["--set", "colour=red"], "unknown key 'colour'"),
    (["--only", "nonsense"], "experiment 'nonsense' is not declared"),
    (["--only", "dimension", "--set", "d_h=9", "--set", "d_z=4"], "d_h=9 is not allowed"),
    (["--set", "n_target=0"], "n_target=0 is not allowed"),
    (["--set", "n_source=-5"], "n_source=-5 is not allowed"),
    (["--set", "d_x=-1"], "d_x=-1 is not allowed"),
    (["--set", "similarity=1.5"], "similarity=1.5 is not allowed"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--precision", "float16"], "invalid choice: 'float16'"),
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["--seeds", "0"], "'0' is not allowed: expected an integer >= 1"),
    (["--set", "n_target"], "expected KEY=V1,V2"),
    (["--backend", "dask"], "needs --scheduler"),
    (["--only", "floor"], "experiment 'floor' does not run in profile 'quick'"),
    (
        ["--only", "unconditional", "--set", "d_z=4"],
        "--set d_z is used by no experiment run: their families (shared_latent, "
        "shared_subspace) take no d_z",
    ),
    (["--set", "max_steps=10,20"], "--set max_steps takes one value, not 2"),
    (["--set", "max_steps=ten"], "--set max_steps=ten is not allowed: expected a positive int"),
    (["--set", "schedule=linear"], "schedule='linear' is not allowed"),
    (["--set", "held_out_fraction=2"], "expected a share in (0, 1)"),
    (
        ["--only", "unconditional", "--set", "model=linear_score"],
        "family='shared_subspace' has no linear_score model",
    ),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line(arguments, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*arguments, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not (tmp_path / "results").exists()


def test_an_out_that_cannot_be_written_exits_2_before_any_work(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "calibration", "--out", str(tmp_path / "file" / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot be written" in error, error


def test_training_settings_from_the_command_line_reach_the_training(tmp_path):
    run_all(*SUBSET, "--set", "max_steps=14", "--set", "eval_every=7", "--out", str(tmp_path))
    steps = pd.read_csv(tmp_path / "results" / "results.csv").best_step
    assert steps.isin([0, 7, 14]).all() and (steps > 0).any()  # the profile checks every 10


def test_a_set_key_some_experiments_take_is_applied_to_them_and_said(capsys, tmp_path):
    arguments = ["--profile", "smoke", "--only", "unconditional,dimension", "--set", "d_z=4"]
    plan, _ = _plan(build_parser(tmp_path).parse_args(arguments), None)
    assert {dict(c.knobs)["d_z"] for c in plan.cells["dimension"]} == {4}
    assert capsys.readouterr().out.strip() == (
        "--set d_z applies to all but unconditional, which take no d_z"
    )


def test_bad_input_from_a_shell_has_no_traceback():
    result = run_all("--set", "similarity=2", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "run_all.py: error: similarity=2 is not allowed: expected a number in [0, 1]"
    ]


def test_list_names_every_experiment(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    for experiment in EXPERIMENTS:
        assert experiment.name in listed and experiment.description[:30] in listed


PLUGIN = ROOT / "tests" / "plugins" / "two_modes.py"


def test_a_family_from_one_file_outside_the_package_runs_through_run_all(tmp_path):
    run_all(
        "--plugin",
        str(PLUGIN),
        "--profile",
        "smoke",
        "--only",
        "unconditional",
        "--set",
        "family=two_modes",
        "--set",
        "d_x=2",
        "--set",
        "method=scratch,transfer",
        "--out",
        str(tmp_path),
    )
    frame = pd.read_csv(tmp_path / "results" / "results.csv")
    assert set(frame.family) == {"two_modes"} and (frame.status == "ok").all()
    assert set(zip(frame.model, frame.method, strict=True)) == {
        (model, method) for model in ("flow", "diffusion") for method in ("scratch", "transfer")
    }
    assert (tmp_path / "figures" / "unconditional.png").stat().st_size > 0
    report = (tmp_path / "results" / "report.md").read_text()
    assert "## unconditional" in report and "families two_modes" in report


def test_a_plugin_that_cannot_be_loaded_exits_2_with_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--plugin", str(tmp_path / "missing.py"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot be loaded" in error, error
