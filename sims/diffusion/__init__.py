"""Diffusion-model machinery built from the forward process (``sims.sde.VPSDE``): the
reverse-time sampler, the probability-flow likelihood, the exact score error and the path
bound. A score is any callable ``score(x, z, tau) -> (N, d_x)``; ``task.score`` of a ground
truth is one, which is how each piece is tested against the truth."""
