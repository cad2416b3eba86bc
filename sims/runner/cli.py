"""The command line of ``run_all.py``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sims.engine import MinibatchConfig
from sims.experiments import EXPERIMENTS, PROFILE_SETTINGS, PROFILES, Profile, get_experiment
from sims.generators import load_plugin
from sims.models.precision import PRECISIONS, resolve
from sims.report import write_experiment, write_outputs
from sims.runner.cells import CELL_KEYS, expand, grid_keys, parse_override
from sims.runner.run import Backend, Plan, assemble, execute
from sims.runner.store import Store
from sims.runner.tasks import Settings, local_device
from theory.checks import MUST_HOLD

EXAMPLES = """\
examples:
  python run_all.py                        every figure, quick profile (minutes on a laptop CPU)
  python run_all.py --profile smoke        the whole pipeline at toy size (about a minute)
  python run_all.py --list                 the experiments, one line each
  python run_all.py --only target_scaling --set n_target=100,1000 --seeds 5
  python run_all.py --only dimension --set d_z=4,8,16,32,64
  python run_all.py --profile paper --device cuda
  python run_all.py --profile paper --backend dask --scheduler tcp://HOST:8786
  python run_all.py --check                exit 1 when a must-hold check fails

A killed run resumes where it stopped: rerun the same command. Finished rows are kept under
OUT/results/cache/, keyed by everything that makes them (settings, architecture, precision,
code); --no-cache recomputes them.
"""


TRAINING_KEYS = tuple(field.name for field in dataclasses.fields(MinibatchConfig))


class _Parser(argparse.ArgumentParser):
    """Reports bad input as one line and exits 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: expected an integer >= 1")
    return value


def build_parser(root: Path) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="run_all.py",
        description="Transfer learning in generative models, against exact ground truth: "
        "train flows and diffusion models with and without transfer on synthetic tasks "
        "whose densities are known, and render every figure and table.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="quick",
        help="smoke: toy sizes, about a minute; quick (default): every figure on a laptop "
        "CPU in minutes; reference: the rate experiments and their floors on 2 CPU cores "
        "(the committed results in reference/); paper: the full grids, for a GPU or a cluster",
    )
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--only", metavar="A,B", help="run only these experiments")
    parser.add_argument(
        "--set",
        metavar="KEY=V1,V2",
        action="append",
        default=[],
        help="override a grid key for the experiments run (repeatable), e.g. "
        "n_target=100,1000 or family=mixture; keys: " + ", ".join(grid_keys()) + "; or a "
        "training setting, one value: " + ", ".join(TRAINING_KEYS),
    )
    parser.add_argument("--seeds", type=_positive_int, metavar="N", help="replicates per cell")
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="parallel worker processes (default: the number of CPU cores)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="of the networks' weights and activations in training steps (the weights "
        "kept, the optimiser, held-out losses and evaluation stay float32); auto: bfloat16 "
        "where the device of this machine has native bfloat16, else float32. Rows record "
        "it, and it is part of the rows' cache key",
    )
    parser.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="loky: processes on this machine; dask: a Dask distributed cluster",
    )
    parser.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address")
    parser.add_argument(
        "--out",
        type=Path,
        default=root,
        metavar="DIR",
        help="write DIR/results/ and DIR/figures/ (default: the repository root)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="load families of one's own from a module (mypkg.myfamily) or a Python file "
        "before planning, here and in every worker (repeatable)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a must-hold check fails")
    parser.add_argument("--no-cache", action="store_true", help="recompute finished rows")
    return parser


def _training_overrides(overrides: dict[str, tuple], parser) -> dict[str, object]:
    """The ``--set`` keys that are training settings (``MinibatchConfig``'s fields), one
    value each; removed from ``overrides``."""
    found = {}
    for key in [k for k in overrides if k in TRAINING_KEYS]:
        values = overrides.pop(key)
        if len(values) != 1:
            parser.error(f"--set {key} takes one value, not {len(values)}")
        value, default = values[0], getattr(MinibatchConfig(), key)
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if type(value) is not type(default) or (not isinstance(value, str) and value <= 0):
            parser.error(
                f"--set {key}={values[0]} is not allowed: expected a positive "
                f"{type(default).__name__}"
            )
        found[key] = value
    return found


def _profile(args, training: dict[str, object], parser) -> Profile:
    """The chosen profile with the training settings of ``--set``; a setting made there is
    every model's, in place of a model's own."""
    profile = PROFILE_SETTINGS[args.profile]
    if not training:
        return profile
    try:
        config = dataclasses.replace(profile.training, **training)
    except (TypeError, ValueError) as error:
        parser.error(f"--set {', '.join(training)}: {error}")
    own = tuple(
        (model, {k: v for k, v in settings.items() if k not in training})
        for model, settings in profile.model_training
    )
    return dataclasses.replace(profile, training=config, model_training=own)


def _unused(overrides: dict[str, tuple], cells: dict[str, list]) -> dict[str, list[str]]:
    """For each ``--set`` family knob, the experiments none of whose cells take it."""
    unused = {}
    for key in overrides:
        if key in CELL_KEYS:
            continue
        unused[key] = [
            name for name, found in cells.items() if not any(key in dict(c.knobs) for c in found)
        ]
    return unused


def _plan(args, parser) -> tuple[Plan, dict[str, object]]:
    """The run's plan, and the training settings ``--set`` gives."""
    everything = [e.name for e in EXPERIMENTS if args.profile in e.seeds]
    names = args.only.split(",") if args.only else everything
    try:
        experiments = [get_experiment(name.strip()) for name in names]
        overrides = dict(parse_override(text) for text in args.set)
        training = _training_overrides(overrides, parser)
        cells = {e.name: expand(e, args.profile, overrides) for e in experiments}
    except ValueError as error:
        parser.error(str(error))
    for key, names_without in _unused(overrides, cells).items():
        if len(names_without) == len(cells):
            families = sorted({c.family for found in cells.values() for c in found})
            parser.error(
                f"--set {key} is used by no experiment run: their families "
                f"({', '.join(families)}) take no {key}"
            )
        if names_without:
            print(f"--set {key} applies to all but {', '.join(names_without)}, which take no {key}")
    return Plan.of(cells, args.profile, args.seeds), training


def _check_out(out: Path, parser) -> None:
    """Exit 2 unless ``out`` can be created and written, before any work."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        parser.error(f"--out {out} cannot be written: {error.strerror or error}")


def _check_backend(args, parser) -> Backend:
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda is not available on this machine: expected auto or cpu")
    if args.backend == "dask" and not args.scheduler:
        parser.error("--backend dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
    if args.scheduler and args.backend != "dask":
        parser.error("--scheduler is used only with --backend dask")
    return Backend(args.backend, args.jobs, args.scheduler)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (``kill``, a batch scheduler's pre-emption or time limit); an
    interrupt, so that nothing records it as a failed model and the workers stop."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread, so that the run
    stops as on Ctrl-C: workers are shut down and the finished rows are kept."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return

    def terminated(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """Run ``run_all.py`` with ``argv``; ``root`` is the default ``--out`` (the working
    directory when ``None``). Returns the exit status."""
    parser = build_parser(root or Path.cwd())
    args = parser.parse_args(argv)
    plugins = tuple(str(Path(p).resolve()) if p.endswith(".py") else p for p in args.plugin)
    for spec in plugins:
        try:
            load_plugin(spec)
        except ValueError as error:
            parser.error(str(error))
    if args.list:
        for e in EXPERIMENTS:
            profiles = "" if len(e.seeds) == len(PROFILES) else f" [{', '.join(e.seeds)} only]"
            print(f"{e.name:18} {e.description}{profiles}")
        return 0
    plan, training = _plan(args, parser)
    profile = _profile(args, training, parser)
    backend = _check_backend(args, parser)
    _check_out(args.out, parser)
    threads = 1 if args.backend == "dask" else max(1, (os.cpu_count() or 1) // args.jobs)
    precision = resolve(args.precision, local_device(args.device))
    settings = Settings(profile, args.device, threads, precision, plugins)
    store = Store(args.out / "results" / "cache")
    started = time.perf_counter()
    cells = sum(len(c) for c in plan.cells.values())
    print(
        f"profile {args.profile}: {len(plan.cells)} experiment(s), {cells} cells; "
        f"networks trained in {precision}",
        flush=True,
    )

    def finished(name: str) -> None:
        """Write an experiment's rows, table and figure as soon as it has all its rows."""
        written = write_experiment(assemble(plan.part(name), store, settings), name, args.out)
        figure = "" if written is None or isinstance(written[0], str) else written[0][0]
        tqdm.write(f"{name}: done after {time.perf_counter() - started:.0f} s {figure}".rstrip())

    try:
        with _terminate_as_interrupt():
            summary = execute(
                plan, store, settings, backend, use_cache=not args.no_cache, finished=finished
            )
    except KeyboardInterrupt as stop:
        word, status = ("terminated", 143) if isinstance(stop, Terminated) else ("interrupted", 130)
        print(
            f"\n{word}: finished rows are saved; rerun the same command to resume",
            file=sys.stderr,
        )
        return status
    frame = assemble(plan, store, settings)
    failed = int((frame.status == "failed").sum())
    print(
        f"{len(frame)} rows ({summary.new_rows} new, {failed} failed) in "
        f"{time.perf_counter() - started:.0f} s; {summary.tasks} ensembles trained"
    )
    for reason, count in frame[frame.status == "failed"].error.value_counts().items():
        print(f"  failed x{count}: {reason}")
    verdict = write_outputs(frame, list(plan.cells), args.out)
    print(f"wrote {args.out / 'results'} and {args.out / 'figures'}")
    if args.check:
        must_hold = verdict.of_kind(MUST_HOLD)
        print(must_hold[["name", "figure", "verdict"]].to_string(index=False))
        print(verdict.summary, file=sys.stderr if verdict.failures else sys.stdout)
        return 1 if verdict.failures else 0
    return 0
