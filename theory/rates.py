"""Candidate rates for every (family, model, method): one table, one row each.

[candidate] With r(beta, D) = 2 beta / (2 beta + D), the minimax KL exponent for a beta-smooth
object of D inputs (Tsybakov 2009; for diffusion models Oko et al. 2023, conditionally Fu et
al. 2024), and composition attaining the worst component's rate (Schmidt-Hieber 2020), each
random map of a family is learned at r(beta, D) with D its effective input dimension:

    a Matérn map of D inputs      r(beta, D)   (its draws are Matérn-beta paths in D inputs:
                                               van der Vaart & van Zanten 2011)
    a ridge series                r(beta, 1)   (a sum of one-dimensional ridge functions:
                                               bias k*^(-2 beta), variance k* d / n)
    h = tanh(A z)                 1            (parametric: d_h d_z / (2n))

    head term       H(n) = n^-r(beta, D_head), D_head = d_h for both conditional families:
                    given h, x is Gaussian (``gaussian_smooth``) or a finite Gaussian mixture
                    (``mixture``), parametric in x, with beta-smooth maps of h
    embedding term  E(n) = n^-(the exponent of h's kind, D = d_z)
    scratch ~ H(n_t) + E(n_t);  transfer ~ H(n_t) + kappa E(n_s);  oracle ~ H(n_t).

The unconditional families are finite Gaussian mixtures, analytic: every method's KL falls
at the parametric exponent 1 up to logarithms (Kim 2014, for maximum likelihood in normal
mixtures); transfer changes constants there, not exponents.

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
        """A smoothness of the family, less the flow loss."""
        loss = self.flow_smoothness_loss if self.model == "flow" else 0.0
        return self.config[name] - loss

    def _map(self, kind: str, beta: str, inputs: int) -> float:
        """The exponent of a random map of ``kind`` with ``inputs`` inputs."""
        if kind == "tanh":
            return PARAMETRIC
        return exponent(self.beta(beta), 1 if kind == "ridge" else inputs)

    def head(self) -> float:
        return self._map(self.config["maps"], "beta", self.config["d_h"])

    def embedding(self) -> float:
        return self._map(self.config["embedding"], "beta_h", self.config["d_z"])

    def joint(self, inputs: int) -> float:
        return exponent(self.beta(), self.config["d_x"] + inputs)


def _conditional() -> dict[str, Callable[[Setting], Rate]]:
    """The rows of a conditional family."""

    def scratch(s: Setting) -> Rate:
        if s.variant == "joint":
            return Rate(s.joint(s.config["d_z"]), None, "candidate", "joint density in d_x + d_z")
        return Rate(min(s.head(), s.embedding()), None, "candidate", "H(n_t) + E(n_t): slower term")

    def transfer(s: Setting) -> Rate:
        if s.variant == "joint":
            return Rate(s.joint(s.config["d_h"]), s.embedding(), "candidate", "joint in d_x + d_h")
        return Rate(s.head(), s.embedding(), "candidate", "H(n_t) + kappa E(n_s)")

    def oracle(s: Setting) -> Rate:
        if s.variant == "joint":
            return Rate(s.joint(s.config["d_h"]), None, "candidate", "joint in d_x + d_h")
        return Rate(s.head(), None, "candidate", "H(n_t)")

    return {"scratch": scratch, "transfer": transfer, "oracle": oracle}


def _linear_anchor() -> dict[str, Callable[[Setting], Rate]]:
    return {
        "scratch": lambda s: Rate(PARAMETRIC, None, "classical", "k_scratch / (2 n_t)"),
        "transfer": lambda s: Rate(
            PARAMETRIC, PARAMETRIC, "formalization", "k_oracle / (2 n_t) + kappa k_W / (2 n_s)"
        ),
        "oracle": lambda s: Rate(PARAMETRIC, None, "classical", "k_oracle / (2 n_t)"),
    }


def _finite_mixture(transfer_terms: str) -> dict[str, Callable[[Setting], Rate]]:
    """The rows of an unconditional family whose laws are finite Gaussian mixtures:
    parametric up to logarithms for every method (Kim 2014)."""
    terms = "finite Gaussian mixture: k / (2n) up to log factors"
    return {
        "scratch": lambda s: Rate(PARAMETRIC, None, "candidate", terms),
        "transfer": lambda s: Rate(PARAMETRIC, PARAMETRIC, "candidate", transfer_terms),
        "oracle": lambda s: Rate(PARAMETRIC, None, "candidate", terms),
    }


def _table() -> dict[tuple[str, str, str], Callable[[Setting], Rate]]:
    rows = {}
    families = {
        "gaussian_smooth": _conditional(),
        "mixture": _conditional(),
        "shared_subspace": _finite_mixture(
            "the subspace term d_h (d_x - d_h) / (2 n_s) moves to the source"
        ),
        "shared_latent": _finite_mixture(
            "affine head (d_x^2 + d_x) / (2 n_t) + the latent mixture's k / (2 n_s)"
        )
        | {
            "oracle": lambda s: Rate(
                PARAMETRIC, None, "classical", "affine head (d_x^2 + d_x) / (2 n_t)"
            )
        },
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
