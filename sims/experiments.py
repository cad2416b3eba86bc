"""The experiments, declared as data: a name, a one-line description, a grid, the figure.

A grid maps keys to tuples of values; the runner expands it into cells (the Cartesian
product) and each cell into seeds. A grid may be a tuple of sub-grids when not every
combination makes sense (no score architecture for ``shared_latent``). Keys are the row
columns ``model, method, family, n_source, n_target`` and any family knob (``d_x, d_z, d_h,
similarity, beta, signal_source, ...``, see ``sims.generators.family_knobs``); ``truth_seed``
fixes the random structure of the truth. The ``quick`` grid is declared in full; the other
profiles replace some of its keys. A new experiment is one more ``Experiment`` in
``EXPERIMENTS``: the runner, the tables and the report pick it up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sims.engine import MinibatchConfig
from sims.evaluation import EvaluationSizes

PROFILES = ("smoke", "quick", "reference", "paper")
Grid = dict[str, tuple]


@dataclass(frozen=True)
class Profile:
    """How large everything is.

    Attributes:
        training: Adam with early stopping (the same for every method).
        sizes: how many samples each error is estimated from.
        model_training: (model, settings) pairs for the models trained otherwise than
            ``training``: each maps ``MinibatchConfig`` fields to the model's own values.
    """

    name: str
    training: MinibatchConfig
    sizes: EvaluationSizes
    model_training: tuple[tuple[str, dict[str, object]], ...] = ()

    def training_of(self, model: str) -> MinibatchConfig:
        """The training settings of ``model``: ``training``, with the model's own values
        where ``model_training`` gives some."""
        own = dict(self.model_training).get(model, {})
        return dataclasses.replace(self.training, **own) if own else self.training


PROFILE_SETTINGS = {
    "smoke": Profile(
        "smoke",
        MinibatchConfig(max_steps=60, held_out_noise_draws=2),
        EvaluationSizes(1000, 16, 200, 50, 200),
    ),
    # quick: fewer steps, and a held-out check every 20 steps (a member stops after 15
    # checks, 300 steps, without improvement) with 2 noise draws, so that checking costs little
    "quick": Profile(
        "quick",
        MinibatchConfig(max_steps=1000, eval_every=20, patience=15, held_out_noise_draws=2),
        EvaluationSizes(10_000, 200, 500, 200, 1000),
    ),
    # reference: the rate experiments on 2 CPU cores; up to 3000 steps with a step size that
    # falls to 0 along a cosine, so that members with many samples settle near their floor,
    # and a member stops after 500 steps without improvement. Flows take a 10-fold larger
    # step than score networks, whose errors at small n_t grow several-fold with it; score
    # networks take 1024 rows a step, each at its own noise level, which lowers their floor
    # by a seventh and leaves small n_t as it is, and up to 9000 steps, where they stop
    # early at every sample size: at 3000 their floor is set by the steps (benchmarks/
    # README.md, "Step sizes of the reference profile")
    "reference": Profile(
        "reference",
        MinibatchConfig(
            max_steps=3000, eval_every=20, patience=25, held_out_noise_draws=4, schedule="cosine"
        ),
        EvaluationSizes(20_000, 500, 500, 200, 1000),
        model_training=(
            ("flow", {"learning_rate": 1e-2}),
            ("diffusion", {"batch_size": 1024, "max_steps": 9000}),
        ),
    ),
    # paper: KL over 10^5 truth samples per density model
    "paper": Profile("paper", MinibatchConfig(), EvaluationSizes(100_000, 1000, 2000, 1000, 4000)),
}


@dataclass(frozen=True)
class Experiment:
    """One declared experiment.

    Attributes:
        name: what ``--only`` takes.
        description: one line, shown by ``--list`` and in the report.
        figure: the kind of figure it feeds (see ``sims.report.figures``).
        x: the grid key on the figure's horizontal axis.
        grid: the grid (the quick profile's, where the experiment runs in it), or a tuple
            of sub-grids.
        seeds: replicates per profile; the experiment runs in the profiles named here.
        sizes: per profile, keys replaced in every sub-grid that has them; a tuple of such
            replacements makes one sub-grid of each (levels that differ by model or
            method: each replacement names the models or methods it applies to).
        model_seeds: per profile, replicates of the models named where they differ from
            ``seeds`` (a cheap model run with more seeds beside a costly one).
    """

    name: str
    description: str
    figure: str
    x: str
    grid: Grid | tuple[Grid, ...]
    seeds: dict[str, int]
    sizes: dict[str, Grid | tuple[Grid, ...]] = field(default_factory=dict)
    model_seeds: dict[str, dict[str, int]] = field(default_factory=dict)

    def grids(self, profile: str) -> list[Grid]:
        """The sub-grids of ``profile``.

        Raises:
            ValueError: the experiment does not run in ``profile``.
        """
        if profile not in self.seeds:
            raise ValueError(
                f"experiment {self.name!r} does not run in profile {profile!r}: "
                f"expected one of {list(self.seeds)}"
            )
        grids = [self.grid] if isinstance(self.grid, dict) else list(self.grid)
        sizes = self.sizes.get(profile, {})
        replacements = [sizes] if isinstance(sizes, dict) else list(sizes)
        return [_replaced(g, keys) for g in grids for keys in replacements]


def _replaced(grid: Grid, keys: Grid) -> Grid:
    """``grid`` with ``keys`` replacing its own where it has them (no key is added)."""
    return grid | {k: v for k, v in keys.items() if k in grid}


# kappa = (signal_target / signal_source)^2 = 4 puts the crossover at n_s = 4 n_t
ANCHOR = {
    "family": ("linear_gaussian",),
    "d_x": (4,),
    "d_z": (8,),
    "d_h": (2,),
    "signal_source": (0.5,),
}
SMOOTH = {"d_x": (2,), "d_z": (8,), "d_h": (2,)}
# the unconditional truths: a shared subspace in R^8, a shared latent law in R^2
UNCONDITIONAL = (
    {"family": ("shared_subspace",), "d_x": (8,), "d_h": (2,)},
    {"family": ("shared_latent",), "d_x": (2,)},
)
PAPER_TARGETS = (100, 200, 400, 800, 1600, 3200, 6400, 12800)
SMOKE_SIZES = {"n_target": (60, 120), "n_source": (400,)}
FLOOR_SIZE = 51_200  # 8 times the reference's largest n_t, above its largest n_s
# two decades and more of n_t in factor-2 steps, and three levels of n_s for the two-term fit
REFERENCE_TARGETS = (50, 100, 200, 400, 800, 1600, 3200, 6400)
REFERENCE_SOURCES = (2000, 8000, 32000)
# transfer's n_t inside the n_t x n_s grid: factor-4 steps, beside its edge at the floor's
# n_s in factor-2 steps, whose error falls with n_t alone; the levels between move the
# two-term fit's half-widths by -10 % to +13 % (docs/results.md)
INTERIOR_TARGETS = (50, 200, 800, 3200)
FLOOR_EXPERIMENT = "floor"  # its rows are the floors of the verdict's rate fits

EXPERIMENTS = (
    Experiment(
        name="calibration",
        description="2n·KL/k against n for the well-specified linear-Gaussian model: "
        "it must approach 1 (the classical k/(2n) law).",
        figure="calibration",
        x="n_target",
        grid=ANCHOR
        | {
            "model": ("linear_gaussian",),
            "method": ("scratch", "oracle"),
            "n_target": (250, 500, 1000, 2000, 4000),
        },
        # closed-form fits are cheap: 200 seeds let the check detect KL off by 6 %
        seeds={"smoke": 2, "quick": 200, "reference": 200, "paper": 400},
        sizes={
            "smoke": {"n_target": (200, 400)},
            "paper": {"n_target": (125, 250, 500, 1000, 2000, 4000, 8000, 16000)},
        },
    ),
    Experiment(
        name="crossover",
        description="KL_transfer / KL_scratch over a grid of n_s and n_t for the "
        "linear-Gaussian anchor: transfer wins above the predicted line n_s = κ·n_t; the "
        "oracle beside transfer gives its source term seed by seed.",
        figure="crossover",
        x="n_source",
        grid=ANCHOR
        | {
            "model": ("linear_gaussian",),
            "method": ("transfer", "scratch", "oracle"),
            "n_target": (250, 500, 1000),
            "n_source": (250, 500, 1000, 2000, 4000, 8000, 16000),
        },
        seeds={"smoke": 2, "quick": 20, "reference": 20, "paper": 100},
        sizes={
            "smoke": {"n_target": (200,), "n_source": (400, 1600)},
            "paper": {
                "n_target": (250, 500, 1000, 2000),
                "n_source": (250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000),
            },
        },
    ),
    Experiment(
        name="target_scaling",
        description="Error against n_t for scratch, transfer and the oracle (and fine-tuning "
        "and pooling in the paper profile), flows and diffusion, beside the candidate slopes.",
        figure="rates",
        x="n_target",
        grid=SMOOTH
        | {
            "model": ("flow", "diffusion"),
            "family": ("gaussian_smooth", "mixture"),
            "method": ("scratch", "transfer", "oracle"),
            "n_target": (100, 300, 1000),
            "n_source": (10_000,),
        },
        seeds={"smoke": 2, "quick": 3, "reference": 10, "paper": 10},
        # flows cost a third of what score networks do: 16 seeds narrow transfer's
        # two-term fit, whose target exponent is the widest of the flows' at 10
        model_seeds={"reference": {"flow": 16}},
        sizes={
            # mixture's models train end to end in `samples`
            "smoke": SMOKE_SIZES | {"family": ("gaussian_smooth",)},
            "reference": (
                {
                    "family": ("gaussian_smooth",),
                    "method": ("scratch", "oracle"),
                    "n_target": REFERENCE_TARGETS,
                },
                {
                    "family": ("gaussian_smooth",),
                    "method": ("transfer",),
                    "n_target": REFERENCE_TARGETS,
                    "n_source": (FLOOR_SIZE,),
                },
                {
                    "family": ("gaussian_smooth",),
                    "method": ("transfer",),
                    "n_target": INTERIOR_TARGETS,
                    "n_source": REFERENCE_SOURCES,
                },
            ),
            "paper": {
                "method": ("scratch", "transfer", "finetune", "oracle", "pooled"),
                "n_target": PAPER_TARGETS,
                "n_source": (50_000,),
            },
        },
    ),
    Experiment(
        name=FLOOR_EXPERIMENT,
        description="Each rate's floor: the same training on a sample 8 times the largest "
        "n_t (and n_s), where the error no longer falls with the sample size and is set by "
        "approximation and optimisation; the verdict fits each rate's excess over it.",
        figure="rates",
        x="n_target",
        grid=tuple(
            truth
            | {
                "model": ("flow", "diffusion"),
                "method": ("scratch", "transfer", "oracle"),
                "n_target": (FLOOR_SIZE,),
                "n_source": (FLOOR_SIZE,),
            }
            for truth in (SMOOTH | {"family": ("gaussian_smooth",)}, *UNCONDITIONAL)
        ),
        seeds={"reference": 5, "paper": 5},
        sizes={"paper": {"n_target": (2 * FLOOR_SIZE,), "n_source": (2 * FLOOR_SIZE,)}},
    ),
    Experiment(
        name="source_scaling",
        description="Transfer's error against n_s at fixed n_t: it falls to the plateau "
        "of the target-head error, between scratch and the oracle.",
        figure="rates",
        x="n_source",
        grid=SMOOTH
        | {
            "model": ("flow",),
            "family": ("gaussian_smooth",),
            "method": ("transfer", "scratch", "oracle"),
            "n_target": (200,),
            "n_source": (1000, 3000, 10_000, 30_000),
        },
        # as many seeds as target_scaling's flows in the reference: its cells join
        # transfer's two-term fit there
        seeds={"smoke": 2, "quick": 3, "reference": 16, "paper": 10},
        sizes={
            "smoke": {"n_target": (60,), "n_source": (200, 400)},
            "paper": {"n_source": (500, 1000, 2000, 4000, 8000, 16_000, 32_000, 64_000)},
        },
    ),
    Experiment(
        name="dimension",
        description="Error against the condition's dimension d_z at fixed n_t and d_h: "
        "scratch grows with d_z, transfer and the oracle stay flat.",
        figure="rates",
        x="d_z",
        grid={
            "model": ("flow",),
            "family": ("gaussian_smooth",),
            "method": ("scratch", "transfer", "oracle"),
            "d_x": (2,),
            "d_z": (2, 8, 32),
            "d_h": (2,),
            "n_target": (300,),
            "n_source": (10_000,),
        },
        seeds={"smoke": 2, "quick": 3, "reference": 5, "paper": 10},
        sizes={
            "smoke": {"d_z": (2, 4), "n_target": (60,), "n_source": (400,)},
            "reference": {"d_z": (2, 4, 8, 16, 32)},
            "paper": {"d_z": (2, 4, 8, 16, 32, 64), "n_source": (50_000,)},
        },
    ),
    Experiment(
        name="similarity",
        description="Error against the similarity knob δ (0: shared embedding, 1: "
        "unrelated source): transfer, fine-tuning and pooling stop helping, then hurt "
        "(negative transfer).",
        figure="rates",
        x="similarity",
        grid=SMOOTH
        | {
            "model": ("flow",),
            "family": ("gaussian_smooth",),
            "method": ("transfer", "finetune", "pooled", "scratch"),
            "similarity": (0.0, 0.25, 0.5, 0.75, 1.0),
            "n_target": (300,),
            "n_source": (10_000,),
        },
        seeds={"smoke": 2, "quick": 3, "reference": 5, "paper": 10},
        sizes={
            "smoke": {"similarity": (0.0, 1.0), "n_target": (60,), "n_source": (400,)},
            "paper": {"similarity": (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)},
        },
    ),
    Experiment(
        name="unconditional",
        description="Unconditional generation: a shared latent law under task-specific "
        "affine maps (shared_latent) and a shared subspace (shared_subspace).",
        figure="rates",
        x="n_target",
        grid=tuple(
            truth
            | {
                "model": ("flow", "diffusion"),
                "method": ("scratch", "transfer", "oracle"),
                "n_target": (100, 1000),
                "n_source": (10_000,),
            }
            for truth in UNCONDITIONAL
        ),
        seeds={"smoke": 2, "quick": 3, "reference": 5, "paper": 10},
        sizes={
            "smoke": SMOKE_SIZES,
            "reference": {"n_target": (100, 300, 1000)},
            "paper": {"n_target": PAPER_TARGETS, "n_source": (50_000,)},
        },
    ),
    Experiment(
        name="diffusion_bounds",
        description="The diffusion anchor (linear score model on linear_gaussian): score "
        "error, path bound, exact sampler, Euler-Maruyama and ODE KLs, and the ODE "
        "likelihood's KL against n_t.",
        figure="bounds",
        x="n_target",
        grid={
            "model": ("linear_score",),
            "family": ("linear_gaussian",),
            "method": ("scratch", "oracle"),
            "d_x": (2,),
            "d_z": (4,),
            "d_h": (1,),
            "n_target": (250, 1000, 4000),
        },
        # 50 seeds let the likelihood check detect kl_ode off by half (200 points each)
        seeds={"smoke": 2, "quick": 50, "reference": 50, "paper": 50},
        sizes={
            "smoke": {"n_target": (200,)},
            "paper": {"n_target": (250, 500, 1000, 2000, 4000, 8000, 16000, 32000)},
        },
    ),
    Experiment(
        name="samples",
        description="Samples against the truth at small n_t: scratch and transfer, flows "
        "and diffusion, on the multimodal mixture family in 2-D.",
        figure="samples",
        x="n_target",
        grid=SMOOTH
        | {
            "model": ("flow", "diffusion"),
            "family": ("mixture",),
            "method": ("scratch", "transfer"),
            "n_target": (100,),
            "n_source": (10_000,),
            "keep_samples": (2000,),
        },
        seeds={"smoke": 1, "quick": 1, "reference": 1, "paper": 1},
        sizes={
            "smoke": {"n_target": (60,), "n_source": (400,), "keep_samples": (200,)},
            "paper": {"n_source": (50_000,)},
        },
    ),
)


def experiment_names() -> list[str]:
    """Names of the declared experiments, in order."""
    return [e.name for e in EXPERIMENTS]


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``.

    Raises:
        ValueError: no such experiment.
    """
    for experiment in EXPERIMENTS:
        if experiment.name == name:
            return experiment
    raise ValueError(f"experiment {name!r} is not declared: expected one of {experiment_names()}")
