"""Where a score network's KL comes from: the truth points that carry it.

    python benchmarks/likelihood_tail.py --method oracle --n 50 --seeds 0,11,14,19

Trains the members ``--seeds`` of ``--method`` on ``gaussian_smooth`` (d_x=2, d_z=8, d_h=2,
truth seed 0) with n_t = ``--n`` (n_s = 2000 for transfer) under the reference profile's
settings and ``run_all.py``'s default precision, and takes each model's probability-flow
log-density at the truth points its row's KL is estimated on
(``sims.evaluation.likelihood_points``). A member's model does not depend on the others it
trains beside, so these are the reference run's models of the same cells and seeds. Prints
one line per member: the KL (the mean of log p - log p_hat), the median log ratio, the share
of the KL that its largest 1 % of points carry, and the largest log ratio with log p at that
point (a point the truth finds likely, or one in its tail) and where its condition lies: the
norm of its true embedding h(z) (h has mean 0 and unit variance per coordinate under z ~ N(0,
I)) and the distance to the nearest h of the member's n_t samples.
"""

from __future__ import annotations

import argparse

from sims.evaluation import likelihood_points
from sims.experiments import PROFILE_SETTINGS
from sims.generators import make_task_pair
from sims.methods import METHODS, Training, make_members
from sims.models.architectures import ARCHITECTURES
from sims.process import configure

TOP_SHARE = 0.01  # the largest log ratios whose part of the KL is printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("scratch", "transfer", "oracle"), required=True)
    parser.add_argument("--n", type=int, required=True, help="n_t")
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated member seeds")
    args = parser.parse_args()
    configure(threads=1)
    reference = PROFILE_SETTINGS["reference"]
    seeds = [int(s) for s in args.seeds.split(",")]
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2, seed=0)
    n_source = 2000 if args.method == "transfer" else None
    members = make_members(pair, seeds, args.n, n_source)
    training = Training(
        ARCHITECTURES["diffusion"], reference.training_of("diffusion"), "cpu", "auto"
    )
    fitted = METHODS[args.method].fit(members, training)
    points = likelihood_points(fitted, members, reference.sizes.n_ode)
    ratios = points.log_p - points.log_q
    top = max(1, round(TOP_SHARE * ratios.shape[1]))
    embedding = pair.target.embedding
    for i, (seed, ratio) in enumerate(zip(seeds, ratios, strict=True)):
        largest = ratio.topk(top).values
        worst = int(ratio.argmax())
        h = embedding(points.z[i, worst : worst + 1].double())
        nearest = (embedding(members[i].target.z.double()) - h).norm(dim=1).min()
        print(
            f"{args.method} n_t={args.n} seed {seed}: KL {ratio.mean():.3f}, median log ratio "
            f"{ratio.median():.3f}, largest {top} of {ratio.numel()} points carry "
            f"{largest.sum() / ratio.sum():.0%} of it; largest log ratio {ratio.max():.1f} "
            f"where log p = {points.log_p[i, worst]:.2f}, at a condition with |h(z)| = "
            f"{h.norm():.2f}, {nearest:.2f} from the nearest h of its n_t samples"
        )


if __name__ == "__main__":
    main()
