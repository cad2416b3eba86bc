"""Parametric predictions: exact constants for well-specified maximum-likelihood fits.

[classical] For a well-specified regular model with k free parameters fitted by maximum
likelihood on n samples, E KL(p || p_hat) = k / (2n) + o(1/n) (Akaike 1973; van der Vaart
1998, Asymptotic Statistics).
"""

from __future__ import annotations

import math

import torch

from sims.generators import TaskPair


def k_oracle(d_x: int, d_h: int) -> int:
    """[classical] Free parameters of the linear-Gaussian head given the embedding:
    B (d_x d_h), b (d_x) and Sigma (d_x (d_x + 1) / 2)."""
    return d_x * d_h + d_x + d_x * (d_x + 1) // 2


def k_subspace(d_z: int, d_h: int) -> int:
    """[classical] Dimension of the Grassmannian of d_h-planes in R^{d_z}: what learning the
    row space of W adds."""
    return d_h * (d_z - d_h)


def k_scratch(d_x: int, d_z: int, d_h: int) -> int:
    """[classical] Free parameters of the whole linear-Gaussian model: head and subspace."""
    return k_oracle(d_x, d_h) + k_subspace(d_z, d_h)


def k_affine(d_x: int) -> int:
    """[classical] Free parameters of an affine head x = A v + b on R^{d_x} (shared_latent)."""
    return d_x * d_x + d_x


def expected_kl(k: int, n: float) -> float:
    """[classical] E KL = k / (2 n), in nats, to first order in 1/n."""
    return k / (2 * n)


def kappa_of(information_target: torch.Tensor, information_source: torch.Tensor) -> float:
    """[formalization] kappa = tr(G_t G_s^{-1}) / d_h, with G = B^T Sigma^{-1} B (d_h, d_h),
    the per-sample information about the subspace in each task."""
    d_h = information_target.shape[0]
    return torch.trace(torch.linalg.solve(information_source, information_target)).item() / d_h


def subspace_information(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """G = B^T Sigma^{-1} B (d_h, d_h) of one linear_gaussian task."""
    return params["B"].T @ torch.linalg.solve(params["Sigma"], params["B"])


def kappa(pair: TaskPair) -> float:
    """[formalization] kappa of a linear_gaussian pair, from its true parameters."""
    if pair.family != "linear_gaussian":
        raise ValueError(f"family={pair.family!r}: kappa is defined for linear_gaussian")
    return kappa_of(
        subspace_information(pair.target.params), subspace_information(pair.source.params)
    )


def transfer_kl(
    d_x: int, d_z: int, d_h: int, kappa: float, n_target: float, n_source: float
) -> float:
    """[formalization, first-order delta method] E KL_transfer ~ k_oracle / (2 n_t)
    + kappa d_h (d_z - d_h) / (2 n_s): the head's error plus the frozen subspace's."""
    return expected_kl(k_oracle(d_x, d_h), n_target) + kappa * expected_kl(
        k_subspace(d_z, d_h), n_source
    )


def crossover_n_source(kappa: float, n_target: float) -> float:
    """[formalization] Transfer beats scratch exactly when n_s > kappa n_t: equating
    transfer_kl with k_scratch / (2 n_t) cancels everything but kappa / n_s = 1 / n_t."""
    return kappa * n_target


def crossover_n_source_at(
    kappa: float, d_x: int, d_z: int, d_h: int, n_target: float, scratch_kl: float
) -> float:
    """[formalization] The n_s at which the first-order transfer error k_oracle / (2 n_t) +
    kappa k_W / (2 n_s) meets scratch's error ``scratch_kl`` at n_t: kappa k_W / (2 excess),
    with excess = scratch_kl - k_oracle / (2 n_t). At scratch's first-order error
    k_scratch / (2 n_t) this is ``crossover_n_source``; scratch's finite-n excess (its
    2n·KL/k above 1 at small n) moves it below kappa n_t. Infinite where scratch is not
    above the head's error (transfer never wins)."""
    excess = scratch_kl - expected_kl(k_oracle(d_x, d_h), n_target)
    return kappa * k_subspace(d_z, d_h) / (2 * excess) if excess > 0 else math.inf
