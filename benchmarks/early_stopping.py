"""One ensemble trained as the quick profile trains it, early stopping included: wall time.

    python benchmarks/early_stopping.py [--model flow|diffusion] [--seeds 3]
        [--n-target 100,300,1000] [--max-steps 1000]

Trains ``scratch`` members on ``gaussian_smooth`` (d_x=2, d_z=8, d_h=2), ``--seeds`` seeds
for each target size, as one ensemble with the quick profile's settings (a held-out check
every 20 steps, patience 25 checks, 2 held-out noise draws), the way ``target_scaling``
groups its cells. Small members stop long before large ones, so this measures what the
engine spends on members that have stopped. Prints the wall time and, per target size, the
mean step whose weights were kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from sims.experiments import PROFILE_SETTINGS
from sims.generators import make_task_pair
from sims.methods import Training, make_members, scratch
from sims.models.architectures import ARCHITECTURES
from sims.process import reuse_freed_memory


def main() -> None:
    reuse_freed_memory()  # as run_all.py's workers train
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("diffusion", "flow"), default="diffusion")
    parser.add_argument("--seeds", type=int, default=3, help="members per target size")
    parser.add_argument("--n-target", default="100,300,1000", help="target sizes, comma-separated")
    parser.add_argument("--max-steps", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(n) for n in args.n_target.split(",")]
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2, seed=0)
    members = [
        m for n in sizes for m in make_members(pair, range(args.seeds), n_target=n, n_source=None)
    ]
    config = dataclasses.replace(PROFILE_SETTINGS["quick"].training, max_steps=args.max_steps)
    start = time.perf_counter()
    fitted = scratch(members, Training(ARCHITECTURES[args.model], config))
    seconds = time.perf_counter() - start
    print(
        f"model={args.model} members={len(members)} max_steps={config.max_steps} "
        f"eval_every={config.eval_every} patience={config.patience} "
        f"torch threads={torch.get_num_threads()}"
    )
    for i, n in enumerate(sizes):
        kept = [f.best_step for f in fitted[i * args.seeds : (i + 1) * args.seeds]]
        print(f"n_target={n:<6} mean kept step {sum(kept) / len(kept):7.0f}")
    print(f"seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
