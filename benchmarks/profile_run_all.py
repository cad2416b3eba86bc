"""Where ``run_all.py``'s time goes: training, evaluation, likelihood ODE, report.

    python benchmarks/profile_run_all.py [--profile smoke|quick|reference] [--only A,B]
        [--set KEY=V1,V2 ...] [--seeds N] [--top 10]

Runs ``run_all.py``'s work for a profile in this process, with one worker so that the
profiler sees all of it, into a temporary directory (no cache), under cProfile. Prints the
wall time split into
- training: ``sims.engine``'s ``fit_minibatch`` and ``fit_full_batch``;
- evaluation: ``sims.evaluation``'s ``evaluate_ensemble`` and ``draw_samples``, less the
  likelihood ODE they call;
- likelihood ODE: ``sims.diffusion.likelihood.ode_log_prob``;
- report: ``sims.report.write_outputs`` (tables, figures, the report);
- other: the rest (planning, drawing the truth's samples, storing rows, imports);
then the ``--top`` functions by own time, and the peak resident memory of the process.
Times are under the profiler, which slows Python-heavy code more than the rest. (The file
is not named ``profile.py``: in this folder that name would shadow the standard library's
``profile``, which cProfile imports, and torch imports cProfile.)
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sims.runner.cli import main as run_all

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Part:
    """A share of the run: the functions (``path:name``, path relative to the repository)
    whose cumulative time it is; ``less`` names the part nested in it, subtracted."""

    name: str
    functions: tuple[str, ...]
    less: str | None = None


PARTS = (
    Part("training", ("sims/engine.py:fit_minibatch", "sims/engine.py:fit_full_batch")),
    Part(
        "evaluation",
        ("sims/evaluation.py:evaluate_ensemble", "sims/evaluation.py:draw_samples"),
        less="likelihood ODE",
    ),
    Part("likelihood ODE", ("sims/diffusion/likelihood.py:ode_log_prob",)),
    Part("report", ("sims/report/__init__.py:write_outputs",)),
)


def _where(key: tuple[str, int, str]) -> str:
    """``path:name`` of a pstats key; the path relative to the repository, or to
    site-packages, when inside it."""
    path, _, name = key
    parts = Path(path).parts
    if "site-packages" in parts:
        path = "/".join(parts[parts.index("site-packages") + 1 :])
    with contextlib.suppress(ValueError):
        path = Path(path).resolve().relative_to(ROOT).as_posix()
    return f"{path}:{name}"


def _is(where: str, function: str) -> bool:
    """Whether ``where`` (``path:name``) is ``function``, matched on the end of the path."""
    return where == function or where.endswith("/" + function)


def split(stats: pstats.Stats, wall: float) -> dict[str, tuple[float, int]]:
    """Each part's (seconds, calls of its functions), nested parts subtracted, and ``other``
    (the wall time left)."""
    found: dict[str, tuple[float, int]] = {}
    for key, (_, calls, _, cumulative, _) in stats.stats.items():
        where = _where(key)
        for part in PARTS:
            if any(_is(where, function) for function in part.functions):
                seconds, count = found.get(part.name, (0.0, 0))
                found[part.name] = (seconds + cumulative, count + calls)
    parts = {}
    for part in PARTS:
        seconds, calls = found.get(part.name, (0.0, 0))
        if part.less:
            seconds -= found.get(part.less, (0.0, 0))[0]
        parts[part.name] = (seconds, calls)
    parts["other"] = (wall - sum(seconds for seconds, _ in parts.values()), 0)
    return parts


def peak_rss_mib() -> float:
    """The process's peak resident set size, MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def top_lines(stats: pstats.Stats, count: int) -> list[str]:
    """The ``count`` functions with the most own time: own and cumulative seconds, calls."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:count]
    lines = [f"{'own_s':>8} {'cum_s':>8} {'calls':>9}  function"]
    for key, (_, calls, own, cumulative, _) in rows:
        lines.append(f"{own:8.2f} {cumulative:8.2f} {calls:9d}  {_where(key)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("smoke", "quick", "reference"), default="smoke")
    parser.add_argument("--only", metavar="A,B", help="run only these experiments")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=V1,V2", help="as run_all.py's"
    )
    parser.add_argument("--seeds", type=int, help="as run_all.py's")
    parser.add_argument("--top", type=int, default=10, help="functions listed by own time")
    args = parser.parse_args()
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="profile-") as out:
        argv = ["--profile", args.profile, "--jobs", "1", "--no-cache", "--out", out]
        argv += ["--only", args.only] if args.only else []
        argv += [word for override in args.set for word in ("--set", override)]
        argv += ["--seeds", str(args.seeds)] if args.seeds else []
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            profiler.enable()
            status = run_all(argv, root=ROOT)
            profiler.disable()
        wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"run_all.py {' '.join(argv)} exited with {status}")
    stats = pstats.Stats(profiler)
    print(
        f"profile={args.profile} only={args.only or 'all'} set={args.set} jobs=1 "
        f"torch threads={torch.get_num_threads()} (times under cProfile)"
    )
    print(f"{'part':<16} {'seconds':>8} {'share':>6} {'calls':>7}")
    for name, (seconds, calls) in split(stats, wall).items():
        print(f"{name:<16} {seconds:8.1f} {seconds / wall:6.1%} {calls or '':>7}")
    print(f"{'total':<16} {wall:8.1f}")
    if args.top:
        print("\n".join(top_lines(stats, args.top)))
    print(f"peak_rss_mib={peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
