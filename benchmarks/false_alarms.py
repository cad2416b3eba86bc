"""How often each anchor check fails a correct run: simulated replicate runs of the
quick profile's anchor experiments, each judged as the verdict judges it.

    python benchmarks/false_alarms.py [--replicates 200]

Each replicate draws fresh data for every seed (the rows of closed-form maximum-likelihood
fits, which the trained anchor models reach; tests/anchor.py) at the quick profile's sizes
and seeds: calibration with 200 seeds at n_t = 250 ... 4000 (with oracle <= scratch on its
rows), the crossover experiment with 20 seeds at n_t = 250, 500, 1000 and n_s = 250 ...
16 000. Prints each check's share of failed replicates with its 95 % Wilson interval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from anchor import ANCHOR, anchor_rows  # noqa: E402

from sims.generators import make_task_pair  # noqa: E402
from theory import checks  # noqa: E402
from theory.parametric import k_oracle, k_scratch, k_subspace, kappa  # noqa: E402

DIMS = (ANCHOR["d_x"], ANCHOR["d_z"], ANCHOR["d_h"])
KAPPA = kappa(make_task_pair("linear_gaussian", **ANCHOR))
K = {"scratch": k_scratch(*DIMS), "oracle": k_oracle(DIMS[0], DIMS[2])}


def replicate(draw: int) -> dict[str, bool]:
    """Whether each check fails on one simulated run."""
    failed = {}
    calibration = anchor_rows((250, 500, 1000, 2000, 4000), seeds=200, draw=draw)
    by_method = {m: calibration[calibration.method == m] for m in K}
    for method, k in K.items():
        check = checks.calibration("c", by_method[method], k)
        failed[f"calibration, {method}"] = check.verdict == checks.FAIL
    ordering = checks.ordering("o", by_method["oracle"], by_method["scratch"], y="kl_exact")
    failed["oracle <= scratch"] = ordering.verdict == checks.FAIL
    rows = anchor_rows(
        (250, 500, 1000),
        (250, 500, 1000, 2000, 4000, 8000, 16000),
        ("scratch", "oracle", "transfer"),
        seeds=20,
        draw=100_000 + draw,
    )
    by = {m: rows[rows.method == m] for m in ("scratch", "oracle", "transfer")}
    term = checks.transfer_source_term(
        "s", by["transfer"], by["oracle"], KAPPA, k_subspace(DIMS[1], DIMS[2])
    )
    failed["transfer source term"] = term.verdict == checks.FAIL
    for n_t in (250, 500, 1000):
        moved, scratch = (by[m][by[m].n_target == n_t] for m in ("transfer", "scratch"))
        check = checks.crossover("x", moved, scratch, KAPPA, DIMS)
        failed[f"crossover, n_t={n_t}"] = check.verdict == checks.FAIL
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args()
    runs = [replicate(draw) for draw in range(args.replicates)]
    for name in runs[0]:
        count = sum(run[name] for run in runs)
        low, high = binomtest(count, len(runs)).proportion_ci(method="wilson")
        print(f"{name:24} {count / len(runs):6.2%} [{low:.2%}, {high:.2%}] of {len(runs)} runs")


if __name__ == "__main__":
    main()
