"""`skillstack collect`, `train`, `eval` and `dagger`: demonstrations → a policy → its measured
success → the expert's labels on the states the policy reaches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from skillstack.planners.cli.bench_cmd import _with_progress
from skillstack.planners.cli.common import app, fail
from skillstack.planners.cli.executor_options import Executor, Jobs, RayAddress, executor_config
from skillstack.planners.cli.output import print_json


@app.command()
def collect(
    skill: Annotated[str, typer.Argument(help="Skill to demonstrate (grasp, place, pour).")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to record.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the random scenes.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for <skill>.hdf5.")] = Path("data"),
    jobs: Jobs = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    random_starts: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Fraction of episodes from a random hand pose."),
    ] = 0.0,
    after_place: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Grasp: fraction of episodes that start where a place of another block "
            "left the hand.",
        ),
    ] = 0.0,
    images: Annotated[
        bool,
        typer.Option("--images", help="Also record scene and wrist camera RGB images."),
    ] = False,
    image_size: Annotated[
        int, typer.Option(help="Side of the square images in pixels (with --images).")
    ] = 84,
    scenes: Annotated[
        str,
        typer.Option(
            help="Scene set: bench (the benchmark's scenes) or mixed (grasp: also blocks on "
            "plates, in bowls, on blocks, square blocks at yaw ~0; place: also blocks onto "
            "blocks, cups onto plates and the table)."
        ),
    ] = "bench",
) -> None:
    """Run the scripted skill as the expert on random scenes and save the demonstrations."""
    from skillstack.hw.sim.mujoco.render import RenderUnavailable
    from skillstack.skills.parallel import ExecutorUnavailable
    from skillstack.skills.training import collect as collecting
    from skillstack.skills.training import images as imaging
    from skillstack.skills.training.dataset import DatasetError
    from skillstack.skills.training.dataset_reader import open_dataset

    if skill not in collecting.COLLECTABLE_SKILLS:
        fail(
            f"cannot collect {skill!r}; collectable skills: "
            f"{', '.join(collecting.COLLECTABLE_SKILLS)}",
            code=2,
        )
    from skillstack.skills.training.scenes import MIXED_SKILLS, SCENE_SETS

    if scenes not in SCENE_SETS:
        fail(f"unknown scene set {scenes!r}; sets: {', '.join(SCENE_SETS)}", code=2)
    if scenes == "mixed" and skill not in MIXED_SKILLS:
        fail(f"the mixed scene set is for {' and '.join(MIXED_SKILLS)} only, not {skill!r}", code=2)
    if after_place and skill != "grasp":
        fail(f"--after-place is for grasp only, not {skill!r}", code=2)
    if images:
        try:
            imaging.check_image_size(image_size)
            imaging.check_rendering()
        except (ValueError, RenderUnavailable) as exc:
            fail(str(exc), code=2)
    config = executor_config(executor, jobs, ray_address)
    start = time.perf_counter()
    try:
        path = _with_progress(
            f"{skill} demonstrations",
            lambda progress: collecting.collect(
                skill,
                episodes,
                seed,
                out,
                jobs=jobs,
                progress=progress,
                random_starts=random_starts,
                after_place=after_place,
                image_size=image_size if images else None,
                scenes=scenes,
                executor=config.executor,
                ray_address=config.ray_address,
            ),
        )
        reader = open_dataset(path, skill)
    except (ValueError, DatasetError, OSError, RenderUnavailable, ExecutorUnavailable) as exc:
        fail(str(exc))
    seconds = time.perf_counter() - start
    demos = reader.episodes(successful_only=False)
    wins = sum(e.success for e in demos)
    samples = sum(e.num_samples for e in demos)
    size = f"{image_size}×{image_size}"
    pictures = f", {size} images {', '.join(reader.image_keys)}" if images else ""
    print(
        f"collected {len(demos)} {skill} episodes ({wins} successful, {samples} samples"
        f"{pictures}) → {path} in {seconds:.1f} s"
    )


@app.command()
def train(
    skill: Annotated[
        str,
        typer.Argument(
            help="Skill to learn (grasp, place, pour), or multi: one policy for --skills."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Dataset file, or a folder with <skill>.hdf5.")],
    out: Annotated[Path, typer.Option(help="Checkpoint to write (a .png loss curve beside).")],
    skills: Annotated[
        str, typer.Option(help="multi: the skills, comma-separated (each <skill>.hdf5 in --data).")
    ] = "grasp,place,pour",
    head: Annotated[
        str, typer.Option(help="Network: mlp, transformer (ACT-style) or diffusion.")
    ] = "mlp",
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Passes over the data [default: the head's].")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per gradient step.")] = 256,
    chunk: Annotated[int, typer.Option(min=1, help="Future actions predicted per step.")] = 20,
    hidden: Annotated[
        int | None,
        typer.Option(min=8, help="Hidden width (transformer: model width) [default: the head's]."),
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Hidden layers (transformer: encoder and decoder layers each) "
            "[default: the head's].",
        ),
    ] = None,
    images: Annotated[
        bool,
        typer.Option(
            "--images",
            help="Image policy: sees the cameras instead of the object's pose (grasp; data "
            "collected with --images).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the split, weights and batches.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Behaviour cloning: fit an action-chunking policy (MLP, ACT-style transformer or
    diffusion head) to demonstrations, save a checkpoint."""
    from skillstack.skills.training import train as training
    from skillstack.skills.training.dataset import DatasetError
    from skillstack.skills.training.heads import HEADS
    from skillstack.skills.training.learned import LEARNABLE_SKILLS
    from skillstack.skills.training.multitask import MULTI_TASK
    from skillstack.skills.training.train_multi import train_multi

    if skill not in (*LEARNABLE_SKILLS, MULTI_TASK):
        fail(
            f"cannot train {skill[:40]!r}; learnable skills: {', '.join(LEARNABLE_SKILLS)}, "
            f"or {MULTI_TASK} for several",
            code=2,
        )
    if skill == MULTI_TASK and (head != "mlp" or images):
        fail("a multi-task policy has the mlp head and no images", code=2)
    if head not in HEADS:
        fail(f"unknown head {head[:40]!r}; choose one of {', '.join(HEADS)}", code=2)
    try:
        training.check_device(device)
    except ValueError as exc:
        fail(str(exc), code=2)
    path = training.resolve_data(data, skill) if skill != MULTI_TASK else data
    try:
        if skill == MULTI_TASK:
            report = _with_progress(
                f"training {skills}",
                lambda progress: train_multi(
                    data,
                    out,
                    skills.split(","),
                    epochs=epochs or 30,
                    batch_size=batch_size,
                    chunk=chunk,
                    hidden=hidden or 256,
                    layers=layers or 3,
                    seed=seed,
                    device=device,
                    progress=lambda e, n, *_: progress(e, n),
                ),
            )
        else:
            report = _with_progress(
                f"training {skill}",
                lambda progress: training.train(
                    path,
                    out,
                    skill,
                    epochs=epochs,
                    batch_size=batch_size,
                    chunk=chunk,
                    head=head,
                    hidden=hidden,
                    layers=layers,
                    images=images,
                    seed=seed,
                    device=device,
                    progress=lambda e, n, *_: progress(e, n),
                ),
            )
    except (DatasetError, ValueError, OSError) as exc:
        fail(str(exc), code=2)
    result = {
        "checkpoint": str(report.checkpoint),
        "loss_curve": str(report.curve) if report.curve else None,
        "epochs": report.epochs,
        "best_epoch": report.best_epoch,
        "train_loss": round(report.train_loss[-1], 5),
        "val_loss": round(report.val_loss[report.best_epoch - 1], 5),
        "train_episodes": report.train_episodes,
        "val_episodes": report.val_episodes,
        "samples": report.samples,
        "seconds": round(report.seconds, 1),
        "device": device,
        "head": head,
        "images": images,
    }
    if skill == MULTI_TASK:
        result["skills"] = skills.split(",")
    if as_json:
        print_json(result)
        return
    print(
        f"trained {skill} ({head} head) on {report.train_episodes} demos "
        f"({report.samples} samples, {report.val_episodes} held out) in {report.seconds:.0f} s: "
        f"validation loss {result['val_loss']:.4f} at epoch {report.best_epoch}/{report.epochs} "
        f"→ {report.checkpoint} (curve {report.curve})"
    )


@app.command("eval")
def evaluate(
    skill: Annotated[str, typer.Argument(help="Skill the policy implements (grasp, place, pour).")],
    policy: Annotated[Path, typer.Option(help="Checkpoint written by skillstack train.")],
    episodes: Annotated[int, typer.Option(min=1, help="Held-out scenes.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the held-out scenes.")] = 0,
    jobs: Jobs = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Success rate of a learned skill on held-out scenes, with the scripted skill's beside."""
    from skillstack.skills.parallel import ExecutorUnavailable
    from skillstack.skills.training import evaluate as evaluating
    from skillstack.skills.training.policy import PolicyError

    config = executor_config(executor, jobs, ray_address)
    try:
        result = _with_progress(
            f"{skill} episodes (learned and scripted)",
            lambda progress: evaluating.evaluate(
                policy,
                skill,
                episodes,
                seed,
                jobs,
                progress,
                executor=config.executor,
                ray_address=config.ray_address,
            ),
        )
    except (PolicyError, ValueError) as exc:
        fail(str(exc), code=2)
    except ExecutorUnavailable as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    lo, hi = result["ci95"]
    slo, shi = result["scripted_ci95"]
    print(
        f"{skill} on {result['episodes']} held-out scenes: learned "
        f"{result['success_rate']:.0%} (95 % CI {lo:.0%}–{hi:.0%}), scripted "
        f"{result['scripted_success_rate']:.0%} ({slo:.0%}–{shi:.0%}); "
        f"learned failures {result['failures'] or 'none'}"
    )


@app.command()
def dagger(
    skill: Annotated[str, typer.Argument(help="Skill the policy implements (grasp, place, pour).")],
    policy: Annotated[Path, typer.Option(help="Checkpoint to roll out (skillstack train).")],
    data: Annotated[Path, typer.Option(help="Its demonstrations (a file or a folder).")],
    out: Annotated[Path, typer.Option(help="Folder for the aggregated dataset and policy.")],
    rollouts: Annotated[int, typer.Option(min=1, help="Rollout scenes per round.")] = 100,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="DAgger rounds.")] = 1,
    every: Annotated[
        float, typer.Option(min=0.05, max=60.0, help="Seconds between labelled states.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the rollout scenes.")] = 0,
    random_starts: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="As for collect: random hand starts.")
    ] = 0.0,
    after_place: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="As for collect: starts after a place.")
    ] = 0.0,
    jobs: Jobs = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """DAgger: roll the policy out, let the scripted expert label the states it reached,
    retrain on demonstrations and labels together (measure it with skillstack eval)."""
    from skillstack.skills.parallel import ExecutorUnavailable
    from skillstack.skills.training import dagger as dagging
    from skillstack.skills.training.dataset import DatasetError
    from skillstack.skills.training.policy import PolicyError

    config = executor_config(executor, jobs, ray_address)
    try:
        model_skill = _policy_skill(policy)
        if model_skill != skill:
            raise PolicyError(f"{policy}: a policy for skill {model_skill!r}, not {skill!r}")
        report = _with_progress(
            f"{skill} rollouts",
            lambda progress: dagging.dagger(
                policy,
                data,
                out,
                rollouts=rollouts,
                rounds=rounds,
                every_s=every,
                seed=seed,
                random_starts=random_starts,
                after_place=after_place,
                jobs=jobs,
                executor=config.executor,
                ray_address=config.ray_address,
                progress=lambda stage, done, total: progress(done, total, stage),
            ),
        )
    except (PolicyError, DatasetError, ValueError, OSError) as exc:
        fail(str(exc), code=2)
    except ExecutorUnavailable as exc:
        fail(str(exc))
    result = {
        "skill": skill,
        "rounds": [
            {
                "policy": r.policy,
                "rollouts": r.rollouts,
                "rollout_success_rate": r.rollout_success_rate,
                "labelled_states": r.labelled_states,
                "added_demos": r.added,
                "dataset": str(r.dataset),
                "checkpoint": str(r.checkpoint),
                "train_seconds": r.train_seconds,
            }
            for r in report.rounds
        ],
        "checkpoint": str(report.rounds[-1].checkpoint),
        "seconds": report.seconds,
    }
    if as_json:
        print_json(result)
        return
    for i, r in enumerate(report.rounds, 1):
        print(
            f"round {i}: {r.policy} succeeded on {r.rollout_success_rate:.0%} of {r.rollouts} "
            f"rollouts; the expert labelled {r.labelled_states} states ({r.added} successful "
            f"continuations added) → {r.dataset}, retrained → {r.checkpoint}"
        )
    print(f"measure it: skillstack eval {skill} --policy {result['checkpoint']} --json")


def _policy_skill(policy: Path) -> str:
    from skillstack.skills.training.policy import load_policy

    return load_policy(policy).config.skill
