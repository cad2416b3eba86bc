"""Cholesky factors and solves of large batches of small symmetric positive-definite
matrices, written with elementwise arithmetic over the batch.

torch's CPU kernels (``torch.linalg.cholesky``, ``torch.cholesky_solve``) factor a batch one
matrix at a time through LAPACK, forward and backward; a score model whose covariance
depends on each row's noise level factors rows x components matrices of size d_x at every
step, which this does in O(d^3) whole-batch operations instead.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cholesky(matrix: Tensor) -> Tensor:
    """The lower Cholesky factor L (..., d, d) of symmetric positive-definite ``matrix``
    (..., d, d), L L^T = matrix; NaN where a matrix is not positive definite."""
    d = matrix.shape[-1]
    entries: dict[tuple[int, int], Tensor] = {}
    for j in range(d):
        pivot = matrix[..., j, j] - sum(entries[j, k] ** 2 for k in range(j))
        entries[j, j] = pivot.sqrt()
        for i in range(j + 1, d):
            inner = sum(entries[i, k] * entries[j, k] for k in range(j))
            entries[i, j] = (matrix[..., i, j] - inner) / entries[j, j]
    zero = matrix.new_zeros(matrix.shape[:-2])
    rows = [[entries.get((i, j), zero) for j in range(d)] for i in range(d)]
    return _stacked(rows)


def cholesky_solve(factor: Tensor, b: Tensor) -> Tensor:
    """(L L^T)^{-1} b (..., d) for factors L (..., d, d) and vectors b (..., d): forward
    substitution through L, then back substitution through L^T."""
    d = b.shape[-1]
    y: list[Tensor] = []
    for i in range(d):
        inner = sum(factor[..., i, k] * y[k] for k in range(i))
        y.append((b[..., i] - inner) / factor[..., i, i])
    x: dict[int, Tensor] = {}
    for i in reversed(range(d)):
        inner = sum(factor[..., k, i] * x[k] for k in range(i + 1, d))
        x[i] = (y[i] - inner) / factor[..., i, i]
    return torch.stack([x[i] for i in range(d)], dim=-1)


def _stacked(rows: list[list[Tensor]]) -> Tensor:
    """The (..., len(rows), len(rows[0])) tensor of entries rows[i][j] (...,)."""
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)
