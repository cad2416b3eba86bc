"""The training benchmarks side by side: ensemble vs plain loop, for flows and diffusion.

    python benchmarks/run.py [--members 32] [--steps 200] [--n 1000] [--repeats 2]
        [--device cpu|cuda]

For each model kind (conditional spline flows, conditional score networks), trains the same
members the same number of Adam steps on the same data three ways on the CPU (see
``benchmarks/ensemble.py``): all in one ensemble as ``run_all.py`` trains them (the
networks' products in bfloat16 where the CPU has native bfloat16), the same ensemble in
float32 throughout, and one plain float32 training loop per model.
Each time is the fastest of ``--repeats`` runs. Prints the CPU's matrix-product peak
(float32 and bfloat16), a table (wall seconds, throughput in member-steps per second,
the rate of the steps' matrix-product arithmetic in GFLOP/s, the process's peak resident
memory so far) and, last,

    ensemble_speedup_cpu=<geometric mean over the kinds of plain loop time / ensemble time>

With ``--device cuda`` the ensembles are also trained on the GPU, and the line before the
last is ``ensemble_speedup_gpu_vs_cpu=<geometric mean of CPU / GPU ensemble time>``.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from ensemble import MODELS, make_problem, step_flops, timings

from sims.models.precision import resolve

CPU_WAYS = ("ensemble", "ensemble_float32", "plain_loop")


@dataclass(frozen=True)
class Row:
    """One timing: model kind, way of training, device, wall seconds, throughput in
    member-steps per second (models x Adam steps of a 256-row batch, per second), the rate
    of matrix-product arithmetic (GFLOP/s), memory."""

    model: str
    way: str
    device: str
    seconds: float
    throughput: float
    gflops: float
    peak_rss_mib: float
    peak_device_mib: float | None = None


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, MiB (ru_maxrss: KiB on Linux, bytes on
    macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a ``size`` x ``size`` matrix product in ``dtype`` on the CPU, the best of
    ``repeats`` after one untimed product."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def measure(
    models: Sequence[str],
    members: int,
    steps: int,
    n: int,
    repeats: int,
    device: str = "cpu",
    progress: Callable[[str], None] = lambda line: None,
) -> list[Row]:
    """The rows of the table: per model kind, the CPU ensemble and plain loop and, when
    ``device`` is ``cuda``, the GPU ensemble; each time the fastest of ``repeats``."""
    runs = [("cpu", CPU_WAYS)] + ([("cuda", ("ensemble",))] if device == "cuda" else [])
    rows = []
    for model in models:
        problem = make_problem(model, members, steps, n)
        work = members * steps
        flops = step_flops(problem) * steps
        for on, ways in runs:
            if on == "cuda":
                torch.cuda.reset_peak_memory_stats()
            best = {way: math.inf for way in ways}
            for _ in range(repeats):
                for way, seconds in timings(problem, ways, on).items():
                    best[way] = min(best[way], seconds)
            gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if on == "cuda" else None
            for way in ways:
                seconds = best[way]
                row = Row(
                    model,
                    way,
                    on,
                    seconds,
                    work / seconds,
                    flops / seconds / 1e9,
                    peak_rss_mib(),
                    gpu_peak,
                )
                rows.append(row)
                progress(f"  {model} {way} on {on}: {row.seconds:.2f} s")
    return rows


def speedups(rows: Sequence[Row]) -> dict[str, float]:
    """``ensemble_speedup_cpu`` and, with GPU rows, ``ensemble_speedup_gpu_vs_cpu``:
    geometric means over the model kinds."""
    seconds = {(r.model, r.way, r.device): r.seconds for r in rows}
    models = sorted({r.model for r in rows})
    out = {
        "ensemble_speedup_cpu": geometric_mean(
            [seconds[m, "plain_loop", "cpu"] / seconds[m, "ensemble", "cpu"] for m in models]
        )
    }
    if any(r.device == "cuda" for r in rows):
        out["ensemble_speedup_gpu_vs_cpu"] = geometric_mean(
            [seconds[m, "ensemble", "cpu"] / seconds[m, "ensemble", "cuda"] for m in models]
        )
    return out


def report(rows: Sequence[Row], header: str) -> list[str]:
    """The printed lines: header, table, per-kind ratios, the summary lines
    (``ensemble_speedup_cpu`` last)."""
    on_gpu = any(r.device == "cuda" for r in rows)
    columns = (
        f"{'model':<10} {'way':<16} {'device':<6} {'seconds':>8} {'member-steps/s':>16} "
        f"{'matmul_gflop/s':>14}"
    )
    lines = [header, columns + f" {'peak_rss_mib':>13}" + (f" {'peak_gpu_mib':>13}" * on_gpu)]
    for r in rows:
        line = (
            f"{r.model:<10} {r.way:<16} {r.device:<6} {r.seconds:8.2f} {r.throughput:16.0f} "
            f"{r.gflops:14.1f} {r.peak_rss_mib:13.0f}"
        )
        if on_gpu:
            gpu = "-" if r.peak_device_mib is None else f"{r.peak_device_mib:.0f}"
            line += f" {gpu:>13}"
        lines.append(line)
    seconds = {(r.model, r.way, r.device): r.seconds for r in rows}
    for model in sorted({r.model for r in rows}):
        for way in ("ensemble", "ensemble_float32"):
            if (model, way, "cpu") in seconds:
                ratio = seconds[model, "plain_loop", "cpu"] / seconds[model, way, "cpu"]
                lines.append(f"{model}: plain loop / {way} on the CPU = {ratio:.2f}")
    summary = speedups(rows)
    if on_gpu:
        lines.append(f"ensemble_speedup_gpu_vs_cpu={summary['ensemble_speedup_gpu_vs_cpu']:.2f}")
    lines.append(f"ensemble_speedup_cpu={summary['ensemble_speedup_cpu']:.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=32, help="models per ensemble")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps per model")
    parser.add_argument("--n", type=int, default=1000, help="training samples per member")
    parser.add_argument("--repeats", type=int, default=2, help="runs per time; the fastest")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    rows = measure(
        MODELS,
        args.members,
        args.steps,
        args.n,
        args.repeats,
        args.device,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    header = (
        f"members={args.members} steps={args.steps} n={args.n} repeats={args.repeats} "
        f"torch={torch.__version__} threads={torch.get_num_threads()} "
        f"ensemble precision={resolve('auto', 'cpu')}\n"
        f"matmul peak of this CPU (2048 x 2048): float32 {matmul_peak(torch.float32):.0f}, "
        f"bfloat16 {matmul_peak(torch.bfloat16):.0f} GFLOP/s"
    )
    print("\n".join(report(rows, header)))


if __name__ == "__main__":
    main()
