"""skillstack: a robotics control stack with hierarchical skills.

The repository's folders install as one namespace (setuptools ``package-dir``):

* `skillstack.robot` — types, kinematics, controllers, the safety filter, the control loop;
* `skillstack.hw` — the hardware abstraction layer: simulators, drivers, the robot server;
* `skillstack.skills` — parameterized skills, world models, training;
* `skillstack.planners` — symbolic and LLM planners, the executive, the command line.

The main entry points are importable from here without loading the simulators first::

    import skillstack
    skillstack.__version__
    robot = skillstack.make_robot("mujoco", scene="pour")  # any kind: mujoco, franka, tcp://…
    skillstack.all_skills()  # the registered skills, by name

``python -m skillstack`` runs the command line.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import Any

# MuJoCo fixes its OpenGL backend when it is first imported: choose it (MUJOCO_GL) before any
# skillstack module imports mujoco. Light: no mujoco, no numpy.
from skillstack.hw.sim import gl as _gl

_gl.select_backend()

try:
    __version__ = _metadata.version("skillstack")
except _metadata.PackageNotFoundError:  # imported from a source tree that was not installed
    __version__ = "0+unknown"

# name -> (module, attribute): loaded on first use, so `import skillstack` stays light.
_ENTRY_POINTS = {
    "main": ("skillstack.planners.cli", "main"),
    "make_robot": ("skillstack.hw.factory", "make_robot"),
    "load_scene": ("skillstack.robot.scene", "load_scene"),
    "run_instruction": ("skillstack.planners.executive", "run_instruction"),
    "SymbolicPlanner": ("skillstack.planners.symbolic", "SymbolicPlanner"),
    "get_skill": ("skillstack.skills.registry", "get_skill"),
    "all_skills": ("skillstack.skills.registry", "all_skills"),
}

__all__ = ["__version__", *_ENTRY_POINTS]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _ENTRY_POINTS[name]
    except KeyError:
        raise AttributeError(f"module 'skillstack' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
