"""The transfer effect for spline flows on gaussian_smooth, and negative transfer.

    python studies/flows_transfer.py [--seeds 20] [--out results] [--figures figures]

gaussian_smooth with d_x=2, d_z=8, d_h=2 (one fixed truth, structure seed 0), n_s = 20000,
n_t in {100, 200, 500, 1000}: every method at similarity 0, and ``transfer`` at similarity
1 (an unrelated source embedding). Each (method, n_t) is a mean over seeds with a 95 %
Student-t interval of the KL from the truth to the trained flow (Monte Carlo over 20000
fresh target samples per model). Writes ``flows_transfer.csv``, prints a Markdown table and
draws ``flows_transfer.png`` and ``.pdf``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import pandas as pd
from summary import summarise

from sims.evaluation import evaluate
from sims.generators import make_task_pair
from sims.methods import TRAINERS, Training, make_members, pretrain
from sims.models.architectures import FlowArchitecture

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

N_TARGETS = (100, 200, 500, 1000)
N_SOURCE = 20_000
DIMS = {"d_x": 2, "d_z": 8, "d_h": 2}


def run(similarity: float, methods: tuple[str, ...], seeds: range) -> list[dict]:
    pair = make_task_pair("gaussian_smooth", similarity=similarity, seed=0, **DIMS)
    training = Training(FlowArchitecture())
    pretrained_by_seed = dict(
        zip(seeds, pretrain(make_members(pair, seeds, 10, N_SOURCE), training), strict=True)
    )
    members = [m for n in N_TARGETS for m in make_members(pair, seeds, n, N_SOURCE)]
    rows = []
    for method in methods:
        options = {}
        if method in ("transfer", "finetune"):
            options["pretrained"] = [pretrained_by_seed[m.seed] for m in members]
        fitted = TRAINERS[method](members, training, **options)
        for f, m in zip(fitted, members, strict=True):
            rows.append(
                {"method": method, "similarity": similarity, "seed": m.seed}
                | {"n_target": len(m.target), "n_train": f.n_train, "best_step": f.best_step}
                | evaluate(f, m, n=20_000)
            )
        print(f"similarity={similarity} {method}: done", flush=True)
    return rows


def report(frame: pd.DataFrame, figures: Path) -> None:
    """Print the table of means and intervals and draw the figure."""
    frame = frame.assign(
        label=frame.method + frame.similarity.map({0.0: "", 1.0: " (similarity 1)"})
    )
    table = summarise(frame, ["label", "n_target"], "kl")
    print("\n## KL(truth || flow), nats: mean over seeds, 95 % t-interval\n")
    print(table.to_markdown(index=False, floatfmt=".4f"))

    sns.set_theme(style="whitegrid", context="talk")
    figure, axes = plt.subplots(figsize=(11, 6))
    palette = sns.color_palette("colorblind", table.label.nunique())
    for colour, (label, group) in zip(palette, table.groupby("label"), strict=True):
        axes.errorbar(
            group.n_target,
            group["mean"],
            yerr=[group["mean"] - group.low, group.high - group["mean"]],
            marker="o",
            capsize=4,
            color=colour,
            linestyle="--" if "similarity 1" in label else "-",
            label=label,
        )
    axes.set(xscale="log", yscale="log", xlabel="target samples n_t", ylabel="KL (nats)")
    axes.set_xticks(N_TARGETS, [str(n) for n in N_TARGETS])
    seeds = int(table.seeds.min())
    axes.set_title(
        f"Spline flows on gaussian_smooth (d_z=8, d_h=2, n_s={N_SOURCE})\n"
        f"mean KL over {seeds} seeds, 95 % t-intervals",
        fontsize="medium",
    )
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    figure.tight_layout()
    figures.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        figure.savefig(figures / f"flows_transfer.{suffix}", dpi=150)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--figures", type=Path, default=Path("figures"))
    parser.add_argument(
        "--report-only", action="store_true", help="redraw from an existing flows_transfer.csv"
    )
    args = parser.parse_args()
    path = args.out / "flows_transfer.csv"
    if args.report_only:
        report(pd.read_csv(path), args.figures)
        return
    seeds = range(args.seeds)
    frame = pd.DataFrame(run(0.0, tuple(TRAINERS), seeds) + run(1.0, ("transfer",), seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    report(frame, args.figures)


if __name__ == "__main__":
    main()
