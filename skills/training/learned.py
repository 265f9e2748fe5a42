"""Learned skills: a policy checkpoint as an implementation of a library skill.

    skill = learned_skill("out/grasp.pt")          # a Skill named "grasp"
    apply_skill_impls(["grasp=learned:out/grasp.pt"])   # swap it into the registry

The learned skill *is* the scripted one with another `plan`: the same parameters class,
preconditions (`check`), symbolic effects and success test (`verify`), so planners, the
executive and the task suite use it unchanged. Its program is one `PolicyPrimitive`, which
queries the policy at the policy's own rate (20 Hz for the demonstrations recorded here),
executes the action chunks (receding horizon by default, `ChunkExecutor`), and lets
`PolicyActuator` interpolate each action to joint targets at the control rate
(`skills.training.policy_primitives`: `GraspPolicy` ends when the object has been lifted,
`PlacePolicy` when the hand rose clear of the object it let go, `PourPolicy` when the
cup is upright again after pouring). The executor's collision
guard watches it like any program; it fails with a typed `Failure` when the fingers close
on nothing, the held object slips, or the horizon runs out.

`apply_skill_impls` takes the ``--skill-impl`` specs of the command line
(``grasp=learned:CKPT``, ``grasp=scripted``); every spec is validated, and every checkpoint
loaded, before the registry changes, so a bad spec leaves everything as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from skillstack.skills.base import Failure, Skill, SkillFailure
from skillstack.skills.context import Context
from skillstack.skills.program import Program
from skillstack.skills.training.features import context_from_object, place_context
from skillstack.skills.training.heads import ChunkPolicy
from skillstack.skills.training.policy import PolicyError, load_policy
from skillstack.skills.training.policy_primitives import (
    HORIZON_FACTOR,
    GraspPolicy,
    PlacePolicy,
    PourPolicy,
    VisionGraspPolicy,
)
from skillstack.skills.training.pour_features import pour_context
from skillstack.skills.world import WorldState

LEARNABLE_SKILLS = ("grasp", "place", "pour")  # skills with features and a policy primitive
# What a call may vary from the demonstrations (the policy is conditioned on it); any other
# parameter must keep its default.
VARIED_PARAMS = {
    "grasp": ("object", "approach", "force"),
    "place": ("object", "target", "position", "offset"),
    "pour": ("source", "target"),
}


class SkillImplError(ValueError):
    """A ``--skill-impl`` spec that cannot be applied (syntax, skill, checkpoint)."""


class _LearnedPlan(Skill):
    """Mixin placed before the scripted class: only `plan` (and the description) change."""

    policy: ChunkPolicy
    checkpoint: Path

    def plan(self, world: WorldState, p, ctx: Context) -> Program:
        """One `PolicyPrimitive`; `SkillFailure` for parameters or an arm the policy was not
        trained with."""
        for f in dataclasses.fields(p):
            if f.name not in VARIED_PARAMS[self.name] and getattr(p, f.name) != f.default:
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
        return _PROGRAMS[self.name](self, world, p, ctx)


def _grasp_program(skill: _LearnedPlan, world: WorldState, p, ctx: Context) -> Program:
    obj = world.object(p.object)
    template = skill.template_for(world, p)  # type: ignore[attr-defined]  # the scripted grasp's
    context = context_from_object(obj, template)
    if skill.policy.config.images:
        if not hasattr(ctx.robot, "model") or not hasattr(ctx.robot, "data"):
            raise SkillFailure(
                Failure.PRECONDITION_FAILED,
                f"the learned {skill.name} sees through the simulated MuJoCo cameras, which "
                f"this robot ({type(ctx.robot).__name__}) lacks; use the scripted {skill.name}",
            )
        step: GraspPolicy = VisionGraspPolicy(skill.policy, obj, context, p.lift, p.force)
    else:
        step = GraspPolicy(skill.policy, obj, context, p.lift, p.force)
    return Program([step], ctx, template)


def _place_program(skill: _LearnedPlan, world: WorldState, p, ctx: Context) -> Program:
    context = place_context(world, p, ctx.gripper_spec.max_width)
    step = PlacePolicy(skill.policy, world.object(p.object), world.ee_position, context)
    program = Program([step], ctx, context.template)
    program.allowed_contacts = {p.object}  # the held object touches what it is put on
    return program


def _pour_program(skill: _LearnedPlan, world: WorldState, p, ctx: Context) -> Program:
    from skillstack.skills.library.pour import PourProgram

    initial = world.contents.get(p.source, 0)
    context = pour_context(world, p.source, p.target)
    step = PourPolicy(skill.policy, world.object(p.source), p.target, context, initial)
    program = PourProgram([step], ctx, context.template)
    program.allowed_contacts = {p.source}
    program.initial_contents = initial  # what the scripted pour's verify measures against
    return program


# The program of each learnable skill: one policy primitive, set up as the scripted skill's.
_PROGRAMS = {"grasp": _grasp_program, "place": _place_program, "pour": _pour_program}
assert set(_PROGRAMS) == set(LEARNABLE_SKILLS) == set(VARIED_PARAMS)


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
