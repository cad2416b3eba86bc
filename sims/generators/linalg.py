"""Random matrices with set structure: orthonormal frames and covariances (float64)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def random_frame(rng: np.random.Generator, n: int, k: int) -> Tensor:
    """(n, k) matrix with orthonormal columns, uniform (Haar) over the Stiefel manifold."""
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return torch.from_numpy(q * np.sign(np.diag(r)))


def nearest_frame(matrix: Tensor) -> Tensor:
    """The (n, k) matrix with orthonormal columns nearest to ``matrix``: U V^T of its SVD."""
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u @ vh


def random_spd(rng: np.random.Generator, d: int, low: float, high: float) -> Tensor:
    """(d, d) covariance with a random eigenbasis and eigenvalues uniform in [low, high]."""
    basis = random_frame(rng, d, d)
    eigenvalues = torch.from_numpy(rng.uniform(low, high, size=d))
    return (basis * eigenvalues) @ basis.T


def spd_sqrt(matrix: Tensor) -> Tensor:
    """Symmetric square root of a symmetric positive-definite (d, d) matrix."""
    eigenvalues, basis = torch.linalg.eigh(matrix)
    return (basis * eigenvalues.sqrt()) @ basis.T
