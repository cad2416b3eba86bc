"""Cholesky factors and solves of batches of small matrices, against torch.linalg."""

import pytest
import torch

from sims.models.small_matrices import cholesky, cholesky_solve


def spd_batch(d, seed, shape=(6, 3)):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, d, d, dtype=torch.float64, generator=generator)
    b = torch.randn(*shape, d, dtype=torch.float64, generator=generator)
    return a @ a.mT + 0.1 * torch.eye(d, dtype=torch.float64), b


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_factor_and_solve_match_torch_linalg(d):
    matrix, b = spd_batch(d, seed=d)
    factor = cholesky(matrix)
    torch.testing.assert_close(factor, torch.linalg.cholesky(matrix), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        cholesky_solve(factor, b), torch.linalg.solve(matrix, b), rtol=1e-9, atol=1e-10
    )


@pytest.mark.parametrize("d", [2, 3])
def test_gradients_match_torch_linalg(d):
    matrix, b = spd_batch(d, seed=10 + d)
    weights = torch.randn_like(b)

    def gradients(factorise, solve):
        m, v = matrix.clone().requires_grad_(), b.clone().requires_grad_()
        symmetric = (m + m.mT) / 2
        factor = factorise(symmetric)
        loss = (solve(factor, v) * weights).sum() + factor.diagonal(dim1=-2, dim2=-1).log().sum()
        return torch.autograd.grad(loss, (m, v))

    ours = gradients(cholesky, cholesky_solve)
    theirs = gradients(
        torch.linalg.cholesky, lambda f, v: torch.cholesky_solve(v[..., None], f)[..., 0]
    )
    for a, e in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-8, atol=1e-10)


def test_a_matrix_that_is_not_positive_definite_gives_nan():
    matrix = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)
    assert torch.isnan(cholesky(matrix)).any()
