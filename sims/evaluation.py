"""Evaluation of trained target models against the truth: one row of errors per model."""

from __future__ import annotations

from sims.methods import Fitted, Member
from sims.metrics import divergences, linear_gaussian_kl
from sims.models.linear_gaussian import LinearGaussianModel

EVALUATION_SEED_OFFSET = 2**31  # keeps evaluation samples apart from every training sample


def evaluate(fitted: Fitted, member: Member, n: int = 10_000) -> dict[str, float]:
    """KL, TV and squared Hellinger (each with its standard error) from the target's truth to
    the model, over n fresh truth samples; ``kl_exact`` too where it has a closed form."""
    truth = member.pair.target
    result = divergences(
        truth, fitted.model.truth_log_prob, n=n, seed=EVALUATION_SEED_OFFSET + member.seed
    )
    row = {}
    for name, estimate in result.items():
        row[name], row[f"{name}_se"] = estimate.value, estimate.se
    if isinstance(fitted.model, LinearGaussianModel):
        p = truth.params
        fit = fitted.model.conditional()
        exact = linear_gaussian_kl(
            p["B"] @ p["W"], p["b"], p["Sigma"], fit.coefficients, fit.bias, fit.covariance
        )
        row["kl_exact"] = exact.item()
    return row
