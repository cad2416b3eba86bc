"""An ensemble's models evaluated together against one model at a time: wall time.

    python benchmarks/evaluation.py [--model flow|diffusion] [--members 16]
        [--profile quick] [--steps 200] [--device cpu|cuda]

Trains ``--members`` ``scratch`` models on ``gaussian_smooth`` (d_x=2, d_z=8, d_h=2; 500
target samples each, ``--steps`` Adam steps), then evaluates them with the evaluation
sizes of ``--profile`` two ways on ``--device``: each model alone
(``sims.evaluation.evaluate``, the loop a user would write) and all together
(``evaluate_ensemble``, as ``run_all.py`` does). Prints both wall times, the largest
difference between the two ways' KL in units of its standard error and, last,

    evaluation_speedup=<one at a time / together>
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from ensemble import timed

from sims.evaluation import evaluate, evaluate_ensemble
from sims.experiments import PROFILE_SETTINGS
from sims.generators import make_task_pair
from sims.methods import Training, make_members, scratch
from sims.models.architectures import ARCHITECTURES
from sims.process import reuse_freed_memory


def main() -> None:
    reuse_freed_memory()  # as run_all.py's workers train
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("diffusion", "flow"), default="diffusion")
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--profile", choices=sorted(PROFILE_SETTINGS), default="quick")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps of training")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    profile = PROFILE_SETTINGS[args.profile]
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2, seed=0)
    members = make_members(pair, range(args.members), n_target=500, n_source=None)
    config = dataclasses.replace(profile.training, max_steps=args.steps)
    training = Training(ARCHITECTURES[args.model], config, args.device)
    fitted = scratch(members, training)
    pairs = list(zip(fitted, members, strict=True))

    alone, together = [], []
    alone_seconds = timed(
        lambda: alone.extend(evaluate(f, m, profile.sizes, args.device) for f, m in pairs),
        args.device,
    )
    together_seconds = timed(
        lambda: together.extend(evaluate_ensemble(fitted, members, profile.sizes, args.device)),
        args.device,
    )
    gap = max(abs(a["kl"] - t["kl"]) / a["kl_se"] for a, t in zip(alone, together, strict=True))
    print(
        f"model={args.model} members={args.members} profile={args.profile} "
        f"device={args.device} torch threads={torch.get_num_threads()}"
    )
    print(f"one_at_a_time_seconds={alone_seconds:.2f}")
    print(f"together_seconds={together_seconds:.2f}")
    print(f"largest |kl difference| / kl_se={gap:.2g}")
    print(f"evaluation_speedup={alone_seconds / together_seconds:.2f}")


if __name__ == "__main__":
    main()
