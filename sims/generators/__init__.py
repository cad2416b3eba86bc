"""Ground-truth families: exact densities, scores and samplers for target and source tasks.

from sims.generators import make_task_pair
pair = make_task_pair("gaussian_smooth", d_x=2, d_z=8, d_h=2, similarity=0.0, seed=0)
z, x = pair.target.sample(1000, seed=1)
pair.target.log_prob(x, z, tau=0.1), pair.target.score(x, z, tau=0.1)
"""

import importlib
import pkgutil

from sims.generators.gaussian_mixture import GaussianMixture
from sims.generators.registry import (
    STRUCTURES,
    families,
    family_knobs,
    family_params,
    family_structure,
    load_plugin,
    make_task_pair,
    register_family,
)
from sims.generators.tasks import ConditionalTask, Task, TaskPair, UnconditionalTask

for _module in pkgutil.iter_modules(__path__):  # importing a family's module registers it
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ConditionalTask",
    "GaussianMixture",
    "Task",
    "TaskPair",
    "UnconditionalTask",
    "STRUCTURES",
    "families",
    "family_knobs",
    "family_params",
    "family_structure",
    "load_plugin",
    "make_task_pair",
    "register_family",
]
