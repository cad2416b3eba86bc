"""A family of one's own, in one file outside ``sims/``: the 2-D Gaussian mixture of public
replications of "Transfer Learning for Diffusion Models" (source modes ±(0.5, 0.5), target
modes ±(0.5, -0.5), variance 0.1 each): one shared latent law, each task an affine map of it.

    python run_all.py --plugin tests/plugins/two_modes.py --profile smoke \\
        --only unconditional --set family=two_modes
"""

import torch

from sims.generators import GaussianMixture, UnconditionalTask, register_family

MODES = torch.tensor([[0.5, 0.5], [-0.5, -0.5]], dtype=torch.float64)
VARIANCE = 0.1


@register_family(structure="latent")
def two_modes(*, d_x: int = 2) -> tuple[UnconditionalTask, UnconditionalTask]:
    """The source's law L: modes ±(0.5, 0.5); the target's: L reflected to ±(0.5, -0.5)."""
    if d_x != 2:
        raise ValueError(f"d_x={d_x} is not allowed: expected 2")
    law = GaussianMixture(
        torch.zeros(2, dtype=torch.float64),
        MODES,
        VARIANCE * torch.eye(2, dtype=torch.float64).expand(2, 2, 2),
    )

    def task(name: str, weight: torch.Tensor) -> UnconditionalTask:
        return UnconditionalTask.of_latent(name, law, weight, torch.zeros(2, dtype=torch.float64))

    reflection = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    return task("target", reflection), task("source", torch.eye(2, dtype=torch.float64))
