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
