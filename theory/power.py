"""The power of the must-hold checks, measured on a run's own rows: each check is judged
again with planted errors of growing size (a wrong constant, a dropped factor, a model that
cheats), and its power is the smallest planted error of each kind that makes it fail.

A ``Trial`` is a must-hold check as the verdict ran it: its judge, its rows and its
constants. A ``Plant`` changes the rows or the constants by a magnitude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from theory.checks import FAIL, Check

Rows = dict[str, pd.DataFrame]
UP = (1.02, 1.04, 1.06, 1.08, 1.1, 1.15, 1.2, 1.3, 1.5, 2.0, 3.0, 5.0, 10.0)
DOWN = (0.98, 0.96, 0.94, 0.92, 0.9, 0.85, 0.8, 0.7, 0.5, 0.3, 0.1, 0.03, 0.01)
COUNTS = (1, 2, 3, 4, 6, 8, 12, 16)
NATS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


@dataclass(frozen=True)
class Plant:
    """One kind of planted error at growing magnitudes.

    Attributes:
        describe: the error at a magnitude, in words ("KL × 1.1").
        apply: (rows, constants, magnitude) -> the planted rows and constants.
    """

    magnitudes: tuple[float, ...]
    describe: Callable[[float], str]
    apply: Callable[[Rows, dict, float], tuple[Rows, dict]]


@dataclass(frozen=True)
class Trial:
    """A must-hold check as judged: ``judge(**rows, **constants)`` gives its ``Check``."""

    judge: Callable[..., Check]
    rows: Rows
    constants: dict = field(default_factory=dict)
    plants: tuple[Plant, ...] = ()

    def check(self) -> Check:
        return self.judge(**self.rows, **self.constants)

    def planted(self, plant: Plant, magnitude: float) -> Check:
        rows, constants = plant.apply(self.rows, self.constants, magnitude)
        return self.judge(**rows, **constants)


def smallest_detected(trial: Trial, plant: Plant) -> str:
    """The smallest planted error of ``plant``'s kind that fails the check, in words, or
    what it does not detect up to the largest magnitude tried."""
    for magnitude in plant.magnitudes:
        if trial.planted(plant, magnitude).verdict == FAIL:
            return plant.describe(magnitude)
    return f"not {plant.describe(plant.magnitudes[-1])}"


def power(trial: Trial) -> list[str]:
    """``smallest_detected`` for each of the trial's plants."""
    return [smallest_detected(trial, plant) for plant in trial.plants]


def scaled(name: str, column: str, magnitudes=UP, label: str = "") -> Plant:
    """Column ``column`` of the rows called ``name`` multiplied by the magnitude."""

    def apply(rows: Rows, constants: dict, m: float) -> tuple[Rows, dict]:
        planted = rows[name].assign(**{column: rows[name][column] * m})
        return rows | {name: planted}, constants

    return Plant(magnitudes, lambda m: f"{label or column} × {m:g}", apply)


def shifted(name: str, column: str, magnitudes=NATS, label: str = "") -> Plant:
    """``magnitude`` nats added to column ``column`` of the rows called ``name``."""

    def apply(rows: Rows, constants: dict, m: float) -> tuple[Rows, dict]:
        planted = rows[name].assign(**{column: rows[name][column] + m})
        return rows | {name: planted}, constants

    return Plant(magnitudes, lambda m: f"{label or column} + {m:g} nats", apply)


def constant_scaled(constant: str, magnitudes=UP) -> Plant:
    """The check's constant ``constant`` multiplied by the magnitude."""

    def apply(rows: Rows, constants: dict, m: float) -> tuple[Rows, dict]:
        return rows, constants | {constant: constants[constant] * m}

    return Plant(magnitudes, lambda m: f"{constant} × {m:g}", apply)


def constant_offset(constant: str, sign: int, magnitudes=COUNTS) -> Plant:
    """The check's integer constant ``constant`` moved by the magnitude times ``sign``."""

    def apply(rows: Rows, constants: dict, m: float) -> tuple[Rows, dict]:
        return rows, constants | {constant: constants[constant] + sign * int(m)}

    return Plant(magnitudes, lambda m: f"{constant} {'+-'[sign < 0]} {m:g}", apply)
