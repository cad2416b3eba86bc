"""The registry of ground-truth families and ``make_task_pair``, the one way to build a pair.

A family is a function with keyword-only knobs that returns ``(target, source)`` tasks;
``register_family`` adds it under its function name. The knobs shared by all families
(dimensions, similarity, seed) are checked here, the rest by the family.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from sims.generators.tasks import Task, TaskPair
from sims.sde import VPSDE
from sims.validation import check_choice, check_positive_int, check_seed, check_unit_interval

FAMILIES: dict[str, Callable[..., tuple[Task, Task]]] = {}


def register_family(builder: Callable[..., tuple[Task, Task]]) -> Callable[..., tuple[Task, Task]]:
    """Register ``builder`` as the family of its function name."""
    FAMILIES[builder.__name__] = builder
    return builder


def families() -> list[str]:
    """Names of the registered families."""
    return sorted(FAMILIES)


def family_knobs(family: str) -> dict[str, object]:
    """The knobs of ``family`` with their default values."""
    check_choice("family", family, FAMILIES)
    parameters = inspect.signature(FAMILIES[family]).parameters
    return {name: parameter.default for name, parameter in parameters.items()}


def _check_shared_knobs(config: dict) -> None:
    for name in ("d_x", "d_z", "d_h"):
        if name in config:
            check_positive_int(name, config[name])
    if "d_z" in config and config["d_h"] > config["d_z"]:
        raise ValueError(
            f"d_h={config['d_h']!r} is not allowed: expected d_h <= d_z = {config['d_z']}"
        )
    check_unit_interval("similarity", config["similarity"])
    check_seed(config["seed"])


def make_task_pair(family: str, *, sde: VPSDE | None = None, **knobs) -> TaskPair:
    """Build the target and source tasks of ``family``.

    Args:
        family: a registered family name (see ``families()``).
        sde: forward process for the noised laws; the default VP-SDE when ``None``.
        **knobs: the family's knobs (see ``family_knobs``), e.g. ``d_x``, ``d_z``, ``d_h``,
            ``similarity`` in [0, 1], ``seed``; a knob given as ``None`` takes its default.

    Raises:
        ValueError: unknown family or knob, or a knob value outside what is allowed.
    """
    defaults = family_knobs(family)
    for name in knobs:
        if name not in defaults:
            raise ValueError(
                f"unknown knob {name!r} for family {family!r}: expected one of {sorted(defaults)}"
            )
    config = defaults | {name: value for name, value in knobs.items() if value is not None}
    _check_shared_knobs(config)
    target, source = FAMILIES[family](**config)
    if sde is not None:
        target, source = (dataclasses.replace(task, sde=sde) for task in (target, source))
    return TaskPair(family=family, config=config, target=target, source=source)
