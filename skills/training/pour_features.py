"""Policy inputs of a learned pour: the hand, the held cup, how full it still is, the target.

A pour is one long motion with a pause that the state alone cannot time: the scripted
expert carries the cup over the target, tilts it, holds it tilted for a while, and
returns it upright. Held tilted, the robot looks the same at the start and at the end of
the hold; what changes is how much is left in the cup. So the pour features include
``object_fill``, the fraction of the cup's particles still in it (recorded with every pour
demonstration, `skills.training.dataset.OPTIONAL_OBS_KEYS`; counted by the simulator, or on
a real arm by whatever can see into the cup).

The rest, per sample:

* the hand: position, orientation (6-D), finger width;
* the cup relative to the hand, and its axis (bottom to top; world frame): the tilt;
* how long ago the cup first tipped past level (``tilted_for``): the expert holds it
  tilted for a fixed time, then brings it back; the policy keeps this clock itself;
* the target relative to the cup: its centre (x, y) and its rim height relative to the
  cup's centre;
* the call context, fixed for the call: the cup's diameter and height, the target's
  diameter and height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skillstack.robot.rotations import to_scipy

TILTED_CAP_S = 6.0  # s, "tilted_for" stops counting here (the expert is upright by then)
DEFAULT_RATE_HZ = 20.0  # samples per second of recorded pours

POUR_FEATURE_NAMES: tuple[str, ...] = (
    "eef_x",
    "eef_y",
    "eef_z",
    *(f"eef_rot6d_{i}" for i in range(6)),
    "gripper_width",
    "obj_rel_x",  # the cup relative to the hand
    "obj_rel_y",
    "obj_rel_z",
    "cup_axis_x",  # the cup's axis, bottom to top: (0, 0, 1) upright
    "cup_axis_y",
    "cup_axis_z",
    "fill",  # fraction of the cup's particles still in it
    "tilted_for",  # s since the cup first tipped past level (0 before; capped)
    "target_rel_x",  # the target's centre relative to the cup's
    "target_rel_y",
    "target_rel_z",  # the target's rim relative to the cup's centre
    "cup_diameter",
    "cup_height",
    "target_diameter",
    "target_height",
)


@dataclass(frozen=True)
class PourContext:
    """A pour call's context: the cup's size, where the target is and its size."""

    cup: tuple[float, float]  # m: diameter, height
    target: tuple[float, float, float]  # m: centre x, y and rim height (world z)
    target_size: tuple[float, float]  # m: diameter, height
    template: str = "tilt_sideways"

    def vector(self) -> np.ndarray:
        """The fixed features: cup diameter and height, target diameter and height."""
        return np.array([*self.cup, *self.target_size], dtype=float)

    def to_dict(self) -> dict:
        """As a demonstration stores it (``context`` of the demo)."""
        return {
            "kind": "cup",  # the object handled, as grasp and place contexts say
            "cup": list(self.cup),
            "target": list(self.target),
            "target_size": list(self.target_size),
            "template": self.template,
        }

    @staticmethod
    def from_dict(c: dict) -> PourContext:
        """The inverse of `to_dict`."""
        d, h = (float(v) for v in c["cup"])
        x, y, z = (float(v) for v in c["target"])
        td, th = (float(v) for v in c["target_size"])
        return PourContext((d, h), (x, y, z), (td, th), str(c.get("template", "tilt_sideways")))


def pour_context(world, source: str, target: str) -> PourContext:
    """The context of pouring ``source`` into ``target`` in ``world`` (a
    `skills.world.WorldState`)."""
    cup, bowl = world.object(source), world.object(target)
    return PourContext(
        (float(cup.size[0]), float(cup.height)),
        (float(bowl.position[0]), float(bowl.position[1]), float(bowl.top)),
        (float(bowl.size[0]), float(bowl.height)),
    )


def tilted_for(axis_z: np.ndarray, rate_hz: float = DEFAULT_RATE_HZ) -> np.ndarray:
    """For each sample of a pour (the cup axis's vertical component, one per sample at
    ``rate_hz``), the seconds since the cup first tipped past level (0 before), capped."""
    tipped = np.flatnonzero(np.asarray(axis_z) < 0.0)
    t = np.zeros(len(axis_z))
    if len(tipped):
        t[tipped[0] :] = np.arange(len(axis_z) - tipped[0]) / rate_hz
    return np.minimum(t, TILTED_CAP_S)


def pour_features(obs: dict[str, np.ndarray], context: PourContext) -> np.ndarray:
    """Feature rows (T, len(`POUR_FEATURE_NAMES`)); ``obs`` must hold ``object_fill``, and
    may hold ``tilted_for`` (T, 1) (else it is computed from the rows, a whole pour at
    `DEFAULT_RATE_HZ`)."""
    eef = np.atleast_2d(obs["robot0_eef_pos"]).astype(float)
    n = len(eef)
    hand = to_scipy(np.atleast_2d(obs["robot0_eef_quat"]).astype(float)).as_matrix()
    rot6d = hand[:, :, :2].transpose(0, 2, 1).reshape(n, 6)
    width = np.asarray(obs["robot0_gripper_width"], dtype=float).reshape(n, 1)
    obj = np.atleast_2d(obs["object"]).astype(float)
    axis = to_scipy(obj[:, 3:7]).as_matrix()[:, :, 2]
    fill = np.asarray(obs["object_fill"], dtype=float).reshape(n, 1)
    if "tilted_for" in obs:
        tilted = np.asarray(obs["tilted_for"], dtype=float).reshape(n, 1)
    else:
        tilted = tilted_for(axis[:, 2])[:, None]
    tx, ty, tz = context.target
    target = np.stack([tx - obj[:, 0], ty - obj[:, 1], tz - obj[:, 2]], axis=1)
    fixed = np.broadcast_to(context.vector(), (n, 4))
    out = np.concatenate(
        [eef, rot6d, width, obj[:, :3] - eef, axis, fill, tilted, target, fixed], axis=1
    )
    assert out.shape[1] == len(POUR_FEATURE_NAMES), out.shape
    return out
