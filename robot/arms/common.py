"""Conventions every arm model follows, shared with the scene builder and the skills."""

from pathlib import Path

# Collision bit masks: the arm collides with the scene (table and objects) but not with
# itself (adjacent links overlap in the meshes).
COLLIDE_SCENE = 1
COLLIDE_ROBOT = 2


def pybullet_data_file(relative: str, what: str) -> Path:
    """Path of a robot description installed with pybullet_data (e.g. ``franka_panda/panda.urdf``);
    `RuntimeError` saying how to fix it when missing. ``what`` names the model in messages."""
    try:
        import pybullet_data
    except ImportError as exc:  # pragma: no cover - pybullet is a core dependency
        raise RuntimeError(
            f"the {what} model comes from pybullet_data; install it with `pip install pybullet`"
        ) from exc
    path = Path(pybullet_data.getDataPath()) / relative
    if not path.is_file():
        raise RuntimeError(f"pybullet_data has no {what} model at {path}; reinstall pybullet")
    return path
