"""The columns of a results row: one module that the runner, the report and the verdict
read them from.

A row is one trained model of one cell and seed. The contract columns come first, in this
order, in every ``results.csv``; the others follow where the model kind has them.
"""

from __future__ import annotations

# name: (type, meaning); the contract's columns, in their order
CONTRACT = {
    "experiment": ("str", "the declared experiment the row belongs to"),
    "model": ("str", "the architecture: flow, diffusion, linear_gaussian or linear_score"),
    "method": ("str", "scratch, transfer, finetune, oracle or pooled"),
    "family": ("str", "the ground-truth family"),
    "n_source": ("int", "source samples (empty for methods that use none)"),
    "n_target": ("int", "target samples"),
    "d_x": ("int", "dimension of x"),
    "d_z": ("int", "dimension of the condition z (empty for unconditional families)"),
    "d_h": ("int", "dimension of the shared embedding"),
    "similarity": ("float", "the similarity knob: 0 shares the embedding, 1 does not"),
    "beta": ("float", "smoothness of the task maps"),
    "seed": ("int", "the replicate: samples, initialisation, minibatches"),
    "kl": ("float", "KL(truth || model) in nats"),
    "kl_se": ("float", "its Monte Carlo standard error"),
    "tv": ("float", "total variation distance"),
    "status": ("str", "ok, or failed"),
    "error": ("str", "why a failed row failed"),
    "seconds": ("float", "the model's share of its ensemble's training and evaluation time"),
}
CONTRACT_COLUMNS = list(CONTRACT)
# the columns naming a cell: the contract's, from the model to the seed
IDENTITY = CONTRACT_COLUMNS[CONTRACT_COLUMNS.index("model") : CONTRACT_COLUMNS.index("seed")]
INTEGER_COLUMNS = ("n_source", "n_target", "d_x", "d_z", "d_h", "seed", "truth_seed", "n_train")
SAMPLE_COLUMN = "samples"  # model and truth draws of cells that keep them; never in the CSV
CELL_COLUMN = "cell"  # the row's cache key: a digest of everything that made it
# the columns the verdict needs of any table of rows
REQUIRED = ("experiment", "model", "method", "family", "n_target", "seed", "kl", "status")
