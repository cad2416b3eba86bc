"""KL of one method's models trained under the reference profile's settings with other
step sizes or schedules: what the reference profile's step sizes were chosen from.

    python benchmarks/step_sizes.py --model flow|diffusion --method scratch|transfer|oracle
        --n 51200 [--seeds 2] [--set learning_rate=0.01 --set schedule=cosine ...]

Trains ``--seeds`` members of ``--method`` on ``gaussian_smooth`` (d_x=2, d_z=8, d_h=2,
truth seed 0) with n_t = ``--n`` (and n_s = ``--n`` for transfer), as one ensemble with the
reference profile's minibatch settings, each ``--set`` replacing one of them, and evaluates
each model with the reference profile's evaluation sizes. Prints one line: the settings,
each member's KL and kept step, and the training time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from sims.evaluation import evaluate_ensemble
from sims.experiments import PROFILE_SETTINGS
from sims.generators import make_task_pair
from sims.methods import METHODS, Training, make_members
from sims.models.architectures import ARCHITECTURES
from sims.process import configure


def setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE a number where it reads as one."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("diffusion", "flow"), required=True)
    parser.add_argument("--method", choices=("scratch", "transfer", "oracle"), required=True)
    parser.add_argument("--n", type=int, required=True, help="n_t (and n_s for transfer)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=V")
    args = parser.parse_args()
    configure(threads=1)
    reference = PROFILE_SETTINGS["reference"]
    config = dataclasses.replace(reference.training_of(args.model), **dict(args.set))
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2, seed=0)
    n_source = args.n if args.method == "transfer" else None
    members = make_members(pair, range(args.seeds), args.n, n_source)
    training = Training(ARCHITECTURES[args.model], config, "cpu", "bfloat16")
    start = time.perf_counter()
    fitted = METHODS[args.method].fit(members, training)
    seconds = time.perf_counter() - start
    rows = evaluate_ensemble(fitted, members, reference.sizes, "cpu")
    kl = ", ".join(f"{row['kl']:.3f}" for row in rows)
    steps = ", ".join(str(f.best_step) for f in fitted)
    print(
        f"{args.model} {args.method} n={args.n} lr={config.learning_rate:g} "
        f"schedule={config.schedule} max_steps={config.max_steps}: KL [{kl}], "
        f"kept steps [{steps}], {seconds:.0f} s training"
    )


if __name__ == "__main__":
    main()
