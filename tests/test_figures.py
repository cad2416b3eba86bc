"""Figures that never mix rows of different truths and never drop a point, and the report
where a figure cannot be drawn."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anchor import anchor_rows

from sims.experiments import get_experiment
from sims.report import write_outputs
from sims.report.document import contents
from sims.report.figures import rates, samples
from sims.schema import SAMPLE_COLUMN


def rows(d_x: int, level: float, seeds: int = 3) -> pd.DataFrame:
    """Scratch rows of one shared_latent truth of dimension ``d_x``, KL about ``level``."""
    return pd.DataFrame(
        {
            "experiment": "unconditional",
            "model": "diffusion",
            "method": "scratch",
            "family": "shared_latent",
            "n_source": np.nan,
            "n_target": n,
            "d_x": d_x,
            "similarity": np.nan,
            "truth_seed": 0,
            "seed": seed,
            "kl": level / n + 1e-3 * seed,
            "status": "ok",
        }
        for n in (60, 120, 240)
        for seed in range(seeds)
    )


def panels(figure) -> dict[str, list[float]]:
    """Each panel's title and the means its line draws."""
    found = {}
    for axes in figure.axes:
        if axes.get_title():
            (line,) = [line for line in axes.get_lines() if line.get_marker() == "o"]
            found[axes.get_title()] = list(line.get_ydata())
    return found


def test_rows_of_two_dimensions_are_drawn_apart():
    frame = pd.concat([rows(2, 10.0), rows(8, 300.0)])
    drawn = panels(rates(get_experiment("unconditional"), frame, pd.DataFrame()))
    plt.close("all")
    assert sorted(drawn) == [
        "diffusion on shared_latent\nd_x=2",
        "diffusion on shared_latent\nd_x=8",
    ]
    expected = {
        d_x: [level / n + 1e-3 for n in (60, 120, 240)] for d_x, level in ((2, 10), (8, 300))
    }
    np.testing.assert_allclose(drawn["diffusion on shared_latent\nd_x=2"], expected[2])
    np.testing.assert_allclose(drawn["diffusion on shared_latent\nd_x=8"], expected[8])


def test_the_floor_and_candidate_drawn_are_those_of_the_kl():
    """A figure of KL draws the floor and candidate of the KL's fit, not of the squared
    Hellinger's beside it (listed first here)."""
    fit = {
        "experiments": "unconditional",
        "model": "diffusion",
        "family": "shared_latent",
        "method": "scratch",
        "over": "n_target (excess over floor)",
    }
    slopes = pd.DataFrame(
        [
            fit | {"error": "hellinger2", "candidate": 0.5, "floor": 0.001},
            fit | {"error": "kl", "candidate": 1.0, "floor": 0.02},
        ]
    )
    figure = rates(get_experiment("unconditional"), rows(2, 10.0), slopes)
    (axes,) = [a for a in figure.axes if a.get_title()]
    lines = {line.get_linestyle(): line for line in axes.get_lines()}
    plt.close(figure)
    assert lines["-."].get_ydata()[0] == pytest.approx(0.02)
    drawn = lines["--"]  # the candidate rate over the KL's floor: 0.02 + a n^-1
    excess = drawn.get_ydata() - 0.02
    slope = np.diff(np.log(excess)) / np.diff(np.log(drawn.get_xdata()))
    np.testing.assert_allclose(slope, -1.0)


def test_a_mean_a_log_axis_cannot_show_switches_it_to_symlog():
    frame = rows(2, 10.0)
    frame.loc[frame.n_target == 240, "kl"] = -0.003
    figure = rates(get_experiment("unconditional"), frame, pd.DataFrame())
    (axes,) = [a for a in figure.axes if a.get_title()]
    assert axes.get_yscale() == "symlog"
    assert min(panels(figure).popitem()[1]) == pytest.approx(-0.003)
    plt.close(figure)
    positive = rates(get_experiment("unconditional"), rows(2, 10.0), pd.DataFrame())
    assert [a.get_yscale() for a in positive.axes if a.get_title()] == ["log"]
    plt.close(positive)


def test_the_report_names_what_an_experiments_rows_hold():
    frame = pd.concat([rows(2, 10.0), rows(8, 300.0)])
    assert contents(frame) == (
        "Rows of this run: models diffusion; methods scratch; families shared_latent; "
        "d_x 2, 8; n_t 60, 120, 240; 3 seed(s)."
    )
    assert contents(frame.iloc[:0]) == "This run has no rows of it."
    flows = rows(2, 10.0, seeds=16).assign(model="flow")
    assert contents(pd.concat([rows(2, 10.0, seeds=10), flows])).endswith(
        "; 10 seeds for diffusion and 16 for flow."
    )


def test_samples_of_one_dimension_are_drawn_as_histograms_over_shared_bins():
    """A scatter needs two coordinates; 1-D samples are histograms, every panel of a row
    over the same bins, so that truth and models compare bar by bar."""
    draws = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "model": "flow",
            "method": method,
            "n_target": 60,
            SAMPLE_COLUMN: {
                "truth": draws.normal(size=(200, 1)),
                "model": shift + draws.normal(size=(200, 1)),
            },
        }
        for method, shift in (("scratch", 1.0), ("transfer", 3.0))
    )
    figure = samples(get_experiment("samples"), frame, pd.DataFrame())
    drawn = [axes for axes in figure.axes if axes.patches]
    assert [axes.get_title() for axes in drawn] == ["truth", "flow: scratch", "flow: transfer"]
    left_edges = [[bar.get_x() for bar in axes.patches] for axes in drawn]
    assert len(left_edges[0]) == 40
    assert left_edges[1] == left_edges[0] and left_edges[2] == left_edges[0]
    plt.close(figure)


def test_a_figure_without_the_rows_it_compares_is_named_in_the_report(tmp_path):
    """The crossover figure compares transfer with scratch; rows of transfer alone still
    give their rows and report, which says why there is no figure."""
    rows = anchor_rows(n_targets=(250,), n_sources=(500, 2000), methods=("transfer",), seeds=2)
    write_outputs(rows.assign(experiment="crossover"), ["crossover"], tmp_path)
    report = (tmp_path / "results" / "report.md").read_text()
    assert "No figure: the crossover figure compares transfer with scratch" in report
    assert not (tmp_path / "figures" / "crossover.png").exists()
    assert len(pd.read_csv(tmp_path / "results" / "experiments" / "crossover.csv")) == 4
