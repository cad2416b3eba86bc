"""Rows of the linear-Gaussian anchor from its closed-form maximum-likelihood fits, for many
seeds at once: the rows a run of the anchor's experiments writes (the trained models reach
these fits: test_engine), fast enough to simulate whole replicate runs of a check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sims.experiments import ANCHOR as EXPERIMENT_ANCHOR
from sims.generators import make_task_pair
from sims.metrics import linear_gaussian_kl
from sims.models.linear_gaussian import fit_given_embedding, fit_reduced_rank

# the anchor truth of the experiments (kappa = 4)
ANCHOR = {key: values[0] for key, values in EXPERIMENT_ANCHOR.items() if key != "family"}


def task_samples(task, seeds: int, n: int, generator: torch.Generator):
    """(seeds, n) samples (z, x) of a linear-Gaussian task, drawn together."""
    p = task.params
    z = torch.randn(seeds, n, p["W"].shape[1], generator=generator, dtype=torch.float64)
    noise = torch.randn(seeds, n, len(p["b"]), generator=generator, dtype=torch.float64)
    mean = z @ (p["B"] @ p["W"]).T + p["b"]
    return z, mean + noise @ torch.linalg.cholesky(p["Sigma"]).T


def anchor_rows(
    n_targets=(250, 500, 1000),
    n_sources=(),
    methods=("scratch", "oracle"),
    seeds: int = 20,
    draw: int = 0,
) -> pd.DataFrame:
    """Rows (one per seed, method and sizes) of the anchor's fits: ``kl_exact`` (also as
    ``kl``) for scratch (reduced rank), the oracle (true W) and transfer (W of a reduced-rank
    fit of the source); ``draw`` picks independent data. A seed's target samples at smaller
    n_t are the first rows of its largest."""
    pair = make_task_pair("linear_gaussian", **ANCHOR)
    target, p = pair.target, pair.target.params
    truth = (p["B"] @ p["W"], p["b"], p["Sigma"])
    generator = torch.Generator().manual_seed(1000 + draw)
    z, x = task_samples(target, seeds, max(n_targets), generator)
    sources = {n_s: task_samples(pair.source, seeds, n_s, generator) for n_s in n_sources}
    embeddings = {
        n_s: fit_reduced_rank(x_s, z_s, ANCHOR["d_h"])[1] for n_s, (z_s, x_s) in sources.items()
    }
    frames = []
    for n_t in n_targets:
        zt, xt = z[:, :n_t], x[:, :n_t]
        fits = {}
        if "scratch" in methods:
            fits[("scratch", np.nan)] = fit_reduced_rank(xt, zt, ANCHOR["d_h"])[0]
        if "oracle" in methods:
            fits[("oracle", np.nan)] = fit_given_embedding(xt, zt, p["W"].expand(seeds, -1, -1))
        if "transfer" in methods:
            for n_s, weight in embeddings.items():
                fits[("transfer", n_s)] = fit_given_embedding(xt, zt, weight)
        for (method, n_s), fit in fits.items():
            kl = linear_gaussian_kl(*truth, fit.coefficients, fit.bias, fit.covariance).numpy()
            frames.append(
                pd.DataFrame(
                    {"method": method, "n_target": n_t, "n_source": n_s, "seed": np.arange(seeds)}
                    | {"kl_exact": kl, "kl": kl}
                )
            )
    rows = pd.concat(frames, ignore_index=True)
    return rows.assign(
        experiment="anchor", model="linear_gaussian", family="linear_gaussian", status="ok"
    ).assign(truth_seed=0, **ANCHOR)
