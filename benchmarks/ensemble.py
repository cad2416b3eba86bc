"""Ensemble training vs one model at a time: wall-time ratio on this machine.

    python benchmarks/ensemble.py [--model flow|diffusion] [--members 32] [--steps 200]
        [--n 1000] [--dims 2,8,2] [--device cpu|cuda] [--ways ensemble,plain_loop,...]

Trains the same members (conditional spline flows, or conditional score networks, on
``gaussian_smooth`` with ``--dims`` d_x, d_z, d_h; same initial weights, data, minibatch
streams and number of Adam steps) five ways, side by side in one run:
- ``ensemble``: all members in one loop of the engine (``sims.engine.fit_minibatch``), as
  ``run_all.py`` trains them: the networks' products in bfloat16 where the device has
  native bfloat16 (``--precision auto``), else float32;
- ``ensemble_float32``: the same in float32 throughout;
- ``engine_one_at_a_time``: the engine (as ``ensemble``) with one member per call;
- ``plain_loop``: the loop a user would write: per model, its loss (zuko's own
  ``flow(context).log_prob``, or denoising score matching), Adam, backward, in float32;
- ``plain_loop_bfloat16``: the same with the networks' products in bfloat16.
Each way first runs two untimed steps, so that one-off costs (allocations, library start-up)
fall on none of them. Prints each wall time, the training throughput in member-steps (models
x Adam steps) and samples x steps per second, and the ratios of the one-at-a-time times to
the ensemble's. ``--ways ensemble`` alone times large ensembles (on a GPU, thousands of
members) without their slow one-at-a-time baselines; ``--dims 4,3,3`` gives 4-D data with
a 3-D condition, the sizes of a small reference pair often timed on GPUs.
``timings`` returns the wall times, for ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from sims.data import Dataset
from sims.engine import MinibatchConfig, fit_minibatch
from sims.generators import make_task_pair
from sims.methods import make_members
from sims.models.architectures import ARCHITECTURES
from sims.models.base import TrainedModel
from sims.models.flows import ConditionalFlow
from sims.models.precision import networks_in, resolve
from sims.process import reuse_freed_memory

MODELS = ("diffusion", "flow")
"""The minibatch-trained architectures (``sims.models.architectures.ARCHITECTURES`` names)."""
WARM_UP_STEPS = 2


@dataclass(frozen=True)
class Problem:
    """E members ready to train, the same for every way.

    Attributes:
        models: initial models; data, held_out: each member's rows; seeds: of the members'
        minibatch streams; config: Adam without early stopping, one held-out check at the end.
    """

    models: list[TrainedModel]
    data: list[Dataset]
    held_out: list[Dataset]
    seeds: list[int]
    config: MinibatchConfig

    def with_steps(self, steps: int) -> Problem:
        config = dataclasses.replace(self.config, max_steps=steps, eval_every=steps)
        return dataclasses.replace(self, config=config)


DIMS = (2, 8, 2)
"""d_x, d_z, d_h of the benchmarks' truth."""


def make_problem(
    model: str, members: int, steps: int, n: int, dims: Sequence[int] = DIMS
) -> Problem:
    """``members`` models of kind ``model`` on ``n`` samples each of ``gaussian_smooth``
    with ``dims`` (d_x, d_z, d_h), to train ``steps`` steps."""
    d_x, d_z, d_h = dims
    pair = make_task_pair("gaussian_smooth", d_x=d_x, d_z=d_z, d_h=d_h, seed=0)
    replicates = make_members(pair, range(members), n_target=n, n_source=None)
    data = [m.target for m in replicates]
    models = []
    for member, dataset in zip(replicates, data, strict=True):
        torch.manual_seed(member.seed)
        models.append(ARCHITECTURES[model].build(pair, dataset, None))
    # one evaluation at the end only, no early stop: every member takes exactly `steps` steps
    config = MinibatchConfig(max_steps=steps, eval_every=steps, patience=10**9)
    held_out = [d.split(0.1, 0)[1] for d in data]
    return Problem(models, data, held_out, [m.seed for m in replicates], config)


def ensemble(problem: Problem, device: str, precision: str = "auto") -> None:
    p = problem
    fit_minibatch(
        p.models, p.data, p.held_out, p.seeds, p.config, device=device, precision=precision
    )


def engine_one_at_a_time(problem: Problem, device: str) -> None:
    p = problem
    for model, data, held_out, seed in zip(p.models, p.data, p.held_out, p.seeds, strict=True):
        fit_minibatch(
            [model], [data], [held_out], [seed], p.config, device=device, precision="auto"
        )


def user_loss(model: TrainedModel, x: Tensor, z: Tensor, ones: Tensor, noise: Tensor) -> Tensor:
    """The loss as a user would write it: zuko's own ``flow(context).log_prob`` for a flow,
    denoising score matching (the model's loss) for a score network."""
    if isinstance(model, ConditionalFlow):
        u, log_jacobian = model.standardiser(x)
        return -(model.head(model.embedding(z)).log_prob(u) + log_jacobian).mean()
    return model(x, z, ones, noise)


def plain_loop(problem: Problem, device: str, precision: str = "float32") -> None:
    config = problem.config
    precision = resolve(precision, device)
    for model, dataset, seed in zip(problem.models, problem.data, problem.seeds, strict=True):
        model = copy.deepcopy(model).to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(seed)
        x, z = dataset.x.float().to(device), dataset.z.float().to(device)
        ones = torch.ones(config.batch_size, device=device)
        for _ in range(config.max_steps):
            rows = torch.randint(len(x), (config.batch_size,), generator=generator).to(device)
            noise = torch.randn(config.batch_size, model.noise_features, generator=generator)
            optimiser.zero_grad()
            with networks_in(precision):
                loss = user_loss(model, x[rows], z[rows], ones, noise.to(device))
            loss.backward()
            optimiser.step()


RUNS: dict[str, Callable[[Problem, str], None]] = {
    "ensemble": ensemble,
    "ensemble_float32": functools.partial(ensemble, precision="float32"),
    "engine_one_at_a_time": engine_one_at_a_time,
    "plain_loop": plain_loop,
    "plain_loop_bfloat16": functools.partial(plain_loop, precision="bfloat16"),
}
WAYS = tuple(RUNS)


def step_flops(problem: Problem) -> float:
    """Floating-point operations of one training step of the whole ensemble, forward and
    backward, as ``torch.utils.flop_counter`` counts them (matrix products only): the
    count of two steps less that of one, each with the same two held-out checks."""
    counts = []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            ensemble(problem.with_steps(steps), "cpu", precision="float32")
        counts.append(counter.get_total_flops())
    return counts[1] - counts[0]


def timed(run: Callable[[], None], device: str) -> float:
    """Wall seconds of ``run()``, waiting for the device to finish its queued work."""
    start = time.perf_counter()
    run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timings(problem: Problem, ways: Sequence[str] = WAYS, device: str = "cpu") -> dict[str, float]:
    """Wall seconds of each of ``ways`` on ``problem``, each after an untimed warm-up."""
    warm_up = problem.with_steps(WARM_UP_STEPS)
    seconds = {}
    for way in ways:
        RUNS[way](warm_up, device)
        seconds[way] = timed(lambda way=way: RUNS[way](problem, device), device)
    return seconds


def main() -> None:
    reuse_freed_memory()  # as run_all.py's workers train
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="flow")
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n", type=int, default=1000, help="training samples per member")
    parser.add_argument(
        "--dims",
        default=",".join(map(str, DIMS)),
        metavar="D_X,D_Z,D_H",
        help="dimensions of the data, the condition and the embedding",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--ways", default=",".join(WAYS), help=f"comma-separated, of: {', '.join(WAYS)}"
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    ways = args.ways.split(",")
    unknown = sorted(set(ways) - set(WAYS))
    if unknown:
        parser.error(f"--ways: unknown {', '.join(unknown)}; expected some of {', '.join(WAYS)}")
    try:
        dims = [int(d) for d in args.dims.split(",")]
        problem = make_problem(args.model, args.members, args.steps, args.n, dims)
    except ValueError as error:
        parser.error(f"--dims {args.dims}: {error}")
    seconds = timings(problem, ways, args.device)
    print(
        f"model={args.model} members={args.members} steps={args.steps} dims={args.dims} "
        f"batch={problem.config.batch_size} device={args.device} "
        f"ensemble precision={resolve('auto', args.device)} "
        f"torch threads={torch.get_num_threads()}"
    )
    for name, value in seconds.items():
        member_steps = args.members * args.steps / value
        samples = member_steps * problem.config.batch_size
        print(
            f"{name:<22} {value:8.2f} s {member_steps:10.0f} member-steps/s "
            f"{samples:12.0f} samples*steps/s"
        )
    for baseline in ("ensemble_float32", "engine_one_at_a_time", "plain_loop"):
        if "ensemble" in seconds and baseline in seconds:
            print(f"speedup_vs_{baseline}={seconds[baseline] / seconds['ensemble']:.2f}")


if __name__ == "__main__":
    main()
