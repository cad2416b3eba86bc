"""The transfer effect on gaussian_smooth, and negative transfer, for flows or diffusion.

    python studies/transfer_effect.py --model flow|diffusion [--seeds 20] [--out results]
        [--figures figures]

gaussian_smooth with d_x=2, d_z=8, d_h=2 (one fixed truth, structure seed 0), n_s = 20000,
n_t in {100, 200, 500, 1000}: the methods at similarity 0 (every method for flows;
scratch, transfer, oracle and finetune for diffusion), and ``transfer`` at similarity 1
(an unrelated source embedding). Each (method, n_t) is a mean over seeds with a 95 %
Student-t interval. Flows: KL from the truth by Monte Carlo over 20000 fresh target samples
per model. Diffusion: KL by the probability-flow likelihood over 500 fresh samples at tau_0,
and the exact score error. Writes ``{model}_transfer.csv``, prints Markdown tables and
draws ``{model}_transfer.png`` and ``.pdf``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import pandas as pd

from sims.evaluation import EvaluationSizes, evaluate
from sims.generators import make_task_pair
from sims.methods import TRAINERS, Training, make_members, pretrain
from sims.models.architectures import FlowArchitecture, ScoreArchitecture
from sims.report.tables import summarise

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

N_TARGETS = (100, 200, 500, 1000)
N_SOURCE = 20_000
DIMS = {"d_x": 2, "d_z": 8, "d_h": 2}


ARCHITECTURES = {"flow": FlowArchitecture(), "diffusion": ScoreArchitecture()}
METHODS = {"flow": tuple(TRAINERS), "diffusion": ("scratch", "transfer", "oracle", "finetune")}
ERRORS = {"flow": ("kl",), "diffusion": ("kl", "score_err")}


def run(model: str, similarity: float, methods: tuple[str, ...], seeds: range) -> list[dict]:
    pair = make_task_pair("gaussian_smooth", similarity=similarity, seed=0, **DIMS)
    training = Training(ARCHITECTURES[model])
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
                {"model": model, "method": method, "similarity": similarity, "seed": m.seed}
                | {"n_target": len(m.target), "n_train": f.n_train, "best_step": f.best_step}
                | evaluate(f, m, EvaluationSizes(n_kl=20_000))
            )
        print(f"{model} similarity={similarity} {method}: done", flush=True)
    return rows


def report(frame: pd.DataFrame, model: str, figures: Path) -> None:
    """Print the tables of means and intervals and draw the figure (of the KL)."""
    frame = frame.assign(
        label=frame.method + frame.similarity.map({0.0: "", 1.0: " (similarity 1)"})
    )
    for error in ERRORS[model]:
        table = summarise(frame, ["label", "n_target"], error)
        print(f"\n## {error} ({model}), nats: mean over seeds, 95 % t-interval\n")
        print(table.to_markdown(index=False, floatfmt=".4f"))
    table = summarise(frame, ["label", "n_target"], "kl")

    sns.set_theme(style="whitegrid", context="talk")
    figure, axes = plt.subplots(figsize=(11, 6))
    colours = dict(zip(TRAINERS, sns.color_palette("colorblind"), strict=False))
    for label, group in table.groupby("label"):
        colour = colours[label.split(" ")[0]]
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
    title = {"flow": "Spline flows", "diffusion": "Diffusion models"}
    kl = {"flow": "KL", "diffusion": "KL by the ODE likelihood"}
    axes.set_title(
        f"{title[model]} on gaussian_smooth (d_z=8, d_h=2, n_s={N_SOURCE})\n"
        f"{kl[model]}: mean over {seeds} seeds, 95 % t-intervals",
        fontsize="small",
    )
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    figure.tight_layout()
    figures.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        figure.savefig(figures / f"{model}_transfer.{suffix}", dpi=150)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ARCHITECTURES), default="flow")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--figures", type=Path, default=Path("figures"))
    parser.add_argument(
        "--report-only", action="store_true", help="redraw from an existing {model}_transfer.csv"
    )
    args = parser.parse_args()
    path = args.out / f"{args.model}_transfer.csv"
    if args.report_only:
        report(pd.read_csv(path), args.model, args.figures)
        return
    seeds = range(args.seeds)
    rows = run(args.model, 0.0, METHODS[args.model], seeds)
    rows += run(args.model, 1.0, ("transfer",), seeds)
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    report(frame, args.model, args.figures)


if __name__ == "__main__":
    main()
