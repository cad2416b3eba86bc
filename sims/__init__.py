"""Simulation suite for transfer learning in generative models.

Data flows one way: ``generators`` (exact ground truth) -> models and methods ->
``metrics`` (rows of errors against the truth) -> ``theory`` and figures.
"""
