"""Candidate rates for every (family, model, method): one table, one row each.

[candidate] With r(beta, D) = 2 beta / (2 beta + D), the minimax KL exponent for a beta-smooth
object of D inputs (Tsybakov 2009; for diffusion models Oko et al. 2023, conditionally Fu et
al. 2024), and composition attaining the worst component's rate (Schmidt-Hieber 2020):

    head term       H(n) = n^-r(beta, D_head), D_head = d_h (+ d_x when the law of x given
                    h is itself nonparametric: ``mixture``)
    embedding term  E(n) = n^-r(beta_h, d_z) for a ridge h; n^-1 for a parametric h
    scratch ~ H(n_t) + E(n_t);  transfer ~ H(n_t) + kappa E(n_s);  oracle ~ H(n_t).

A ``Rate`` gives the exponent of the target term and of the source term (KL ~ n^-exponent).
Flows may lose smoothness through the Jacobian term: ``flow_smoothness_loss`` (default 0)
is subtracted from every beta of a flow. The ``joint`` variant gives one smoothness to the
whole conditional density: scratch n^-r(beta, d_x + d_z), transfer and oracle
n^-r(beta, d_x + d_h).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PARAMETRIC = 1.0  # KL ~ k / (2n)
ASSUMED_BETA = 2.0  # smoothness assumed for families without a beta knob (mixtures of Gaussians)
VARIANTS = ("composition", "joint")


@dataclass(frozen=True)
class Rate:
    """KL ~ a n_t^-target_exponent + b n_s^-source_exponent (no source term when ``None``).

    Attributes:
        status: ``classical``, ``formalization`` or ``candidate``.
        terms: how the exponents arise, in words.
    """

    target_exponent: float
    source_exponent: float | None
    status: str
    terms: str


def exponent(beta: float, inputs: int) -> float:
    """[candidate] r(beta, D) = 2 beta / (2 beta + D)."""
    return 2 * beta / (2 * beta + inputs)


@dataclass(frozen=True)
class Setting:
    """What a prediction may depend on: the family's knobs, the model and the variant."""

    config: dict
    model: str
    variant: str = "composition"
    flow_smoothness_loss: float = 0.0

    def beta(self, name: str = "beta") -> float:
        """A smoothness of the family (``ASSUMED_BETA`` where it has none), less the flow loss."""
        loss = self.flow_smoothness_loss if self.model == "flow" else 0.0
        return self.config.get(name, ASSUMED_BETA) - loss

    def head(self, nonparametric_law: bool) -> float:
        d_head = self.config["d_h"] + (self.config["d_x"] if nonparametric_law else 0)
        return exponent(self.beta(), d_head)

    def embedding(self) -> float:
        if self.config.get("embedding", "ridge") == "tanh":
            return PARAMETRIC
        return exponent(self.beta("beta_h"), self.config["d_z"])

    def joint(self, inputs: int) -> float:
        return exponent(self.beta(), self.config["d_x"] + inputs)


def _conditional(nonparametric_law: bool) -> dict[str, Callable[[Setting], Rate]]:
    """The rows of a conditional family (``mixture`` has a nonparametric law of x given h)."""

    def scratch(s: Setting) -> Rate:
        if s.variant == "joint":
            return Rate(s.joint(s.config["d_z"]), None, "candidate", "joint density in d_x + d_z")
        head, embedding = s.head(nonparametric_law), s.embedding()
        return Rate(min(head, embedding), None, "candidate", "H(n_t) + E(n_t): slower term")

    def transfer(s: Setting) -> Rate:
        if s.variant == "joint":
            return Rate(s.joint(s.config["d_h"]), s.embedding(), "candidate", "joint in d_x + d_h")
        return Rate(s.head(nonparametric_law), s.embedding(), "candidate", "H(n_t) + kappa E(n_s)")

    def oracle(s: Setting) -> Rate:
        if s.variant == "joint":
            return Rate(s.joint(s.config["d_h"]), None, "candidate", "joint in d_x + d_h")
        return Rate(s.head(nonparametric_law), None, "candidate", "H(n_t)")

    return {"scratch": scratch, "transfer": transfer, "oracle": oracle}


def _linear_anchor() -> dict[str, Callable[[Setting], Rate]]:
    return {
        "scratch": lambda s: Rate(PARAMETRIC, None, "classical", "k_scratch / (2 n_t)"),
        "transfer": lambda s: Rate(
            PARAMETRIC, PARAMETRIC, "formalization", "k_oracle / (2 n_t) + kappa k_W / (2 n_s)"
        ),
        "oracle": lambda s: Rate(PARAMETRIC, None, "classical", "k_oracle / (2 n_t)"),
    }


def _shared_subspace() -> dict[str, Callable[[Setting], Rate]]:
    def full(s: Setting) -> float:
        return exponent(s.beta(), s.config["d_x"])

    def on_subspace(s: Setting) -> float:
        return exponent(s.beta(), s.config["d_h"])

    return {
        "scratch": lambda s: Rate(full(s), None, "candidate", "nonparametric in d_x"),
        "transfer": lambda s: Rate(
            on_subspace(s), PARAMETRIC, "candidate", "in d_h + d_h (d_x - d_h) / (2 n_s)"
        ),
        "oracle": lambda s: Rate(on_subspace(s), None, "candidate", "nonparametric in d_h"),
    }


def _shared_latent() -> dict[str, Callable[[Setting], Rate]]:
    def latent(s: Setting) -> float:
        return exponent(s.beta(), s.config["d_x"])

    return {
        "scratch": lambda s: Rate(latent(s), None, "candidate", "nonparametric in d_x"),
        "transfer": lambda s: Rate(
            PARAMETRIC, latent(s), "candidate", "affine head k / (2 n_t) + latent law in n_s"
        ),
        "oracle": lambda s: Rate(
            PARAMETRIC, None, "classical", "affine head (d_x^2 + d_x) / (2 n_t)"
        ),
    }


def _table() -> dict[tuple[str, str, str], Callable[[Setting], Rate]]:
    rows = {}
    families = {
        "gaussian_smooth": _conditional(nonparametric_law=False),
        "mixture": _conditional(nonparametric_law=True),
        "shared_subspace": _shared_subspace(),
        "shared_latent": _shared_latent(),
        # a linear truth is infinitely smooth: every nonparametric exponent tends to 1
        "linear_gaussian": _linear_anchor(),
    }
    for family, methods in families.items():
        for method, rate in methods.items():
            rows[(family, "*", method)] = rate
    return rows


PREDICTIONS: dict[tuple[str, str, str], Callable[[Setting], Rate]] = _table()
"""(family, model, method) -> the rate; model ``"*"`` stands for any model. ``finetune`` and
``pooled`` have no candidate: they are measured only."""


def predict(family: str, method: str, setting: Setting) -> Rate | None:
    """The rate of ``method`` with ``setting.model`` on ``family``, or ``None`` where there
    is none."""
    if setting.variant not in VARIANTS:
        raise ValueError(f"variant={setting.variant!r} is not allowed: expected one of {VARIANTS}")
    rows = PREDICTIONS.get((family, setting.model, method)), PREDICTIONS.get((family, "*", method))
    rate = rows[0] or rows[1]
    return None if rate is None else rate(setting)
