"""Learned skills: a policy checkpoint as an implementation of a library skill.

    skill = learned_skill("out/grasp.pt")          # a Skill named "grasp"
    apply_skill_impls(["grasp=learned:out/grasp.pt"])   # swap it into the registry

The learned skill *is* the scripted one with another `plan`: the same parameters class,
preconditions (`check`), symbolic effects and success test (`verify`), so planners, the
executive and the task suite use it unchanged. Its program is one `PolicyPrimitive`, which
queries the policy at the policy's own rate (20 Hz for the demonstrations recorded here),
executes the action chunks (receding horizon by default, `ChunkExecutor`), and lets
`PolicyActuator` interpolate each action to joint targets at the control rate. The
executor's collision guard watches
it like any program; it ends when the object has been lifted, and fails with a typed
`Failure` when the fingers close on nothing or the horizon runs out.

`apply_skill_impls` takes the ``--skill-impl`` specs of the command line
(``grasp=learned:CKPT``, ``grasp=scripted``); every spec is validated, and every checkpoint
loaded, before the registry changes, so a bad spec leaves everything as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from skillstack.robot.types import JointCommand, RobotState
from skillstack.skills.base import Failure, Skill, SkillFailure
from skillstack.skills.context import Context
from skillstack.skills.guards import NoCollision
from skillstack.skills.program import Primitive, Program
from skillstack.skills.training.actuation import PolicyActuator
from skillstack.skills.training.features import OPEN_FRACTION, context_from_object, features
from skillstack.skills.training.observation import observe_robot
from skillstack.skills.training.policy import ChunkExecutor, ChunkMLP, PolicyError, load_policy
from skillstack.skills.world import WorldState

LEARNABLE_SKILLS = ("grasp",)  # skills whose calls name an object the policy is conditioned on
VARIED_PARAMS = ("object", "approach", "force")  # what may differ from the demonstrations
LIFT_FRACTION = 0.9  # done once the object rose this fraction of the requested lift …
SETTLED_SPEED = 0.02  # … and the hand moves slower than this (m/s), or rose the full lift
MISSED_WIDTH = 0.002  # m: closed fingers narrower than this hold nothing …
MISSED_AFTER_S = 0.5  # … for this long: the grasp missed
HORIZON_FACTOR = 1.5  # the policy may take this many times the longest demonstration


class SkillImplError(ValueError):
    """A ``--skill-impl`` spec that cannot be applied (syntax, skill, checkpoint)."""


class PolicyPrimitive(Primitive):
    """Runs a policy on the robot: features → action chunk → one action per step → actuator.

    Watched by its own collision guard (and the executor's); ends by `_check_end`."""

    label = "policy"

    def __init__(self, model: ChunkMLP, obj, template: str, lift: float, force: float):
        self.model, self.config = model, model.config
        self.object, self.lift, self.force = obj.name, lift, force
        self.context = context_from_object(obj, template)
        self.start_z = float(obj.position[2])
        self.horizon_s = HORIZON_FACTOR * self.config.max_duration_s
        self.guards = (NoCollision(),)
        self.actuator: PolicyActuator | None = None
        self.failure: SkillFailure | None = None
        self.missed_since: float | None = None  # s into the policy when the grip came up empty
        self._done = False

    def start(self, ctx: Context, state: RobotState) -> None:
        """Start the actuator and the chunk executor at the current state."""
        self.robot = ctx.robot
        self.actuator = PolicyActuator(ctx.robot, self.config.rate_hz, grip_force=self.force)
        self.actuator.reset(state)
        cfg = self.config
        self.executor = ChunkExecutor(
            cfg.chunk, cfg.execution, cfg.execute_steps, cfg.ensemble_decay
        )
        self.open_width = self.config.gripper_open_width
        opened = state.gripper_width > OPEN_FRACTION * self.open_width
        self.command = self.open_width if opened else 0.0
        self.t0, self.ticks, self.missed_since = state.time, 0, None
        self.last_ee = ctx.world.ee_pose().position.copy()
        self.failure, self._done = None, False

    def step(self, state: RobotState) -> JointCommand:
        """Query the policy every ``ticks_per_action`` ticks; the actuator's joint target."""
        actuator = self.actuator
        assert actuator is not None, "start() creates the actuator before the first step"
        if self.ticks % actuator.ticks_per_action == 0:
            self._act(state, actuator)
        self.ticks += 1
        return actuator.step(state)

    def _act(self, state: RobotState, actuator: PolicyActuator) -> None:
        """One policy step: observe, predict a chunk when one is needed, act."""
        obs = {k: v[None] for k, v in observe_robot(self.robot, self.object).items()}
        x = features(obs, np.array([self.command]), self.context, self.open_width)[0]
        action = self.executor.action(lambda: self.model.predict(x))
        # The demonstrations only open fully or close: snap to the nearer of the two.
        action[6] = self.open_width if action[6] > OPEN_FRACTION * self.open_width else 0.0
        actuator.apply(action, state)
        self.command = float(action[6])
        ee = obs["robot0_eef_pos"][0]
        hand_speed = float(np.linalg.norm(ee - self.last_ee)) * self.config.rate_hz
        self.last_ee = ee.copy()
        self._check_end(state, float(obs["object"][0, 2]), hand_speed)

    def _check_end(self, state: RobotState, object_z: float, hand_speed: float) -> None:
        """Done once lifted; fail on closed-on-nothing or past the horizon."""
        elapsed = state.time - self.t0
        closed = self.command < OPEN_FRACTION * self.open_width
        rose = object_z - self.start_z
        if (
            closed
            and state.gripper_width >= MISSED_WIDTH
            and (
                rose >= self.lift
                or (rose >= LIFT_FRACTION * self.lift and hand_speed < SETTLED_SPEED)
            )
        ):
            self._done = True
        elif closed and state.gripper_width < MISSED_WIDTH:
            self.missed_since = self.missed_since if self.missed_since is not None else elapsed
            if elapsed - self.missed_since >= MISSED_AFTER_S:
                self._end(Failure.GRASP_MISSED, "the fingers closed on nothing")
        elif elapsed > self.horizon_s:
            self._end(
                Failure.TIMEOUT,
                f"the policy did not lift {self.object} within {self.horizon_s:.1f} s "
                f"(it rose {rose * 1e3:.0f} mm)",
            )
        if not (closed and state.gripper_width < MISSED_WIDTH):
            self.missed_since = None

    def _end(self, failure: Failure, message: str) -> None:
        self.failure, self._done = SkillFailure(failure, message), True

    @property
    def done(self) -> bool:
        """True once the object is lifted, or the policy failed."""
        return self._done

    def finish(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """The failure that ended the policy (missed grasp, horizon), if any."""
        return self.failure


class _LearnedPlan(Skill):
    """Mixin placed before the scripted class: only `plan` (and the description) change."""

    policy: ChunkMLP
    checkpoint: Path

    def plan(self, world: WorldState, p, ctx: Context) -> Program:
        """One `PolicyPrimitive`; `SkillFailure` for parameters or an arm the policy was not
        trained with."""
        for f in dataclasses.fields(p):
            if f.name not in VARIED_PARAMS and getattr(p, f.name) != f.default:
                raise SkillFailure(
                    Failure.INVALID_PARAMETERS,
                    f"the learned {self.name} was trained with {f.name}={f.default} only "
                    f"(asked {getattr(p, f.name)}); use the scripted {self.name}",
                )
        arm = ctx.arm.name
        if arm != self.policy.config.arm:
            raise SkillFailure(
                Failure.PRECONDITION_FAILED,
                f"the learned {self.name} was trained on the {self.policy.config.arm} arm, "
                f"not {arm}; use the scripted {self.name}",
            )
        obj = world.object(p.object)
        template = self.template_for(world, p) if hasattr(self, "template_for") else "top"
        lift = getattr(p, "lift", 0.1)
        step = PolicyPrimitive(self.policy, obj, template, lift, getattr(p, "force", 40.0))
        program = Program([step], ctx, template)
        return program


def learned_skill(path: str | Path, skill: str | None = None) -> _LearnedPlan:
    """The skill implemented by the policy checkpoint at ``path``.

    Raises:
        PolicyError: the checkpoint is missing, corrupt, for another skill than ``skill``,
            or for a skill that cannot be learned.
    """
    model = load_policy(path, skill)
    name = model.config.skill
    if name not in LEARNABLE_SKILLS:
        raise PolicyError(
            f"{path}: a policy for {name!r}; learned implementations exist for "
            f"{', '.join(LEARNABLE_SKILLS)}"
        )
    base = type(scripted_skill(name))
    horizon = HORIZON_FACTOR * model.config.max_duration_s
    cls = type(
        f"Learned{base.__name__}",
        (_LearnedPlan, base),
        {
            "description": f"{base.description} (learned policy: {Path(path).name})",
            "timeout_s": max(base.timeout_s, horizon + 2.0),
        },
    )
    learned = cls()
    learned.policy, learned.checkpoint = model, Path(path)
    return learned


# -- --skill-impl ---------------------------------------------------------------------------
_SCRIPTED: dict[str, Skill] = {}  # the library's own implementations, kept when swapped out


def scripted_skill(name: str) -> Skill:
    """The library's own implementation of ``name``, even while a learned one is installed."""
    from skillstack.skills.registry import get_skill

    return _SCRIPTED.get(name) or get_skill(name)


def parse_impl_spec(spec: str) -> tuple[str, str, Path | None]:
    """``"grasp=learned:out/g.pt"`` → ("grasp", "learned", path); ``"grasp=scripted"`` →
    ("grasp", "scripted", None). `SkillImplError` on anything else."""
    name, sep, impl = spec.partition("=")
    name, impl = name.strip(), impl.strip()
    kind, _, where = impl.partition(":")
    if not sep or not name or kind not in ("learned", "scripted"):
        raise SkillImplError(
            f"cannot read --skill-impl {spec!r}: write SKILL=learned:CHECKPOINT or SKILL=scripted"
        )
    if kind == "scripted":
        if where:
            raise SkillImplError(f"--skill-impl {spec!r}: 'scripted' takes no checkpoint")
        return name, kind, None
    if not where:
        raise SkillImplError(f"--skill-impl {spec!r}: learned needs a checkpoint, learned:PATH")
    return name, kind, Path(where)


def resolve_skill_impls(specs: list[str] | None) -> dict[str, Skill]:
    """Validate ``specs`` and build each implementation, without touching the registry.

    Raises:
        SkillImplError: a malformed spec, an unknown skill, a skill named twice, or a
            checkpoint that cannot be loaded or is for another skill.
    """
    from skillstack.skills.registry import all_skills

    known = all_skills()
    chosen: dict[str, Skill] = {}
    for spec in specs or []:
        name, kind, path = parse_impl_spec(spec)
        if name not in known:
            raise SkillImplError(
                f"--skill-impl {spec!r}: unknown skill {name!r}; skills: {', '.join(sorted(known))}"
            )
        if name in chosen:
            raise SkillImplError(f"--skill-impl names {name!r} twice")
        if kind == "scripted":
            chosen[name] = _SCRIPTED.get(name, known[name])
            continue
        assert path is not None, "parse_impl_spec gives every learned spec a checkpoint"
        if name not in LEARNABLE_SKILLS:
            raise SkillImplError(
                f"--skill-impl {spec!r}: no learned implementation of {name!r}; "
                f"learnable: {', '.join(LEARNABLE_SKILLS)}"
            )
        try:
            chosen[name] = learned_skill(path, name)
        except PolicyError as exc:
            raise SkillImplError(f"--skill-impl {spec!r}: {exc}") from exc
    return chosen


def apply_skill_impls(specs: list[str] | None) -> dict[str, Skill]:
    """Validate every spec, then swap the implementations into the registry (all or none).

    Also the initializer of benchmark worker processes, so episodes there use them too.
    """
    from skillstack.skills.registry import all_skills, replace

    chosen = resolve_skill_impls(specs)
    if any(isinstance(skill, _LearnedPlan) for skill in chosen.values()):
        import torch

        torch.set_num_threads(1)  # a small MLP every 20 steps: spare cores go to the physics
    current = all_skills()
    for name, skill in chosen.items():
        if not isinstance(current[name], _LearnedPlan):
            _SCRIPTED.setdefault(name, current[name])
        replace(skill)
    return chosen
