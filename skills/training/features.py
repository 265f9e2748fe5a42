"""Policy inputs: the recorded observations plus a few derived features, as one flat vector.

A behaviour-cloning policy sees, at each policy step, the dataset's observation keys
(`skills.training.dataset.OBS_KEYS`) turned into features that make the task easier to
learn, and a small *call context* that is fixed for the whole skill call:

* the hand: end-effector position, its orientation as the
  first two columns of the rotation matrix (continuous, unlike a quaternion's sign), the
  finger width and the gripper command in force (open / closed);
* the object relative to the hand: position difference (world frame), and the gripper yaw
  the scripted top grasp would take on it (`skills.library.geometry.top_grasp_yaw`)
  relative to the hand's yaw, as sin/cos of twice the angle (a two-finger hand is
  symmetric under a half turn);
* the call context: the object's kind (one-hot), its extents (narrower and wider side,
  height; a round object is as wide one way as the other) and the template (top or side)
  the skill would run.

The yaw feature is the expert's own choice of grasp yaw, not the object's yaw: the
scripted grasp closes the fingers across a box's narrower side, and takes the side of a
square box that turns the hand least, so in terms of the object's yaw its target jumps by
a quarter turn where the sides become equal. Measured from the grasp yaw the target is
always 0 (sin 0, cos 1), whatever the box.

The kind and extents come from the world state at run time (`skills.world.ObjectState`);
recorded demonstrations store them (``context`` of each demo); older recordings without it
are rebuilt from the episode's seed and checked against the recorded object position
(`context_from_episode`).
Every feature's name is listed in `FEATURE_NAMES`; a checkpoint records them, so a policy
trained on other features is refused rather than fed the wrong numbers.

Joint positions and velocities are recorded but deliberately not fed to the policy. With
velocities it learns to continue whatever motion is under way (the "copycat" shortcut of
behaviour cloning): on the robot a slow start stayed slow and the hand stalled above the
object. Joint positions only restate the hand pose (through the IK's posture) and would
make the corrective augmentation of `skills.training.train` inconsistent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from skillstack.robot.rotations import to_scipy
from skillstack.skills.library.geometry import top_grasp_yaw
from skillstack.skills.training.dataset import DatasetError, Episode
from skillstack.skills.training.pour_features import (
    POUR_FEATURE_NAMES,
    PourContext,
    pour_features,
)

KINDS = ("box", "cylinder", "cup", "other")
TEMPLATES = ("top", "side")
OPEN_FRACTION = 0.5  # a gripper command wider than this fraction of the travel means "open"
NEAR_M = 0.03  # m, the range of the place features that resolve the last centimetres
CONTEXT_MATCH_M = 0.002  # a rebuilt scene must put the object within this of the recording

FEATURE_NAMES: tuple[str, ...] = (
    "eef_x",
    "eef_y",
    "eef_z",
    *(f"eef_rot6d_{i}" for i in range(6)),
    "gripper_width",
    "gripper_open_cmd",
    "obj_rel_x",
    "obj_rel_y",
    "obj_rel_z",
    "grasp_rel_yaw_sin2",
    "grasp_rel_yaw_cos2",
    "obj_extent_narrow",
    "obj_extent_wide",
    "obj_height",
    *(f"kind_{k}" for k in KINDS),
    *(f"template_{t}" for t in TEMPLATES),
)
FEATURE_DIM = len(FEATURE_NAMES)

PLACE_TEMPLATES = ("on", "in", "table")
PLACE_FEATURE_NAMES: tuple[str, ...] = (
    *FEATURE_NAMES[:11],  # the hand, its fingers and the gripper command, as for grasp
    "obj_rel_x",  # the held object relative to the hand (how it sits in the fingers)
    "obj_rel_y",
    "obj_rel_z",
    "goal_rel_x",  # the spot relative to the object's centre ...
    "goal_rel_y",
    "goal_rel_z",  # ... and the release height relative to the object's bottom
    "goal_near_x",  # goal_rel_x/y clipped to ±NEAR_M: after normalisation these resolve
    "goal_near_y",  # the last centimetres, where a table placement is judged to 2 cm
    "carry_rel_z",  # the carrying height (clear of every object) relative to its bottom
    "obj_extent_narrow",
    "obj_extent_wide",
    "obj_height",
    *(f"kind_{k}" for k in KINDS),
    *(f"template_{t}" for t in PLACE_TEMPLATES),
)
SKILL_FEATURE_NAMES = {
    "grasp": FEATURE_NAMES,
    "place": PLACE_FEATURE_NAMES,
    "pour": POUR_FEATURE_NAMES,  # `skills.training.pour_features`
}


def feature_names(skill: str) -> tuple[str, ...]:
    """The policy inputs of ``skill`` (`KeyError` for a skill without learned features)."""
    return SKILL_FEATURE_NAMES[skill]


@dataclass(frozen=True)
class CallContext:
    """What stays fixed during one skill call: the object's kind and size, the template."""

    kind: str
    extents: tuple[float, float, float]  # m: x, y, height
    template: str
    templates: ClassVar[tuple[str, ...]] = TEMPLATES

    def vector(self) -> np.ndarray:
        """Extents (narrow, wide, height), one-hot kind, one-hot template (the last
        features of `FEATURE_NAMES`)."""
        kind = np.array([self.kind == k for k in KINDS[:-1]] + [self.kind not in KINDS[:-1]])
        template = np.array([self.template == t for t in self.templates])
        x, y, h = self.extents
        sizes = np.array([min(x, y), max(x, y), h])
        return np.concatenate([sizes, kind, template]).astype(float)


@dataclass(frozen=True)
class PlaceContext(CallContext):
    """A place call's context: the held object's, the template (on, in, table) and where it
    goes (`skills.library.place.place_spot`), and the finger opening that lets go of it."""

    spot: tuple[float, float] = (0.0, 0.0)  # m: where the object's centre goes
    release_bottom: float = 0.0  # m: world z of its bottom when let go
    carry_bottom: float = 0.0  # m: world z of its bottom while carried
    release_width: float = 0.08  # m: the opening command that lets go
    templates: ClassVar[tuple[str, ...]] = PLACE_TEMPLATES

    def to_dict(self) -> dict:
        """As a demonstration stores it (``context`` of the demo)."""
        return {
            "kind": self.kind,
            "extents": list(self.extents),
            "template": self.template,
            "spot": list(self.spot),
            "release_bottom": self.release_bottom,
            "carry_bottom": self.carry_bottom,
            "release_width": self.release_width,
        }

    @staticmethod
    def from_dict(c: dict) -> PlaceContext:
        """The inverse of `to_dict`."""
        x, y, h = (float(v) for v in c["extents"])
        sx, sy = (float(v) for v in c["spot"])
        return PlaceContext(
            str(c["kind"]),
            (x, y, h),
            str(c["template"]),
            (sx, sy),
            float(c["release_bottom"]),
            float(c["carry_bottom"]),
            float(c["release_width"]),
        )


def place_context(world, params: dict, max_width: float) -> PlaceContext:
    """The context of a place call with ``params`` in ``world`` (a `skills.world.WorldState`
    in which the object is held and the call passed its checks)."""
    from skillstack.skills.library.place import Place, PlaceParams, place_spot, release_width
    from skillstack.skills.params import parse

    p = parse(PlaceParams, params, "place") if isinstance(params, dict) else params
    obj = world.object(p.object)
    spot = place_spot(world, p, Place().template_for(world, p))
    return PlaceContext(
        obj.kind,
        extents(obj.kind, obj.size),
        spot.template,
        (spot.x, spot.y),
        spot.bottom,
        spot.carry,
        release_width(world, max_width),
    )


def extents(kind: str, size) -> tuple[float, float, float]:
    """(x, y, height) extents of an object of ``kind`` with scene ``size``."""
    size = tuple(float(s) for s in size)
    if kind == "box":
        return size[0], size[1], size[2]
    return size[0], size[0], size[1] if len(size) > 1 else size[0]


def context_from_object(obj, template: str) -> CallContext:
    """The call context of a skill call on ``obj`` (a `skills.world.ObjectState`)."""
    return CallContext(obj.kind, extents(obj.kind, obj.size), template)


def context_from_episode(skill: str, episode: Episode) -> CallContext | PourContext:
    """The call context of a recorded episode: the one it stores, or else (recordings made
    before contexts were stored) rebuilt from its seed and parameters.

    Raises:
        DatasetError: the rebuilt scene does not put the object where the recording has it
            (the dataset was collected with other scene generators).
    """
    from skillstack.skills.episodes import episode_setup

    if skill == "pour":
        if "target" not in episode.context or "object_fill" not in episode.obs:
            raise DatasetError(
                f"demo seed {episode.seed}: recorded without the pour context or the cup's "
                "fill; collect it again with this version"
            )
        return PourContext.from_dict(episode.context)
    if skill == "place":
        if "spot" not in episode.context:
            raise DatasetError(
                f"demo seed {episode.seed}: recorded without the place spot; collect it again "
                "with this version"
            )
        return PlaceContext.from_dict(episode.context)
    if episode.context:
        c = episode.context
        x, y, h = (float(v) for v in c["extents"])
        return CallContext(str(c["kind"]), (x, y, h), c["template"])
    scene, _, _ = episode_setup(skill, episode.seed)
    name = episode.params.get("object")
    try:
        if not isinstance(name, str):
            raise KeyError(name)  # reported as a missing object, like a wrong name
        obj = scene.object(name)
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"demo seed {episode.seed}: no object {name!r} in its scene") from exc
    recorded = np.asarray(episode.obs["object"][0, :2], dtype=float)
    if np.linalg.norm(recorded - np.asarray(obj.position[:2])) > CONTEXT_MATCH_M:
        raise DatasetError(
            f"demo seed {episode.seed}: its scene cannot be rebuilt (object at {recorded} "
            f"recorded, {obj.position[:2]} rebuilt); collect it again with this version"
        )
    approach = episode.params.get("approach", "top")
    template = "top" if approach == "auto" else approach
    return CallContext(obj.kind, extents(obj.kind, obj.size), template)


def _yaw_of_x_axis(matrices: np.ndarray) -> np.ndarray:
    """Heading of each frame's x axis projected on the table (rad)."""
    return np.arctan2(matrices[:, 1, 0], matrices[:, 0, 0])


def features(
    obs: dict[str, np.ndarray],
    gripper_command: np.ndarray,
    context: CallContext,
    max_width: float,
) -> np.ndarray:
    """Feature rows (T, `FEATURE_DIM`) for observations ``obs`` (each key (T, dim)).

    ``gripper_command`` (T,) is the finger width commanded when each sample was taken;
    ``max_width`` the gripper's full opening (to tell open from closed commands).
    """
    own = hand_features(obs, gripper_command, max_width)
    eef, n = own[:, :3], len(own)
    obj = np.atleast_2d(obs["object"]).astype(float)
    hand = to_scipy(np.atleast_2d(obs["robot0_eef_quat"]).astype(float)).as_matrix()
    obj_yaw = _yaw_of_x_axis(to_scipy(obj[:, 3:7]).as_matrix())  # object pose: xyz, wxyz
    size = context.extents  # x, y first, as a box's scene size
    grasp_yaw = np.array(
        [top_grasp_yaw(context.kind, size, float(a), p) for a, p in zip(obj_yaw, obj[:, :2])]
    )
    rel_yaw = grasp_yaw - _yaw_of_x_axis(hand)
    ctx = np.broadcast_to(context.vector(), (n, len(context.vector())))
    out = np.concatenate(
        [
            own,
            obj[:, :3] - eef,
            np.sin(2 * rel_yaw)[:, None],
            np.cos(2 * rel_yaw)[:, None],
            ctx,
        ],
        axis=1,
    )
    assert out.shape[1] == FEATURE_DIM, out.shape
    return out


def hand_features(
    obs: dict[str, np.ndarray], gripper_command: np.ndarray, open_width: float
) -> np.ndarray:
    """The first 11 features of every skill (T, 11): the hand's position, its orientation as
    the first two columns of its rotation matrix, the finger width, and whether the gripper
    command in force is open (wider than `OPEN_FRACTION` of ``open_width``)."""
    eef = np.atleast_2d(obs["robot0_eef_pos"]).astype(float)
    n = len(eef)
    hand = to_scipy(np.atleast_2d(obs["robot0_eef_quat"]).astype(float)).as_matrix()
    rot6d = hand[:, :, :2].transpose(0, 2, 1).reshape(n, 6)
    width = np.asarray(obs["robot0_gripper_width"], dtype=float).reshape(n, 1)
    command = np.asarray(gripper_command, dtype=float).reshape(n, 1)
    opened = (command > OPEN_FRACTION * open_width).astype(float)
    return np.concatenate([eef, rot6d, width, opened], axis=1)


def place_features(
    obs: dict[str, np.ndarray], gripper_command: np.ndarray, context: PlaceContext
) -> np.ndarray:
    """Feature rows (T, len(`PLACE_FEATURE_NAMES`)) of a place call (see `features`)."""
    own = hand_features(obs, gripper_command, context.release_width)
    eef, n = own[:, :3], len(own)
    obj = np.atleast_2d(obs["object"]).astype(float)[:, :3]
    bottom = obj[:, 2:3] - context.extents[2] / 2
    goal = np.concatenate(
        [np.asarray(context.spot)[None, :] - obj[:, :2], context.release_bottom - bottom], axis=1
    )
    ctx = np.broadcast_to(context.vector(), (n, len(context.vector())))
    near = np.clip(goal[:, :2], -NEAR_M, NEAR_M)
    carry = context.carry_bottom - bottom
    out = np.concatenate([own, obj - eef, goal, near, carry, ctx], axis=1)
    assert out.shape[1] == len(PLACE_FEATURE_NAMES), out.shape
    return out


def skill_features(
    skill: str,
    obs: dict[str, np.ndarray],
    gripper_command: np.ndarray,
    context: CallContext | PourContext,
    max_width: float,
) -> np.ndarray:
    """The feature rows of ``skill`` (`features` for grasp, `place_features` for place,
    `skills.training.pour_features.pour_features` for pour)."""
    if skill == "pour":
        assert isinstance(context, PourContext), "a pour call has a PourContext"
        return pour_features(obs, context)
    if skill == "place":
        assert isinstance(context, PlaceContext), "a place call has a PlaceContext"
        return place_features(obs, gripper_command, context)
    assert isinstance(context, CallContext), "a grasp call has a CallContext"
    return features(obs, gripper_command, context, max_width)


def episode_features(skill: str, episode: Episode, max_width: float) -> np.ndarray:
    """Feature rows of a recorded episode. The gripper command in force is the previous
    sample's commanded width; the first sample's is the open gripper of the reset (grasp) or
    the closed grip on the held object (place, pour)."""
    first = 0.0 if skill in ("place", "pour") else max_width
    commands = np.concatenate([[first], episode.actions[:-1, 6]])
    context = context_from_episode(skill, episode)
    return skill_features(skill, episode.obs, commands, context, max_width)
