"""Moving a ground truth to a device: every tensor inside it, the structure kept.

A task is a tree of small frozen dataclasses (embeddings, heads, ridge series) holding
tensors; ``on_device`` copies the tree with each tensor on the device. torch's pytree
utilities walk containers but not unregistered dataclasses, hence this short walk.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import torch

T = TypeVar("T")


def on_device(value: T, device: str | torch.device) -> T:
    """``value`` with every tensor in it on ``device``.

    Tensors and objects with their own ``to`` (a ``GaussianMixture``) are moved by it;
    dataclass instances are copied field by field, dicts key by key; anything else (numbers,
    strings, functions) is returned as it is.
    """
    if isinstance(value, type):
        return value
    if hasattr(value, "to"):
        return value.to(device)
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **fields_on_device(value, device))
    if isinstance(value, dict):
        return {key: on_device(item, device) for key, item in value.items()}
    return value


def fields_on_device(value, device: str | torch.device) -> dict[str, object]:
    """The fields that a dataclass instance ``value`` takes at construction, by name, each
    ``on_device``."""
    return {
        f.name: on_device(getattr(value, f.name), device)
        for f in dataclasses.fields(value)
        if f.init
    }
