"""Calibration of the parametric anchor: linear_gaussian with the well-specified model.

    python studies/flows_calibration.py [--seeds 40] [--out results]

Checks, with the exact KL of every fit (float64, full-batch L-BFGS on all n samples):
- 2 n KL / k for ``scratch`` and ``oracle`` at n_t in {500, 1000, 2000, 4000};
- ``transfer`` against k_oracle / (2 n_t) + kappa d_h (d_z - d_h) / (2 n_s) at two n_s;
- the crossover: ``transfer`` at n_t = 1000 over a grid of n_s around kappa n_t = 4000,
  against ``scratch`` at n_t = 1000;
- the optimisation gap: KL of the trained model minus KL of the closed-form MLE on the
  same samples.
Writes ``flows_calibration.csv`` (one row per fit) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from sims.evaluation import EvaluationSizes, evaluate
from sims.generators import make_task_pair
from sims.methods import Training, make_members, oracle, pretrain, scratch, transfer
from sims.metrics import linear_gaussian_kl
from sims.models.architectures import LinearGaussianArchitecture
from sims.models.linear_gaussian import fit_given_embedding, fit_reduced_rank
from sims.report.tables import summarise

D_X, D_Z, D_H = 4, 8, 2
SIGNAL_SOURCE = 0.5  # kappa = (1 / 0.5)^2 = 4
N_TARGETS = (500, 1000, 2000, 4000)
N_SOURCES = (16_000, 64_000)
CROSSOVER_N_TARGET = 1000
CROSSOVER_N_SOURCES = (1000, 2000, 3000, 4000, 6000, 8000, 16_000)
K_ORACLE = D_X * D_H + D_X + D_X * (D_X + 1) // 2
K_SUBSPACE = D_H * (D_Z - D_H)


def exact_kl(pair, fit) -> float:
    p = pair.target.params
    truth = (p["B"] @ p["W"], p["b"], p["Sigma"])
    return linear_gaussian_kl(*truth, fit.coefficients, fit.bias, fit.covariance).item()


def closed_form(method: str, member, source_weight=None):
    x, z = member.target.x, member.target.z
    if method == "scratch":
        return fit_reduced_rank(x, z, D_H)[0]
    weight = member.pair.target.params["W"] if method == "oracle" else source_weight
    return fit_given_embedding(x, z, weight)


def rows_of(method, fitted, members, **extra):
    rows = []
    for f, m in zip(fitted, members, strict=True):
        source_weight = None
        if method == "transfer":
            source_weight = fit_reduced_rank(m.source.x, m.source.z, D_H)[1]
        mle = exact_kl(m.pair, closed_form(method, m, source_weight))
        row = evaluate(f, m, EvaluationSizes(n_kl=20_000))
        rows.append(
            {"method": method, "seed": m.seed, "n_target": f.n_train, **extra, **row}
            | {"kl_mle": mle, "optimisation_gap": row["kl_exact"] - mle}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args()
    pair = make_task_pair(
        "linear_gaussian", d_x=D_X, d_z=D_Z, d_h=D_H, seed=0, signal_source=SIGNAL_SOURCE
    )
    kappa = SIGNAL_SOURCE**-2
    training = Training(LinearGaussianArchitecture())
    rows = []
    for n_target in N_TARGETS:
        members = make_members(pair, range(args.seeds), n_target, None)
        for method, trainer in (("scratch", scratch), ("oracle", oracle)):
            rows += rows_of(method, trainer(members, training), members)
    transfer_cells = [(N_TARGETS[-1], n_s) for n_s in N_SOURCES]
    transfer_cells += [(CROSSOVER_N_TARGET, n_s) for n_s in CROSSOVER_N_SOURCES]
    for n_target, n_source in transfer_cells:
        members = make_members(pair, range(args.seeds), n_target, n_source)
        fitted = transfer(members, training, pretrain(members, training))
        rows += rows_of("transfer", fitted, members, n_source=n_source)
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "flows_calibration.csv", index=False)

    k = {"scratch": K_ORACLE + K_SUBSPACE, "oracle": K_ORACLE}
    parametric = frame[frame.method.isin(k)].copy()
    parametric["ratio"] = 2 * parametric.n_target * parametric.kl_exact / parametric.method.map(k)
    print(f"## 2 n KL / k (mean over {args.seeds} seeds, 95 % t-interval)\n")
    print(
        summarise(parametric, ["method", "n_target"], "ratio").to_markdown(
            index=False, floatfmt=".3f"
        )
    )

    moved = frame[(frame.method == "transfer") & (frame.n_target == N_TARGETS[-1])].copy()
    prediction = K_ORACLE / (2 * moved.n_target) + kappa * K_SUBSPACE / (2 * moved.n_source)
    moved["ratio"] = moved.kl_exact / prediction
    print(f"\n## transfer KL / prediction, n_t = {N_TARGETS[-1]}, kappa = {kappa:g}\n")
    print(summarise(moved, ["n_source"], "ratio").to_markdown(index=False, floatfmt=".3f"))

    gap = frame.groupby("method").optimisation_gap.agg(["mean", lambda g: g.abs().max()])
    gap.columns = ["mean_gap", "max_abs_gap"]
    print("\n## optimisation gap: KL(trained) - KL(closed-form MLE), nats\n")
    print(gap.reset_index().to_markdown(index=False, floatfmt=".2e"))


if __name__ == "__main__":
    main()
