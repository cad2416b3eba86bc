"""Time the ground truth: sample 10^6 points, then their exact log-densities and scores.

    python benchmarks/generators.py [--n 1000000] [--d-x 16] [--repeats 3]

Prints, per family, the median wall time in seconds of each step over ``--repeats`` runs
(one warm-up first), with the torch thread count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

from sims.generators import families, make_task_pair

DIMS = {"d_z": 16, "d_h": 4}


def median_seconds(step, repeats: int) -> float:
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="points per call")
    parser.add_argument("--d-x", type=int, default=16, help="dimension of x")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per step")
    parser.add_argument("--tau", type=float, default=0.1, help="diffusion time of the law")
    args = parser.parse_args()
    print(f"n={args.n} d_x={args.d_x} tau={args.tau} torch threads={torch.get_num_threads()}")
    print(f"{'family':<16} {'sample_s':>9} {'log_prob_s':>11} {'score_s':>8}")
    for family in families():
        knobs = {"d_x": args.d_x}
        if family in ("linear_gaussian", "gaussian_smooth", "mixture"):
            knobs |= DIMS
        elif family == "shared_subspace":
            knobs["d_h"] = DIMS["d_h"]
        task = make_task_pair(family, **knobs).target
        z, x = task.sample(args.n, seed=0, tau=args.tau)
        steps = {
            "sample": partial(task.sample, args.n, seed=0, tau=args.tau),
            "log_prob": partial(task.log_prob, x, z, args.tau),
            "score": partial(task.score, x, z, args.tau),
        }
        seconds = [median_seconds(step, args.repeats) for step in steps.values()]
        sample, log_prob, score = seconds
        print(f"{family:<16} {sample:>9.2f} {log_prob:>11.2f} {score:>8.2f}")


if __name__ == "__main__":
    main()
