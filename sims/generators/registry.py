"""The registry of ground-truth families and ``make_task_pair``, the one way to build a pair.

A family is a function with keyword-only knobs that returns ``(target, source)`` tasks;
``register_family(structure=..., params=...)`` adds it under its function name, declaring
its structure (what the two tasks share, which decides the models built for it) and the
``params`` its tasks carry. Registration checks the declaration and says in one line what is
missing. The knobs shared by all families (dimensions, similarity, seed) are checked here,
the rest by the family; ``similarity`` and ``seed`` are optional knobs.

Every module of this package registers its families when the package is imported; a family
in a file of one's own registers itself when loaded with ``load_plugin``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sims.generators.tasks import Task, TaskPair
from sims.sde import VPSDE
from sims.validation import check_choice, check_positive_int, check_seed, check_unit_interval

Builder = Callable[..., tuple[Task, Task]]


@dataclass(frozen=True)
class Structure:
    """What a family's two tasks share.

    Attributes:
        knobs: the knobs every family of this structure takes.
        params: the ``params`` its tasks carry for the models of this structure.
        meaning: in words.
    """

    knobs: tuple[str, ...]
    params: tuple[str, ...]
    meaning: str


STRUCTURES = {
    "embedding": Structure(
        ("d_x", "d_z", "d_h"),
        (),
        "x | z through a shared embedding h(z) in R^d_h (the tasks' ``embedding``)",
    ),
    "subspace": Structure(
        ("d_x", "d_h"), ("U",), "unconditional: x near a shared subspace with frame U"
    ),
    "latent": Structure(
        ("d_x",),
        ("A", "b", "latent_log_weights", "latent_means", "latent_covariances"),
        "unconditional: x = A v + b, v from a shared Gaussian-mixture latent law",
    ),
}


@dataclass(frozen=True)
class Family:
    """A registered family: its builder, its structure and the params its tasks carry."""

    builder: Builder
    structure: str
    params: tuple[str, ...]


FAMILIES: dict[str, Family] = {}


def register_family(
    *, structure: str, params: tuple[str, ...] = ()
) -> Callable[[Builder], Builder]:
    """Register the decorated function as the family of its name, of ``structure`` (one of
    ``STRUCTURES``), whose tasks carry ``params`` (beyond those of its structure).

    Raises:
        ValueError: an unknown structure, or a function that lacks a knob its structure
            needs or takes a knob without a default.
    """

    def register(builder: Builder) -> Builder:
        name = builder.__name__
        if structure not in STRUCTURES:
            raise ValueError(
                f"family {name!r}: structure={structure!r} is not allowed: expected one of "
                f"{sorted(STRUCTURES)}"
            )
        parameters = inspect.signature(builder).parameters
        missing = [k for k in STRUCTURES[structure].knobs if k not in parameters]
        if missing:
            raise ValueError(
                f"family {name!r}: families of structure {structure} take the knob(s) "
                f"{', '.join(missing)}"
            )
        bare = [k for k, p in parameters.items() if p.default is inspect.Parameter.empty]
        if bare:
            raise ValueError(f"family {name!r}: knob(s) {', '.join(bare)} need a default")
        FAMILIES[name] = Family(builder, structure, STRUCTURES[structure].params + tuple(params))
        return builder

    return register


def families() -> list[str]:
    """Names of the registered families."""
    return sorted(FAMILIES)


def family_structure(family: str) -> str:
    """The declared structure of ``family``."""
    check_choice("family", family, FAMILIES)
    return FAMILIES[family].structure


def family_params(family: str) -> tuple[str, ...]:
    """The ``params`` the tasks of ``family`` carry."""
    check_choice("family", family, FAMILIES)
    return FAMILIES[family].params


def load_plugin(spec: str) -> None:
    """Import ``spec``, a module name (``mypkg.myfamily``) or the path of a Python file, so
    that the families it declares register themselves; a second load does nothing.

    Raises:
        ValueError: no such module or file.
    """
    if spec in _LOADED:
        return
    path = Path(spec)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise FileNotFoundError(spec)
            module_spec = importlib.util.spec_from_file_location(f"plugin_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except (ImportError, FileNotFoundError) as error:
        raise ValueError(f"--plugin {spec!r} cannot be loaded: {error}") from None
    _LOADED.add(spec)


_LOADED: set[str] = set()


def family_knobs(family: str) -> dict[str, object]:
    """The knobs of ``family`` with their default values."""
    check_choice("family", family, FAMILIES)
    parameters = inspect.signature(FAMILIES[family].builder).parameters
    return {name: parameter.default for name, parameter in parameters.items()}


def _check_shared_knobs(config: dict) -> None:
    for name in ("d_x", "d_z", "d_h"):
        if name in config:
            check_positive_int(name, config[name])
    if "d_z" in config and config["d_h"] > config["d_z"]:
        raise ValueError(
            f"d_h={config['d_h']!r} is not allowed: expected d_h <= d_z = {config['d_z']}"
        )
    if "similarity" in config:
        check_unit_interval("similarity", config["similarity"])
    if "seed" in config:
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
    target, source = FAMILIES[family].builder(**config)
    missing = [k for k in FAMILIES[family].params if k not in target.params]
    if missing:
        raise ValueError(f"family {family!r}: its tasks lack the params {', '.join(missing)}")
    if sde is not None:
        target, source = (dataclasses.replace(task, sde=sde) for task in (target, source))
    return TaskPair(family=family, config=config, target=target, source=source)
