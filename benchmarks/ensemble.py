"""Ensemble training vs one model at a time: wall-time ratio on this machine.

    python benchmarks/ensemble.py [--model flow|diffusion] [--members 32] [--steps 200]
        [--n 1000]

Trains the same members (conditional spline flows, or conditional score networks, on
``gaussian_smooth``, d_x=2, d_z=8, d_h=2; same initial weights, data, minibatch streams and
number of Adam steps) three ways, side by side in one run:
- ``ensemble``: all members in one loop of the engine (``sims.engine.fit_minibatch``);
- ``engine_one_at_a_time``: the engine with one member per call;
- ``plain_loop``: the loop a user would write: per model, its loss (zuko's ``log_prob``, or
  denoising score matching), Adam, backward.
Prints each wall time, the training throughput in samples x steps per second, and the
ratios of the one-at-a-time times to the ensemble's.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from sims.engine import MinibatchConfig, fit_minibatch
from sims.generators import make_task_pair
from sims.methods import make_members
from sims.models.architectures import FlowArchitecture, ScoreArchitecture

ARCHITECTURES = {"flow": FlowArchitecture(), "diffusion": ScoreArchitecture()}


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def plain_loop(models, data, seeds, config) -> None:
    for model, dataset, seed in zip(models, data, seeds, strict=True):
        model = copy.deepcopy(model)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(seed)
        x, z = dataset.x.float(), dataset.z.float()
        ones = torch.ones(config.batch_size)
        for _ in range(config.max_steps):
            rows = torch.randint(len(x), (config.batch_size,), generator=generator)
            noise = torch.randn(config.batch_size, model.noise_features, generator=generator)
            optimiser.zero_grad()
            model(x[rows], z[rows], ones, noise).backward()
            optimiser.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ARCHITECTURES), default="flow")
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n", type=int, default=1000, help="training samples per member")
    args = parser.parse_args()
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2, seed=0)
    members = make_members(pair, range(args.members), n_target=args.n, n_source=None)
    data = [m.target for m in members]
    seeds = [m.seed for m in members]
    architecture = ARCHITECTURES[args.model]
    models = []
    for member, dataset in zip(members, data, strict=True):
        torch.manual_seed(member.seed)
        models.append(architecture.build(pair, dataset, None))
    # one evaluation at the end only, no early stop: every member takes exactly --steps steps
    config = MinibatchConfig(max_steps=args.steps, eval_every=args.steps, patience=10**9)
    held_out = [d.split(0.1, 0)[1] for d in data]

    def one_at_a_time():
        for i in range(len(models)):
            fit_minibatch([models[i]], [data[i]], [held_out[i]], [seeds[i]], config)

    seconds = {
        "ensemble": timed(lambda: fit_minibatch(models, data, held_out, seeds, config)),
        "engine_one_at_a_time": timed(one_at_a_time),
        "plain_loop": timed(lambda: plain_loop(models, data, seeds, config)),
    }
    print(
        f"model={args.model} members={args.members} steps={args.steps} "
        f"batch={config.batch_size} torch threads={torch.get_num_threads()}"
    )
    work = args.members * args.steps * config.batch_size
    for name, value in seconds.items():
        print(f"{name:<22} {value:8.2f} s {work / value:12.0f} samples*steps/s")
    for baseline in ("engine_one_at_a_time", "plain_loop"):
        print(f"speedup_vs_{baseline}={seconds[baseline] / seconds['ensemble']:.2f}")


if __name__ == "__main__":
    main()
