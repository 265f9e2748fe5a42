"""pour(source, target): tilt a held cup of particles over a container and measure what landed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from skillstack.robot.rotations import quat_mul
from skillstack.skills.base import Failure, Outcome, Refusal, Skill, SkillFailure
from skillstack.skills.context import Context, top_down
from skillstack.skills.guards import Holding
from skillstack.skills.library.geometry import RIM_DEPTH
from skillstack.skills.params import ObjectName, param
from skillstack.skills.program import Grip, JointPath, Move, Pause, Program
from skillstack.skills.registration import register
from skillstack.skills.world import WorldFacts, WorldState

LIP_ABOVE_TARGET = 0.10  # m, the pouring lip ends this high above the target's rim
CARRY_HEIGHT = 0.28  # m, fingertip height while carrying the cup
MIN_FRACTION = 0.5  # of the cup's particles must land in the target for a success
RIM_SAMPLES = 72  # points on the rim searched for the lowest (pouring) one
ARM_CLEARANCE = 0.03  # m, the arm keeps this far from the table and target while tilting
POUR_GRIP_FORCE = 70.0  # N, the Franka Hand's maximum continuous force
TILT_WAYPOINTS = 8  # joint configurations along the tilt, each checked for clearance
RAISE_STEPS = (0.0, 0.03, 0.06, 0.09)  # m, tried in turn to clear the arm
# m, lip offset past the target's centre along the pouring direction (tuned on the default
# scene: 0 to 2 cm all landed; -2 cm lost 30 %).
LEAD = 0.01


@dataclass(frozen=True)
class PourParams:
    """Parameters of `pour`."""

    source: ObjectName = param(description="the held cup to pour from")
    target: ObjectName = param(description="the container to pour into (bowl or cup)")
    angle: float = param(
        125.0, unit="deg", low=60.0, high=150.0, description="tilt angle from upright"
    )
    duration: float = param(
        2.5, unit="s", low=0.5, high=5.0, description="time to tilt (and to return)"
    )
    hold: float = param(1.5, unit="s", low=0.0, high=5.0, description="time held at full tilt")


class PourProgram(Program):
    """The program of `pour`, with the number of particles the cup held when it was planned."""

    initial_contents: int  # set by `Pour.plan`


@register
class Pour(Skill):
    """Pour the particles of a held cup into a container."""

    name = "pour"
    description = (
        "Pour the contents of the cup being held into a bowl or another cup: move over the target, "
        "tilt by `angle` degrees over `duration` seconds, hold, and return upright. The cup "
        "must be held by its rim (grasp it with approach='top') and contain something."
    )
    Params = PourParams
    timeout_s = 30.0
    templates = ("tilt_sideways",)

    def preconditions(self, p: PourParams) -> list[tuple]:
        """The cup must be held."""
        return [("holding", p.source)]

    def effects(self, world: WorldFacts, p: PourParams) -> tuple[set, set]:
        """Moves the source's particle count to the target (``contains``) and adds
        ``poured(source, target)``."""
        n_source = world.contents.get(p.source, 0)
        n_target = world.contents.get(p.target, 0)
        delete = {("contains", p.source, n_source), ("contains", p.target, n_target)}
        add = {
            ("contains", p.source, 0),
            ("contains", p.target, n_target + n_source),
            ("poured", p.source, p.target),
        }
        return add, delete

    def check(self, world: WorldState, p: PourParams) -> Refusal | None:
        """Refuse a source that is not an upright, non-empty cup, or a target that is the
        source itself or not a container."""
        refusal = super().check(world, p)
        if refusal:
            return refusal
        source, target = world.object(p.source), world.object(p.target)
        if source.kind != "cup":
            return Refusal(
                Failure.INVALID_TARGET,
                f"{source.name} is a {source.kind}; only cups are poured from",
            )
        if p.target == p.source:
            return Refusal(Failure.INVALID_TARGET, "cannot pour a cup into itself")
        if not target.is_container:
            return Refusal(
                Failure.INVALID_TARGET,
                f"{target.name} is a {target.kind}, not a container (bowl, cup)",
            )
        if world.contents.get(p.source, 0) == 0:
            return Refusal(Failure.PRECONDITION_FAILED, f"{source.name} is empty")
        if not source.upright:
            return Refusal(Failure.PRECONDITION_FAILED, f"{source.name} is not upright in the hand")
        return None

    def plan(self, world: WorldState, p: PourParams, ctx: Context) -> PourProgram:
        """Squeeze, lift, carry over the target, tilt along a clearance-checked joint path,
        hold, return upright and raise; the tilt direction and height are chosen first."""
        source, target = world.object(p.source), world.object(p.target)
        ee = np.array(world.ee_position)
        heading = math.atan2(target.position[1], target.position[0])
        upright = top_down(ctx, heading + math.pi / 2)  # fingers along the radial direction
        mouth_goal = np.array(
            [target.position[0], target.position[1], target.top + LIP_ABOVE_TARGET]
        )
        radius = source.size[0] / 2
        candidates = []
        for sign in (1.0, -1.0):
            tilted = quat_mul(upright, _about_y(sign * math.radians(p.angle)))
            lip, mouth, _ = _mouth(tilted, radius)
            # At full tilt the contents pour over the lowest point of the rim (the lip): aim
            # the lip over the target's centre, shifted by LEAD along the lip's direction.
            flow = (lip - mouth)[:2]
            flow /= max(np.linalg.norm(flow), 1e-9)
            pour_at = mouth_goal - lip
            pour_at[:2] += LEAD * flow
            candidates.append(
                (abs(math.hypot(pour_at[0], pour_at[1]) - 0.5), sign, tilted, pour_at)
            )
        candidates.sort(key=lambda c: c[0])
        pour_at, tilt_path = self._choose_pose(ctx, candidates, upright, source.name, p.angle)
        q_pour = tilt_path[0]
        holding = Holding(source.name, min_width=source.size[0] - 0.015, max_distance=source.height)
        carry = (pour_at[0], pour_at[1], max(CARRY_HEIGHT, pour_at[2] + 0.05))
        q_carry = ctx.solve("carry", carry, upright, [q_pour])
        quat_now = ctx.world.ee_pose().quat
        lift = (ee[0], ee[1], max(CARRY_HEIGHT, ee[2]))
        steps = [
            # Squeeze harder before tilting: a full cup held by its rim twists in the fingers.
            Grip("secure", 0.0, POUR_GRIP_FORCE, guards=[holding]),
            Move("lift", lift, quat_now, speed=0.15, guards=[holding]),
            Move("carry", carry, upright, speed=0.2, guards=[holding], posture=q_carry),
            Move("approach", pour_at, upright, speed=0.1, guards=[holding], posture=q_pour),
            JointPath("tilt", tilt_path, p.duration, guards=[holding]),
            Pause("hold", p.hold, guards=[holding]),
            JointPath("return upright", tilt_path[::-1], p.duration, guards=[holding]),
            Move("raise", carry, upright, speed=0.15, guards=[holding], posture=q_carry),
        ]
        program = PourProgram(steps, ctx, "tilt_sideways")
        program.allowed_contacts = {source.name}
        program.initial_contents = world.contents.get(p.source, 0)
        return program

    @staticmethod
    def _choose_pose(
        ctx: Context, candidates: list, upright: np.ndarray, source: str, angle: float
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The first tilt direction and height whose whole tilt keeps the arm clear of the
        table and the target: (pour position, joint path from upright to fully tilted).

        Tilting swings the wrist down; the pose is raised in steps (the stream then falls
        further) until the arm stays `ARM_CLEARANCE` from everything along the tilt.
        """
        failure: SkillFailure | None = None
        for _, sign, _, pour_at in candidates:
            for raise_by in RAISE_STEPS:
                at = pour_at + np.array([0.0, 0.0, raise_by])
                try:
                    path = [ctx.solve("pour position", at, upright)]
                    worst = ctx.clearance(path[0], {source})
                    for k in range(1, TILT_WAYPOINTS + 1):
                        part = quat_mul(
                            upright, _about_y(sign * k / TILT_WAYPOINTS * math.radians(angle))
                        )
                        path.append(ctx.solve("tilt", at, part, [path[-1]]))
                        worst = min(worst, ctx.clearance(path[-1], {source}))
                except SkillFailure as exc:
                    failure = exc
                    break
                if worst >= ARM_CLEARANCE:
                    return at, path
                failure = SkillFailure(
                    Failure.UNREACHABLE,
                    f"tilting over the target would bring the arm within {worst * 100:.1f} cm "
                    "of the table or the target",
                )
        assert failure is not None, "plan() passes both tilt directions"
        raise failure

    def verify(
        self, before: WorldState, after: WorldState, p: PourParams, program: PourProgram
    ) -> Outcome:
        """Success when the cup is still held and at least `MIN_FRACTION` of its particles
        landed in the target."""
        n = program.initial_contents
        landed = after.contents.get(p.target, 0) - before.contents.get(p.target, 0)
        fraction = landed / n if n else 0.0
        metrics = {
            "particles_in_target": fraction,
            "particles_poured": float(n),
            "spilled": float(after.spilled),
        }
        if after.held != p.source:
            return Outcome(False, Failure.OBJECT_SLIPPED, f"{p.source} left the gripper", metrics)
        if fraction < MIN_FRACTION:
            return Outcome(
                False,
                Failure.MISSED_TARGET,
                f"only {landed} of {n} particles landed in {p.target} ({fraction:.0%})",
                metrics,
            )
        return Outcome(True, metrics=metrics)


def _about_y(angle: float) -> np.ndarray:
    return np.array([math.cos(angle / 2), 0.0, math.sin(angle / 2), 0.0])


def _mouth(quat: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """After tilting the hand to ``quat``: the lowest rim point and the rim's centre (both
    relative to the fingertips) and the cup's axis (bottom to top), in the world frame.

    In the hand frame z points down the cup's axis; the rim is RIM_DEPTH above the fingertips.
    """
    flat = np.zeros(9)
    mujoco.mju_quat2Mat(flat, quat)
    rot = flat.reshape(3, 3)
    angles = np.linspace(0.0, 2 * math.pi, RIM_SAMPLES, endpoint=False)
    rim = np.stack(
        [radius * np.cos(angles), radius * np.sin(angles), np.full_like(angles, -RIM_DEPTH)], axis=1
    )
    world = rim @ rot.T
    return (
        world[int(np.argmin(world[:, 2]))],
        rot @ np.array([0.0, 0.0, -RIM_DEPTH]),
        rot @ np.array([0.0, 0.0, -1.0]),
    )
