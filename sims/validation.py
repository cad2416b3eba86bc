"""Argument checks shared by the suite: each raises ``ValueError`` naming the bad value."""

from __future__ import annotations

import math
import numbers


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: expected an integer >= 1")
    return int(value)


def check_seed(value) -> int:
    """Return ``value`` if it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"seed={value!r} is not allowed: expected an integer >= 0")
    return int(value)


def check_positive(name: str, value) -> float:
    """Return ``value`` as a float if it is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"{name}={value!r} is not allowed: expected a finite number > 0")
    return float(value)


def check_unit_interval(name: str, value) -> float:
    """Return ``value`` as a float if it lies in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name}={value!r} is not allowed: expected a number in [0, 1]")
    return float(value)


def check_choice(name: str, value, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: expected one of {sorted(allowed)}")
    return value
