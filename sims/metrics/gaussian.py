"""Closed-form divergences between Gaussians."""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_kl(mean_p: Tensor, cov_p: Tensor, mean_q: Tensor, cov_q: Tensor) -> Tensor:
    """KL(N(mean_p, cov_p) || N(mean_q, cov_q)) in nats.

    Args:
        mean_p, mean_q: (..., d) means.
        cov_p, cov_q: (..., d, d) covariances.

    Returns:
        (...) = 1/2 [tr(S_q^{-1} S_p) + (m_q - m_p)^T S_q^{-1} (m_q - m_p) - d
                     + log det S_q - log det S_p].
    """
    chol_q = torch.linalg.cholesky(cov_q)
    whitened_cov = torch.linalg.solve_triangular(chol_q, cov_p, upper=False)
    whitened_cov = torch.linalg.solve_triangular(chol_q, whitened_cov.mT, upper=False)
    whitened_gap = torch.linalg.solve_triangular(
        chol_q, (mean_q - mean_p).unsqueeze(-1), upper=False
    ).squeeze(-1)
    log_det_q = 2 * chol_q.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    log_det_p = torch.linalg.slogdet(cov_p).logabsdet
    d = mean_p.shape[-1]
    trace = whitened_cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    return 0.5 * (trace + (whitened_gap**2).sum(-1) - d + log_det_q - log_det_p)


def linear_gaussian_kl(
    coefficients_p: Tensor,
    bias_p: Tensor,
    cov_p: Tensor,
    coefficients_q: Tensor,
    bias_q: Tensor,
    cov_q: Tensor,
) -> Tensor:
    """E_z KL(N(C_p z + b_p, S_p) || N(C_q z + b_q, S_q)) for z ~ N(0, I), in nats, exactly.

    Args:
        coefficients_p, coefficients_q: (..., d_x, d_z); bias_p, bias_q: (..., d_x);
        cov_p, cov_q: (..., d_x, d_x); leading dimensions broadcast.

    The mean gap (C_p - C_q) z + (b_p - b_q) adds E_z of its squared S_q-norm,
    tr(S_q^{-1} M M^T) with M = C_p - C_q, to the KL at z = 0.
    """
    gap = coefficients_p - coefficients_q
    at_zero = gaussian_kl(bias_p, cov_p, bias_q, cov_q)
    spread = torch.linalg.solve(cov_q, gap @ gap.mT).diagonal(dim1=-2, dim2=-1).sum(-1)
    return at_zero + 0.5 * spread
