"""The figures of a run, one per experiment, drawn from its rows (PNG and PDF).

Every point is a mean over seeds with its 95 % Student-t interval; axes are log-log where a
rate is shown; methods keep one colour across all figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from sims.experiments import Experiment
from sims.generators import make_task_pair
from sims.methods import METHODS
from sims.report.tables import seed_counts, summarise
from theory.fitting import fitted_constant, inverse_n_fit
from theory.parametric import k_oracle, k_scratch, kappa
from theory.rows import KNOBS, in_experiment, truth_knobs

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

LEGEND_WIDTH = 2.9  # inches to the right of the panels
COLOURS = dict(zip(METHODS, sns.color_palette("colorblind"), strict=False))
LABELS = {
    "n_target": "target samples $n_t$",
    "n_source": "source samples $n_s$",
    "d_z": "dimension of the condition $d_z$",
    "similarity": "similarity knob δ (0: shared embedding, 1: unrelated source)",
}


def _style() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.0)


def _errorbars(axes, table: pd.DataFrame, x: str, colour, label: str, **style) -> None:
    table = table.sort_values(x)
    axes.errorbar(
        table[x],
        table["mean"],
        yerr=[table["mean"] - table.low, table.high - table["mean"]],
        marker="o",
        capsize=3,
        color=colour,
        label=label,
        **style,
    )


def _reference_band(axes, table: pd.DataFrame, colour, label: str) -> None:
    """A method that does not vary along x (no source samples): its level as a band."""
    row = table.iloc[0]
    axes.axhline(row["mean"], color=colour, linestyle=":", label=f"{label} (no source)")
    if np.isfinite(row.low):
        axes.axhspan(row.low, row.high, color=colour, alpha=0.12)


def _sample_size_axis(axes, values, x: str) -> None:
    axes.set_xscale("log")
    ticks = sorted(set(values))
    axes.set_xticks(ticks, [f"{v:g}" for v in ticks])
    axes.minorticks_off()
    axes.set_xlabel(LABELS.get(x, x))


PANEL_KEYS = ("truth_seed", "similarity", *KNOBS)  # beside model and family


def _panels(frame: pd.DataFrame, x: str) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) of each panel: one per model, family and value of every other key
    (a knob, the truth's seed, the similarity) that varies within their rows, so that no
    panel averages rows of different truths; x and n_s vary along a panel. Rows of methods
    that do not take a key (no similarity without a source) are in every panel of it."""
    panels = []
    for (model, family), group in frame.groupby(["model", "family"]):
        keys = [k for k in PANEL_KEYS if k in group and k != x and group[k].dropna().nunique() > 1]
        title = f"{model} on {family}"
        if not keys:
            panels.append((title, group))
            continue
        for values in group[keys].dropna().drop_duplicates().sort_values(keys).itertuples(False):
            inside = np.logical_and.reduce(
                [(group[k] == v) | group[k].isna() for k, v in zip(keys, values, strict=True)]
            )
            named = ", ".join(f"{k}={_value(v)}" for k, v in zip(keys, values, strict=True))
            panels.append((f"{title}\n{named}", group[inside]))
    return panels


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


def _error_axis(axes, rows: pd.DataFrame, x: str) -> None:
    """A log axis for the errors, or a symlog one where a mean over seeds is not positive
    (a Monte Carlo KL near 0 can be), so that no point is dropped."""
    means = rows.groupby(["method", x, "n_source"], dropna=False).kl.mean()
    if (means > 0).all():
        axes.set_yscale("log")
        return
    smallest = means[means > 0].min() if (means > 0).any() else 1e-3
    axes.set_yscale("symlog", linthresh=float(smallest))
    axes.annotate(
        "symlog axis: a mean is ≤ 0",
        (0.02, 0.02),
        xycoords="axes fraction",
        fontsize="x-small",
    )


def rates(experiment: Experiment, frame: pd.DataFrame, slopes: pd.DataFrame) -> plt.Figure:
    """Error (KL) against the experiment's x, one panel per model, family and value of any
    other varying key (``_panels``), one line per method (per method and n_s where n_s varies
    too), with each candidate rate drawn dashed over its floor through its method's points
    and each measured floor dash-dotted."""
    x = experiment.x
    panels = _panels(frame, x)
    width = 4.6 * len(panels) + LEGEND_WIDTH
    figure, axes_row = plt.subplots(1, len(panels), figsize=(width, 4.6), squeeze=False)
    for axes, (title, rows) in zip(axes_row[0], panels, strict=True):
        model, family = rows.model.iloc[0], rows.family.iloc[0]
        for method in [m for m in METHODS if m in set(rows.method)]:
            by_method = rows[rows.method == method]
            table = summarise(by_method, [x], "kl") if by_method[x].notna().all() else None
            if table is None or (len(table) == 1 and rows[x].nunique() > 1):
                _reference_band(
                    axes, summarise(by_method, ["method"], "kl"), COLOURS[method], method
                )
                continue
            _method_lines(axes, by_method, x, method)
            fits = _slopes_of(slopes, experiment.name, model, family, method)
            _candidate(axes, fits, by_method, x, method)
            if x in ("n_target", "n_source"):  # a floor belongs to one truth's sizes
                _floor(axes, fits, method)
        if x == "similarity":
            axes.set_xlabel(LABELS[x])
        else:
            _sample_size_axis(axes, rows[x].dropna(), x)
        _error_axis(axes, rows, x)
        axes.set_title(title, fontsize="medium")
    axes_row[0][0].set_ylabel("KL from the truth (nats)")
    _shared_legend(figure, axes_row[0])
    figure.suptitle(_caption(experiment, frame), fontsize="medium")
    figure.tight_layout(rect=(0, 0, 1 - LEGEND_WIDTH / width, 1))
    return figure


def _shared_legend(figure, axes_row) -> None:
    """One legend for all panels, outside them: each label once, candidates as one entry."""
    found = {}
    for axes in axes_row:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            if label.startswith("candidate"):
                label = "candidate rate (dashed:\nfloor + a·(n^-p - N^-p))"
            if label == "floor":
                label = "floor (dash-dotted)"
            found.setdefault(label, handle)
    figure.legend(found.values(), found.keys(), loc="center right", fontsize="small")


def _method_lines(axes, rows: pd.DataFrame, x: str, method: str) -> None:
    """One method's mean error against x; one line per n_s where n_s varies as well."""
    sources = sorted(rows.n_source.dropna().unique()) if x != "n_source" else []
    if len(sources) < 2:
        _errorbars(axes, summarise(rows, [x], "kl"), x, COLOURS[method], method)
        return
    for shade, n_source in zip(np.linspace(0.35, 1.0, len(sources)), sources, strict=True):
        table = summarise(rows[rows.n_source == n_source], [x], "kl")
        label = f"{method}, $n_s$ = {n_source:g}"
        _errorbars(axes, table, x, COLOURS[method], label, alpha=shade, markersize=4)


def _slopes_of(slopes: pd.DataFrame, experiment, model, family, method) -> pd.DataFrame:
    """The fitted exponents of the KL of one method in one panel of ``experiment``."""
    if slopes.empty:
        return slopes
    return slopes[
        in_experiment(slopes, experiment)
        & (slopes.model == model)
        & (slopes.family == family)
        & (slopes.method == method)
        & (slopes.error == "kl")
    ]


def _floor(axes, fits: pd.DataFrame, method: str) -> None:
    """The method's measured floor (the error of the same training on a far larger sample)."""
    if "floor" not in fits or fits.floor.isna().all():
        return
    level = float(fits.floor.dropna().iloc[0])
    axes.axhline(level, color=COLOURS[method], linestyle="-.", alpha=0.7, label="floor")


def _candidate(axes, fits: pd.DataFrame, rows: pd.DataFrame, x, method) -> None:
    """The candidate rate of the method's fit over ``x`` as the fit models it: floor +
    a·(x^-p - N^-p) at the candidate p, N the floor's sample size (floor 0 and N infinite
    where the fit has none), a fitted to the mean errors' excess over the floor (the means at
    the largest n_s, for transfer's fit on its edge at the floor's n_s)."""
    if fits.empty:  # no fits yet: a figure drawn before the verdict
        return
    # a two-term fit has no single line in n_t: its level depends on n_s
    over_target = fits.over.str.startswith("n_target") & ~fits.over.str.contains("two-term")
    match = fits[over_target] if x == "n_target" else fits.iloc[:0]
    if match.empty:
        return
    if match.over.iloc[0].startswith("n_target at n_s"):
        rows = rows[rows.n_source == rows.n_source.max()]
    table = summarise(rows, [x], "kl")
    exponent = float(match.candidate.iloc[0])
    floor = match.floor.iloc[0] if "floor" in match else None
    floor = 0.0 if pd.isna(floor) else float(floor)
    size = match.floor_size.iloc[0] if "floor_size" in match else None
    size = math.inf if pd.isna(size) else float(size)
    n, excess = table[x].to_numpy(float), table["mean"].to_numpy(float) - floor
    above = excess > 0
    if not above.any():
        return
    constant = fitted_constant(n[above], excess[above], exponent, size)
    axes.plot(
        n,
        floor + constant * (n**-exponent - size**-exponent),
        linestyle="--",
        color=COLOURS[method],
        alpha=0.6,
        label=f"candidate rate {exponent:.2f}",
    )


def _closed_form_rows(frame: pd.DataFrame, figure: str) -> pd.DataFrame:
    """The rows with the anchor's closed-form KL, which ``figure`` draws."""
    if "kl_exact" not in frame or frame.kl_exact.isna().all():
        raise MissingRows(
            f"the {figure} figure draws the linear-Gaussian model's closed-form KL: no such rows"
        )
    return frame[frame.kl_exact.notna()]


def calibration(experiment: Experiment, frame: pd.DataFrame, slopes) -> plt.Figure:
    """2n·KL/k against n for each method, with the fit a + c/n that the calibration check
    makes: the classical law puts a at 1."""
    frame = _closed_form_rows(frame, "calibration").copy()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    first = frame.iloc[0]
    d_x, d_z, d_h = int(first.d_x), int(first.d_z), int(first.d_h)
    k = {"scratch": k_scratch(d_x, d_z, d_h), "oracle": k_oracle(d_x, d_h)}
    frame = frame[frame.method.isin(list(k))]
    frame["ratio"] = 2 * frame.n_target * frame.kl_exact / frame.method.map(k)
    axes.axhline(1.0, color="black", linewidth=1, label="2n·KL/k = 1")
    for method, rows in frame.groupby("method"):
        table = summarise(rows, ["n_target"], "ratio")
        _errorbars(axes, table, "n_target", COLOURS[method], f"{method} (k = {k[method]})")
        if len(table) >= 2:
            n = table.n_target.to_numpy(float)
            (a,), (c,) = inverse_n_fit(n, table["mean"].to_numpy(float))
            grid = np.geomspace(n.min(), n.max(), 50)
            axes.plot(grid, a + c / grid, "--", color=COLOURS[method], alpha=0.6,
                      label=f"{method}: {a:.3f} + {c:.3g}/n")  # fmt: skip
    _sample_size_axis(axes, frame.n_target, "n_target")
    axes.set_ylabel("2n·KL / k")
    axes.legend(fontsize="small")
    axes.set_title(_caption(experiment, frame), fontsize="medium")
    figure.tight_layout()
    return figure


class MissingRows(ValueError):
    """A figure needs rows (e.g. of a method) that the run left out."""


def crossover(experiment: Experiment, frame: pd.DataFrame, slopes) -> plt.Figure:
    """log(KL_transfer / KL_scratch) over (n_s, n_t): its zero contour against n_s = κ n_t."""
    frame = _closed_form_rows(frame, "crossover")
    missing = sorted({"transfer", "scratch"} - set(frame.method))
    if missing:
        raise MissingRows(f"the crossover figure compares transfer with scratch: no {missing} rows")
    moved = summarise(frame[frame.method == "transfer"], ["n_target", "n_source"], "kl_exact")
    scratch = summarise(frame[frame.method == "scratch"], ["n_target"], "kl_exact")
    merged = moved.merge(scratch, on="n_target", suffixes=("", "_scratch"))
    merged["log_ratio"] = np.log(merged["mean"] / merged["mean_scratch"])
    grid = merged.pivot(index="n_target", columns="n_source", values="log_ratio")
    kappa_ = kappa(make_task_pair("linear_gaussian", **truth_knobs(frame)))
    figure, axes = plt.subplots(figsize=(7.5, 5))
    n_s, n_t = np.meshgrid(grid.columns.to_numpy(float), grid.index.to_numpy(float))
    limit = float(np.nanmax(np.abs(grid.to_numpy())))
    mesh = axes.pcolormesh(
        n_s,
        n_t,
        grid.to_numpy(),
        shading="nearest",
        cmap="RdBu_r",
        norm=TwoSlopeNorm(0.0, -limit, limit),
    )
    figure.colorbar(mesh, label="log(KL_transfer / KL_scratch): < 0, transfer wins")
    if grid.shape[0] >= 2 and grid.shape[1] >= 2:
        axes.contour(n_s, n_t, grid.to_numpy(), levels=[0.0], colors="black", linewidths=2)
    line = np.geomspace(n_s.min(), n_s.max(), 50)
    axes.plot(line, line / kappa_, "k--", label=f"predicted n_s = κ n_t (κ = {kappa_:.2f})")
    axes.plot([], [], "k-", linewidth=2, label="measured: ratio = 1")
    axes.set(xscale="log", yscale="log", xlabel=LABELS["n_source"], ylabel=LABELS["n_target"])
    axes.set_yticks(grid.index, [f"{v:g}" for v in grid.index])
    axes.minorticks_off()
    axes.legend(fontsize="small", loc="lower right")
    axes.set_title(_caption(experiment, frame), fontsize="medium")
    figure.tight_layout()
    return figure


BOUND_COLUMNS = {
    "path_kl_bound": "path bound",
    "kl_sampler": "exact KL of the reverse SDE",
    "kl_euler_maruyama": "exact KL of Euler-Maruyama",
    "kl_ode_exact": "exact KL of the ODE",
    "kl_ode": "KL by the ODE likelihood",
    "score_err": "score error",
}


def bounds(experiment: Experiment, frame: pd.DataFrame, slopes) -> plt.Figure:
    """The diffusion anchor's error measures against n_t, one panel per method."""
    methods = sorted(frame.method.unique())
    figure, axes_row = plt.subplots(1, len(methods), figsize=(6 * len(methods), 4.5), squeeze=False)
    palette = dict(zip(BOUND_COLUMNS, sns.color_palette("deep"), strict=False))
    for axes, method in zip(axes_row[0], methods, strict=True):
        rows = frame[frame.method == method]
        for column, label in BOUND_COLUMNS.items():
            if column in rows and rows[column].notna().any():
                table = summarise(rows, ["n_target"], column)
                _errorbars(axes, table, "n_target", palette[column], label)
        _sample_size_axis(axes, rows.n_target, "n_target")
        axes.set(yscale="log", ylabel="nats")
        axes.set_title(f"linear score model, {method}", fontsize="medium")
        axes.legend(fontsize="small", loc="lower left")
    figure.suptitle(_caption(experiment, frame), fontsize="medium")
    figure.tight_layout()
    return figure


def _draw_points(axes: plt.Axes, points: np.ndarray, colour, edges: np.ndarray) -> None:
    """Samples (n, d_x): a scatter of the first two coordinates, or, when d_x = 1, a
    histogram over the bin ``edges`` that every panel shares."""
    if points.shape[1] == 1:
        axes.hist(points[:, 0], bins=edges, density=True, color=colour, alpha=0.6)
        axes.set(xlabel="$x$", ylabel="density")
        return
    axes.scatter(points[:, 0], points[:, 1], s=3, alpha=0.35, color=colour, linewidths=0)
    axes.set(xlabel="$x_1$", ylabel="$x_2$")


def samples(experiment: Experiment, frame: pd.DataFrame, slopes) -> plt.Figure:
    """Truth against model samples (the first two coordinates; a histogram in 1-D): one row
    per model, truth then each method."""
    kept = frame[frame.samples.notna()] if "samples" in frame else frame.iloc[:0]
    models = sorted(kept.model.unique())
    methods = [m for m in METHODS if m in set(kept.method)]
    figure, axes_grid = plt.subplots(
        max(1, len(models)),
        1 + len(methods),
        figsize=(3.6 * (1 + len(methods)), 3.6 * max(1, len(models))),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for axes_row, model in zip(axes_grid, models, strict=False):
        rows = kept[kept.model == model]
        truth = np.asarray(rows.iloc[0].samples["truth"])
        panels = [("truth", truth, "black")]
        for method in methods:
            drawn = rows[rows.method == method]
            if not drawn.empty:
                panels.append((method, np.asarray(drawn.iloc[0].samples["model"]), COLOURS[method]))
        edges = np.histogram_bin_edges(np.concatenate([p[:, 0] for _, p, _ in panels]), bins=40)
        for axes, (title, points, colour) in zip(axes_row, panels, strict=False):
            _draw_points(axes, points, colour, edges)
            axes.set_title(f"{model}: {title}" if title != "truth" else "truth", fontsize="medium")
    n_t = ", ".join(str(n) for n in sorted(kept.n_target.unique()))
    figure.suptitle(f"{experiment.name}: one seed, n_t = {n_t}", fontsize="medium")
    figure.tight_layout()
    return figure


def _caption(experiment: Experiment, frame: pd.DataFrame) -> str:
    return f"{experiment.name}: mean over {seed_counts(frame)}, 95 % t-intervals"


FIGURES: dict[str, Callable[..., plt.Figure]] = {
    "rates": rates,
    "calibration": calibration,
    "crossover": crossover,
    "bounds": bounds,
    "samples": samples,
}


def render(
    experiment: Experiment, frame: pd.DataFrame, slopes: pd.DataFrame, directory: Path
) -> list[Path]:
    """Draw ``experiment``'s figure from its ok rows; returns the PNG and PDF paths.

    Raises:
        MissingRows: the figure needs rows the run left out (e.g. a ``--set method=``).
    """
    _style()
    figure = FIGURES[experiment.figure](experiment, frame[frame.status == "ok"], slopes)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{experiment.name}.{suffix}" for suffix in ("png", "pdf")]
    for path in paths:
        # without a creation date, the same rows give the same PDF file
        metadata = {"CreationDate": None} if path.suffix == ".pdf" else None
        figure.savefig(path, dpi=150, metadata=metadata)
    plt.close(figure)
    return paths
