"""benchmarks/run.py: what it prints, at toy sizes (the times themselves are not checked)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RATIO = r"\d+\.\d{2}"


@pytest.fixture
def run_module(monkeypatch):
    """benchmarks/run.py as a module, its folder on the import path as when run as a script."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("benchmarks_run", BENCHMARKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def output_lines(script: str, *arguments: str) -> list[str]:
    """The lines ``benchmarks/<script>`` prints with ``arguments`` (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()


@pytest.mark.end_to_end
def test_the_command_ends_with_the_cpu_speedup():
    lines = output_lines("run.py", "--members", "2", "--steps", "2", "--n", "40", "--repeats", "1")
    assert re.fullmatch(rf"ensemble_speedup_cpu={RATIO}", lines[-1])
    assert not any(line.startswith("ensemble_speedup_gpu_vs_cpu=") for line in lines)
    table = [line.split() for line in lines if line.split()[:1] in (["flow"], ["diffusion"])]
    ways = {(row[0], row[1], row[2]) for row in table if len(row) == 7}
    assert ways == {
        (model, way, "cpu")
        for model in ("flow", "diffusion")
        for way in ("ensemble", "ensemble_float32", "plain_loop")
    }


def test_measured_rows_give_the_geometric_mean(run_module):
    rows = run_module.measure(["diffusion"], members=2, steps=2, n=40, repeats=1)
    assert [(r.model, r.way, r.device) for r in rows] == [
        ("diffusion", "ensemble", "cpu"),
        ("diffusion", "ensemble_float32", "cpu"),
        ("diffusion", "plain_loop", "cpu"),
    ]
    assert all(r.seconds > 0 and r.peak_rss_mib > 0 for r in rows)
    ratio = rows[2].seconds / rows[0].seconds
    assert run_module.speedups(rows)["ensemble_speedup_cpu"] == pytest.approx(ratio)


def test_gpu_rows_add_their_line_before_the_last(run_module):
    def row(model, way, device, seconds):
        gpu = 100.0 if device == "cuda" else None
        return run_module.Row(model, way, device, seconds, 1.0, 1.0, 500.0, gpu)

    rows = [
        row("flow", "ensemble", "cpu", 2.0),
        row("flow", "plain_loop", "cpu", 8.0),
        row("flow", "ensemble", "cuda", 0.5),
        row("diffusion", "ensemble", "cpu", 1.0),
        row("diffusion", "plain_loop", "cpu", 1.0),
        row("diffusion", "ensemble", "cuda", 1.0),
    ]
    lines = run_module.report(rows, "header")
    assert lines[-2] == "ensemble_speedup_gpu_vs_cpu=2.00"  # sqrt(4 * 1)
    assert lines[-1] == "ensemble_speedup_cpu=2.00"  # sqrt(4 * 1)
    assert "peak_gpu_mib" in lines[1]


def test_step_flops_count_one_step_of_every_member(run_module):
    one = run_module.step_flops(run_module.make_problem("diffusion", 1, 2, 40))
    two = run_module.step_flops(run_module.make_problem("diffusion", 2, 2, 40))
    batch, widths = 256, [(8, 128), (128, 128), (128, 2), (6, 128), (128, 128), (128, 128)]
    forward = sum(2 * batch * a * b for a, b in widths + [(128, 2)])
    assert one >= 2 * forward  # forward and at least the weight gradients
    assert two == 2 * one


def test_the_plain_flow_loop_trains_the_engines_loss(run_module):
    """The baseline's loss, by zuko's own log_prob, is the flow's, up to rounding."""
    import ensemble  # benchmarks/ is on the path once run_module is loaded

    problem = run_module.make_problem("flow", 1, 2, 40)
    member, data = problem.models[0], problem.data[0]
    x, z = data.x.float(), data.z.float()
    ones, noise = torch.ones(len(x)), torch.randn(len(x), member.noise_features)
    expected = member(x, z, ones, noise)
    assert ensemble.user_loss(member, x, z, ones, noise).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


@pytest.mark.end_to_end
def test_ensemble_times_only_the_ways_asked_for_and_refuses_unknown_ones():
    toy = ["--model", "diffusion", "--members", "2", "--steps", "2", "--n", "40"]
    lines = output_lines("ensemble.py", *toy, "--ways", "ensemble,plain_loop")
    timed = [line.split()[0] for line in lines if " s " in line]
    assert timed == ["ensemble", "plain_loop"]
    assert re.fullmatch(rf"speedup_vs_plain_loop={RATIO}", lines[-1])
    command = [sys.executable, str(BENCHMARKS / "ensemble.py"), *toy, "--ways", "ensemble,loop"]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and "unknown loop" in refused.stderr


@pytest.mark.end_to_end
def test_evaluation_benchmark_ends_with_the_speedup_and_agreeing_rows():
    toy = ["--members", "2", "--profile", "smoke", "--steps", "2"]
    lines = output_lines("evaluation.py", *toy)
    assert re.fullmatch(rf"evaluation_speedup={RATIO}", lines[-1])
    gap = float(lines[-2].split("=")[1])
    assert gap < 0.05  # the two ways' KLs agree far within a standard error


def test_memory_benchmark_takes_each_models_largest_ensemble(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import memory

    units = memory.largest_units("target_scaling", "paper")
    assert [unit[0][0].model for unit in units] == ["flow", "diffusion"]
    for unit in units:
        assert {cell.method for cell, _ in unit} == {"pooled"}  # source rows train too
        assert [len(seeds) for _, seeds in unit] == [10] * 8  # 8 target sizes, 10 seeds
        assert max(cell.n_target for cell, _ in unit) == 12_800
    reference = memory.largest_units("target_scaling", "reference")
    members = {unit[0][0].model: {len(seeds) for _, seeds in unit} for unit in reference}
    assert members == {"flow": {16}, "diffusion": {10}}  # each model's own seeds


def test_memory_benchmark_pretrains_each_source_once(monkeypatch):
    """Cells that differ only in n_target share their source models, as in a run."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import memory

    trained = []

    def pretrain_task(unit, settings):
        trained.extend(cell.n_source for cell, _ in unit)
        return [[(cell.n_source, seed) for seed in seeds] for cell, seeds in unit]

    monkeypatch.setattr(memory, "pretrain_task", pretrain_task)
    (unit,) = memory.largest_units("crossover", "smoke")
    both = [(dataclasses.replace(c, n_target=n), seeds) for n in (200, 300) for c, seeds in unit]
    sources = memory.pretrained_sources(both, settings=None)
    assert sorted(trained) == [400, 1600]
    assert sources == [[(cell.n_source, seed) for seed in seeds] for cell, seeds in both]


@pytest.mark.end_to_end
def test_step_size_benchmark_trains_under_the_reference_settings_with_its_replacements():
    toy = ["--model", "flow", "--method", "scratch", "--n", "60", "--seeds", "1"]
    (line,) = output_lines("step_sizes.py", *toy, "--set", "max_steps=20")
    assert line.startswith("flow scratch n=60 lr=0.01 schedule=cosine max_steps=20: KL [")
    (line,) = output_lines(
        "step_sizes.py", *toy, "--set", "max_steps=20", "--set", "schedule=constant"
    )
    assert "lr=0.01 schedule=constant max_steps=20" in line


@pytest.mark.end_to_end
def test_likelihood_tail_benchmark_prints_each_members_kl_and_its_largest_log_ratio():
    lines = output_lines("likelihood_tail.py", "--method", "oracle", "--n", "30", "--seeds", "1,2")
    assert len(lines) == 2
    for seed, line in zip((1, 2), lines, strict=True):
        assert re.match(
            rf"oracle n_t=30 seed {seed}: KL -?\d+\.\d{{3}}, median log ratio .* largest 5 of "
            r"500 points carry \d+% of it; largest log ratio .* where log p = .*, at a "
            r"condition with \|h\(z\)\| = \d+\.\d\d, \d+\.\d\d from the nearest h",
            line,
        ), line
