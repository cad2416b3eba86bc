"""The well-specified parametric model of ``linear_gaussian``, and its closed-form fits.

x | z ~ N(B e + b, Sigma) with e = W z: the embedding part is W (d_h, d_z), the head is
(B, b, Sigma). Its maximum-likelihood fit has a closed form, which measures how far the
trained model is from the estimator the parametric theory speaks of.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sims.models.base import LOG_2PI, DensityModel


def add_linear_gaussian_parameters(
    model: nn.Module, d_x: int, d_z: int, d_h: int, embedding: nn.Module | None
) -> None:
    """Give ``model`` the float64 parameters of x | z ~ N(B W z + b, L L^T): ``embedding``
    (W, a fresh bias-free ``nn.Linear`` when ``None``), ``weight`` (B), ``bias`` (b) and
    ``cholesky_raw`` (L, with its diagonal on a log scale)."""
    options = {"dtype": torch.float64}
    if embedding is None:
        embedding = nn.Linear(d_z, d_h, bias=False, **options)
    model.embedding = embedding
    model.weight = nn.Parameter(0.1 * torch.randn(d_x, d_h, **options))
    model.bias = nn.Parameter(torch.zeros(d_x, **options))
    model.cholesky_raw = nn.Parameter(torch.zeros(d_x, d_x, **options))
    model.d_z = d_z


def lower_cholesky(raw: Tensor) -> Tensor:
    """The lower-triangular factor with the strict lower part of ``raw`` and exp of its
    diagonal, (..., d, d)."""
    return torch.tril(raw, -1) + torch.diag_embed(raw.diagonal(dim1=-2, dim2=-1).exp())


def coefficients_of(model: nn.Module) -> Tensor:
    """C = B W (d_x, d_z) of a model with ``add_linear_gaussian_parameters``: its linear
    embedding applied to the identity, then its head."""
    eye = torch.eye(model.d_z, dtype=model.bias.dtype, device=model.bias.device)
    return model.weight @ model.embedding(eye).T


@torch.no_grad()
def linear_fit(model: nn.Module) -> LinearGaussianFit:
    """The law (C = B W, b, L L^T) held by a model with ``add_linear_gaussian_parameters``."""
    factor = lower_cholesky(model.cholesky_raw)
    return LinearGaussianFit(coefficients_of(model), model.bias, factor @ factor.T)


class LinearGaussianModel(DensityModel):
    """x | z ~ N(B W z + b, L L^T), in float64.

    Args:
        d_x, d_z, d_h: dimensions.
        embedding: a linear module z -> W z; a fresh bias-free ``nn.Linear`` when ``None``.
    """

    closed_form = "linear_gaussian"

    def __init__(self, d_x: int, d_z: int, d_h: int, embedding: nn.Module | None = None):
        super().__init__()
        add_linear_gaussian_parameters(self, d_x, d_z, d_h, embedding)

    def log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        mean = self.embedding(z) @ self.weight.T + self.bias
        factor = lower_cholesky(self.cholesky_raw)
        whitened = torch.linalg.solve_triangular(factor, (x - mean).T, upper=False)
        log_det = 2 * self.cholesky_raw.diagonal().sum()
        return -0.5 * ((whitened**2).sum(0) + log_det + x.shape[-1] * LOG_2PI)

    def forward(self, x: Tensor, z: Tensor, weight: Tensor, noise: Tensor) -> Tensor:
        """The weighted mean negative log-likelihood of rows x (N, d_x), z (N, d_z), from their
        weighted moments (``noise`` is not used): with m = C z + b, C = B W, the residuals'
        second moment is R = E[x x^T] - E[m x^T] - E[x m^T] + E[m m^T], and the loss
        1/2 [tr(Sigma^-1 R) + log det Sigma + d_x log 2 pi]. The moments carry no gradient,
        so each step of a full-batch fit passes over the rows once."""
        share = (weight / weight.sum())[..., None]
        xw, zw = x * share, z * share
        m_xx, m_xz, m_zz = xw.T @ x, xw.T @ z, zw.T @ z
        m_x, m_z = xw.sum(0), zw.sum(0)
        coefficients = coefficients_of(self)
        mean_z = coefficients @ m_z  # E[C z]
        cross = coefficients @ m_xz.T + self.bias[:, None] * m_x  # E[m x^T]
        mean_second = (
            coefficients @ m_zz @ coefficients.T
            + mean_z[:, None] * self.bias
            + self.bias[:, None] * mean_z
            + self.bias[:, None] * self.bias
        )
        second = m_xx - cross - cross.T + mean_second
        factor = lower_cholesky(self.cholesky_raw)
        whitened = torch.linalg.solve_triangular(factor, second, upper=False)
        whitened = torch.linalg.solve_triangular(factor, whitened.T, upper=False)
        log_det = 2 * self.cholesky_raw.diagonal().sum()
        return 0.5 * (whitened.diagonal().sum() + log_det + x.shape[-1] * LOG_2PI)

    def conditional(self) -> LinearGaussianFit:
        """The fitted law as (C = B W, b, Sigma)."""
        return linear_fit(self)


@dataclass(frozen=True)
class LinearGaussianFit:
    """x | z ~ N(C z + b, Sigma) with C (d_x, d_z) of rank <= d_h."""

    coefficients: Tensor
    bias: Tensor
    covariance: Tensor


def _centred(x: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x_mean, z_mean = x.mean(-2, keepdim=True), z.mean(-2, keepdim=True)
    return x - x_mean, z - z_mean, x_mean.squeeze(-2), z_mean.squeeze(-2)


def fit_given_embedding(x: Tensor, z: Tensor, embedding_weight: Tensor) -> LinearGaussianFit:
    """Maximum likelihood with W known: least squares of x on e = W z with an intercept.

    Args:
        x: (..., n, d_x) outputs; z: (..., n, d_z) conditions; embedding_weight: W
            (..., d_h, d_z). Leading dimensions are independent fits.
    """
    e = z @ embedding_weight.mT
    xc, ec, x_mean, e_mean = _centred(x, e)
    head = torch.linalg.lstsq(ec, xc).solution.mT
    residual = xc - ec @ head.mT
    coefficients = head @ embedding_weight
    bias = x_mean - (e_mean.unsqueeze(-2) @ head.mT).squeeze(-2)
    return LinearGaussianFit(coefficients, bias, residual.mT @ residual / x.shape[-2])


def fit_reduced_rank(x: Tensor, z: Tensor, rank: int) -> tuple[LinearGaussianFit, Tensor]:
    """Maximum likelihood with W unknown: reduced-rank regression with an intercept.

    With the least-squares fit C_ols and its residual covariance S, the Gaussian MLE of rank
    r is C_r = S^{1/2} V V^T S^{-1/2} C_ols, V the top-r eigenvectors of
    S^{-1/2} C_ols S_zz C_ols^T S^{-1/2} (Anderson 1951; Reinsel & Velu 1998, sec. 2.3).

    Args:
        x: (..., n, d_x) outputs; z: (..., n, d_z) conditions; leading dimensions are
            independent fits.

    Returns:
        the fit, and W (..., rank, d_z) spanning the row space of C_r.
    """
    xc, zc, x_mean, z_mean = _centred(x, z)
    n = x.shape[-2]
    ols = torch.linalg.lstsq(zc, xc).solution.mT
    residual_ols = xc - zc @ ols.mT
    eigenvalues, basis = torch.linalg.eigh(residual_ols.mT @ residual_ols / n)
    root = (basis * eigenvalues.sqrt().unsqueeze(-2)) @ basis.mT
    inverse_root = (basis * eigenvalues.rsqrt().unsqueeze(-2)) @ basis.mT
    whitened = inverse_root @ ols
    _, top = torch.linalg.eigh(whitened @ (zc.mT @ zc / n) @ whitened.mT)
    top = top[..., -rank:]
    embedding_weight = top.mT @ whitened
    coefficients = root @ top @ embedding_weight
    residual = xc - zc @ coefficients.mT
    bias = x_mean - (z_mean.unsqueeze(-2) @ coefficients.mT).squeeze(-2)
    return LinearGaussianFit(coefficients, bias, residual.mT @ residual / n), embedding_weight
