# Over 400 lines: one suite per input fault of issue 17 (files, words, commands, datasets).
"""Input fault injection (issue 17): hostile scene files, instructions, command lines and
datasets, and whether each is answered quickly, boundedly and before anything moves.

`run` returns one entry per criterion::

    {"fault": str, "criterion": str, "trials": int, "worst": float, "limit": float,
     "unit": str, "passed": bool}

``worst`` is the worst value over the ``trials`` (seconds, bytes, or a count of cases that
went wrong) and ``passed`` is ``worst <= limit``. ``small=True`` runs a reduced corpus in
well under 20 s; the full corpus is larger and seeded by ``seed``.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skillstack.robot.faults import fault_entry
from skillstack.robot.scene import Scene, SceneObject, Table, find_problems, scene_from_dict
from skillstack.robot.scene.fuzz import alias_bomb, answer_corpus, interpenetration_missed

MAX_ERROR_BYTES = 4096  # error text allowed for any one hostile input
MAX_FILE_SECONDS = 2.0  # time allowed to answer one scene file of at most 1 MB
MAX_VALIDATION_SECONDS = 5.0  # time allowed for find_problems on thousands of objects


def _entry(fault: str, criterion: str, trials: int, worst: float, limit: float, unit: str):
    return fault_entry(fault, criterion, trials, worst, limit, unit)


# ----------------------------------------------------------------------------- scene files


def scene_file_faults(small: bool, seed: int) -> list[dict]:
    """Time, error bytes and crashes of `load_scene` over the adversarial corpus."""
    with tempfile.TemporaryDirectory() as folder:
        answers = answer_corpus(Path(folder), small, seed)
    n = len(answers)
    return [
        _entry(
            "scene file",
            "seconds to answer one file of at most 1 MB (alias bombs, deep nesting, 1 MB of "
            "objects, huge numbers, NaN, unicode, mutations)",
            n,
            max(a.seconds for a in answers),
            MAX_FILE_SECONDS,
            "s",
        ),
        _entry(
            "scene file",
            "bytes of error text for one file",
            n,
            max(a.error_bytes for a in answers),
            MAX_ERROR_BYTES,
            "bytes",
        ),
        _entry(
            "scene file",
            "files answered with an exception other than SceneError",
            n,
            sum(bool(a.crash) for a in answers),
            0,
            "files",
        ),
    ]


def _layouts(n: int, rng: random.Random) -> dict[str, list[SceneObject]]:
    size = (0.03, 0.03, 0.03)

    def box(i: int, x: float, y: float, z: float = 0.0) -> SceneObject:
        return SceneObject(f"o{i}", "box", size, (x, y, z))

    return {
        "random": [box(i, rng.uniform(0, 0.9), rng.uniform(-0.6, 0.6)) for i in range(n)],
        "grid": [box(i, 0.2 + 0.035 * (i % 20), -0.5 + 0.035 * (i // 20)) for i in range(n)],
        "piled": [box(i, 0.5, 0.0) for i in range(n)],
        "tower": [box(i, 0.5, 0.0, 0.03 * i) for i in range(n)],
        "floating": [box(i, 0.5, 0.0, 0.1) for i in range(n)],
    }


def validation_scale_faults(small: bool, seed: int) -> list[dict]:
    """Seconds `find_problems` takes on thousands of objects in several layouts."""
    n = 2000 if small else 4000
    worst = 0.0
    layouts = _layouts(n, random.Random(seed))
    for objects in layouts.values():
        start = time.perf_counter()
        find_problems(Scene(Table(), tuple(objects)))
        worst = max(worst, time.perf_counter() - start)
    return [
        _entry(
            "scene validation",
            f"seconds of find_problems on {n:,} objects (random, grid, piled, tower, floating)",
            len(layouts),
            worst,
            MAX_VALIDATION_SECONDS,
            "s",
        )
    ]


def interpenetration_faults(small: bool, seed: int) -> list[dict]:
    """Scenes with objects spawned inside one another that are not reported naming both."""
    n = 30 if small else 300
    missed = interpenetration_missed(random.Random(seed), n)
    return [
        _entry(
            "interpenetration at spawn",
            "scenes whose interpenetrating pair is not reported at load naming both objects",
            n,
            len(missed),
            0,
            "scenes",
        )
    ]


# ----------------------------------------------------------------------------- language


def _world(objects: list[dict]):
    from skillstack.skills.declared import scene_world

    return scene_world(scene_from_dict({"name": "words", "objects": objects}))


def _thing(name: str, kind: str, color: str, x: float, y: float) -> dict:
    size = {"box": [0.05] * 3, "plate": [0.18, 0.015], "bowl": [0.16, 0.06], "cup": [0.07, 0.09]}
    return {"name": name, "kind": kind, "color": color, "size": size[kind], "pose": [x, y]}


def hijack_cases() -> list[tuple[list[dict], str, str | tuple[str, ...]]]:
    """(scene objects, instruction, the one object it must resolve to; or the candidates a
    refusal as ambiguous must name)."""
    plate_box = _thing("plate", "box", "red", 0.5, 0.0)
    dish = _thing("dish1", "plate", "yellow", 0.65, 0.0)
    cup = _thing("cup", "cup", "blue", 0.45, 0.2)
    red_box = _thing("red", "box", "green", 0.5, 0.0)
    apple = _thing("apple", "box", "red", 0.5, -0.25)
    yellow_plate_box = _thing("plate", "box", "yellow", 0.5, 0)
    return [
        ([plate_box, dish, cup], "put the cup on the plate", ("plate", "dish1")),
        ([plate_box, cup], "put the cup on the plate", ("plate",)),
        ([plate_box, dish, cup], "pick up the plate", ("plate", "dish1")),
        ([yellow_plate_box, dish, cup], "put the cup on the yellow plate", ("plate", "dish1")),
        ([plate_box, dish, cup], "put the cup on the yellow plate", "dish1"),
        ([plate_box, dish, cup], "put the cup on the dish1", "dish1"),
        ([red_box, apple, cup], "pick up red", ("red", "apple")),
        ([_thing("bowl", "cup", "white", 0.45, -0.2), cup], "pick up the bowl", ("bowl",)),
        ([_thing("cups", "box", "red", 0.5, 0.0), cup], "pick up cups", ("cups", "cup")),
        ([_thing("table", "box", "red", 0.5, 0.0), cup], "put the cup on the table", ("table",)),
        ([_thing("plate", "plate", "yellow", 0.65, 0.0), cup], "put the cup on the plate", "plate"),
        ([_thing("cup", "cup", "blue", 0.45, 0.2), apple], "pick up the cup", "cup"),
    ]


def random_hijack_cases(rng: random.Random, n: int) -> list[tuple[list[dict], str, Any]]:
    """``n`` seeded scenes where one object is named with a kind or colour word, and the
    instruction that uses the word. The expectation is computed here, independently of the
    grammar: the word resolves to the named object only when, read as a description, it
    describes that object and no other; otherwise it must be refused naming the candidates.
    """
    from skillstack.planners.language import KIND_WORDS
    from skillstack.robot.scene import COLORS

    kinds = ["box", "plate", "bowl", "cup"]
    spots = [(0.45, 0.25), (0.45, -0.25), (0.65, 0.2), (0.65, -0.2), (0.55, 0.0)]
    words = [w for w, k in KIND_WORDS.items() if k in kinds and not w.endswith("s")]
    out = []
    for _ in range(n):
        word = rng.choice([*words, "red", "blue", "green"])
        count = rng.randint(1, 4)
        objects = [
            _thing(
                word if i == 0 else f"thing{i}",
                rng.choice(kinds),
                rng.choice(["red", "blue", "green"]),
                *spots[i],
            )
            for i in range(count)
        ]
        if word in COLORS:
            fits = [o for o in objects if o["color"] == word]
        else:
            fits = [o for o in objects if o["kind"] == KIND_WORDS[word]]
        named = objects[0]
        if fits == [named]:
            expected: Any = word
        else:
            expected = tuple(o["name"] for o in [named, *[o for o in fits if o is not named]])
        out.append((objects, f"pick up the {word}", expected))
    return out


def hijack_faults(small: bool, seed: int) -> list[dict]:
    """Instructions whose object names are also kind or colour words: resolved to the wrong
    object, resolved where they are ambiguous, or refused without naming the candidates (or
    on more than one line) count as wrong."""
    from skillstack.planners.language import InstructionError, parse_instruction

    wrong = 0
    cases = hijack_cases() + random_hijack_cases(random.Random(seed), 0 if small else 200)
    for objects, text, expected in cases:
        world = _world(objects)
        try:
            goals = [g for clause in parse_instruction(text, world) for g in clause.goals]
        except InstructionError as exc:
            message = str(exc)
            named = isinstance(expected, tuple) and all(f" {n}" in message for n in expected)
            wrong += not (named and "ambiguous" in message and "\n" not in message)
            continue
        targets = {g[-1] if g[0] in ("on", "in") else g[1] for g in goals}
        wrong += targets != {expected}
    return [
        _entry(
            "kind word hijack",
            "instructions naming an object whose name is another object's kind word (or its "
            "own wrong kind) resolved without refusal, or refused without the candidates",
            len(cases),
            wrong,
            0,
            "instructions",
        )
    ]


def instruction_text_faults(small: bool, seed: int) -> list[dict]:
    """Bytes of error text for hostile instructions (huge, unicode, control characters)."""
    from skillstack.planners.language import InstructionError, parse_instruction
    from skillstack.skills.declared import scene_world

    rng = random.Random(seed)
    world = scene_world(scene_from_dict({"objects": _default_objects()}))
    texts = [
        "",
        " " * 10_000,
        "x" * 1_000_000,
        "pick up " + "the red cube " * 80,
        "put the " + "zorb " * 190 + "on the plate",
        "pick up \u202e\U0001f600\x00\x1b[31m",
        "push the cube left by 1e308 m",
        "then then then ; ; ;",
    ]
    words = ["pick", "up", "put", "on", "the", "cube", "red", "zz", "then", "\u00e9", "plate"]
    texts += [
        " ".join(rng.choice(words) for _ in range(rng.randint(1, 300)))
        for _ in range(40 if small else 400)
    ]
    worst = 0.0
    for text in texts:
        try:
            parse_instruction(text, world)
        except InstructionError as exc:
            worst = max(worst, len(str(exc).encode()))
        except Exception:
            worst = math.inf
    return [
        _entry(
            "instruction text",
            "bytes of error text for one hostile instruction (1 MB, unicode, control chars)",
            len(texts),
            worst,
            MAX_ERROR_BYTES,
            "bytes",
        )
    ]


def _default_objects() -> list[dict]:
    from skillstack.robot.scene import default_scene

    return default_scene().to_dict()["objects"]


# ----------------------------------------------------------------------------- command line


def _cli_cases(folder: Path) -> list[tuple[list[str], str]]:
    """(arguments, text the one-line error must contain) of hostile command lines."""
    bomb = folder / "bomb.yaml"
    bomb.write_text(alias_bomb(9, 9))
    long_path = "/tmp/" + "d" * 5000 + "/x.mp4"
    return [
        (["do", ""], "empty skill call"),
        (["do", "   "], "empty skill call"),
        (["do", "grasp object=["], "invalid YAML"),
        (["do", "grasp object={a: [1, 2"], "invalid YAML"),
        (["do", "grasp object=&a[*a,*a]"], "parameter 'object'"),
        (["do", "grasp object=cube object=cup"], "given twice"),
        (["do", "grasp " + "x=1 " * 2000], "characters"),
        (["do", "home", "--video", str(folder)], "--video"),
        (["do", "home", "--video", str(folder / "x.avi")], ".mp4"),
        (["do", "home", "--video", str(bomb / "x.mp4")], "not a folder"),
        (["do", "home", "--video", long_path], "--video"),
        (["do", "home", "--scene", str(bomb)], "aliases"),
        (["do", "home", "--scene", "x" * 5000 + ".yaml"], "scene"),
        (["run", ""], "instruction is empty"),
        (["run", "pick up " + "x" * 20_000], "characters"),
        (["run", "home", "--video", str(folder / "v.txt")], ".mp4"),
        (["sim", "--video", str(folder)], "--video"),
        (["train", "grasp", "--data", str(bomb), "--out", str(folder / "p.pt")], "error"),
    ]


def _invoke(args: list[str]) -> tuple[int, str, str, BaseException | None]:
    from typer.testing import CliRunner

    from skillstack.planners.cli import app

    result = CliRunner().invoke(app, args)
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, result.stderr, exc


def _no_steps(stdout: str) -> bool:
    """Nothing, or (``--json``) the one error object: no step ran."""
    if not stdout.strip():
        return True
    try:
        out = json.loads(stdout)
    except ValueError:
        return False
    return isinstance(out, dict) and out.get("success") is False and "steps" not in out


def cli_faults(small: bool, seed: int) -> list[dict]:
    """Hostile command lines: each must exit non-zero with exactly one short error line and
    no traceback; a multi-call ``do`` with a bad later call must stop before any motion."""
    bad, worst_bytes = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = _cli_cases(folder)
        for args, expected in cases:
            code, _, stderr, exc = _invoke(args)
            lines = [line for line in stderr.splitlines() if line.strip()]
            worst_bytes = max(worst_bytes, len(stderr.encode()))
            ok = exc is None and code != 0 and len(lines) == 1 and expected in lines[0]
            bad += not ok
        multi = [
            ["do", "grasp object=cube", "place object=cube target=ghost", "home", "--json"],
            ["do", "home", "grasp object=cube lift=[1,2]", "--json"],
            ["do", "grasp object=cube", "release", "pour source=cube target=bowl", "--json"],
        ]
        moved = 0
        for args in multi[: 1 if small else None]:
            code, stdout, stderr, exc = _invoke(args)
            refused = exc is None and code == 2 and "nothing moved" in stderr
            moved += not (refused and _no_steps(stdout))
    return [
        _entry(
            "command line",
            "hostile command lines answered with a traceback, not exactly one error line, "
            "exit 0, or the wrong reason",
            len(cases),
            bad,
            0,
            "commands",
        ),
        _entry(
            "command line",
            "bytes of error text for one hostile command line",
            len(cases),
            worst_bytes,
            MAX_ERROR_BYTES,
            "bytes",
        ),
        _entry(
            "multi-call do",
            "multi-call do with a bad later call not refused before the arm moved",
            len(multi[: 1 if small else None]),
            moved,
            0,
            "commands",
        ),
    ]


# ----------------------------------------------------------------------------- datasets


def dataset_faults(small: bool, seed: int) -> list[dict]:
    """Datasets with NaN or infinity in one array of one demo: refused by `open_dataset`
    (which `skillstack train` uses) naming that demo and key, else counted as missed."""
    import h5py
    import numpy as np

    from skillstack.skills.training.dataset import OBS_KEYS, DatasetError, write_dataset
    from skillstack.skills.training.dataset_reader import open_dataset

    rng = np.random.default_rng(seed)
    keys = [*(f"obs/{k}" for k in OBS_KEYS), "actions", "joint_targets", "rewards"]
    trials = len(keys) if small else 3 * len(keys)
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        clean = write_dataset(
            Path(tmp) / "clean.hdf5", "grasp", [_episode(rng, i) for i in range(3)], rate_hz=20
        )
        for t in range(trials):
            key, demo = keys[t % len(keys)], f"demo_{int(rng.integers(3))}"
            path = Path(tmp) / f"bad{t}.hdf5"
            path.write_bytes(clean.read_bytes())
            with h5py.File(path, "a") as h5:
                values = h5[f"data/{demo}/{key}"][()]
                flat = values.reshape(-1)
                flat[int(rng.integers(flat.size))] = rng.choice([np.nan, np.inf, -np.inf])
                h5[f"data/{demo}/{key}"][...] = flat.reshape(values.shape)
            try:
                open_dataset(path, "grasp")
            except DatasetError as exc:
                message = str(exc)
                if f"{demo}: {key}" in message and len(message.encode()) <= MAX_ERROR_BYTES:
                    continue
            missed += 1
    return [
        _entry(
            "dataset non-finite values",
            "datasets with NaN/inf not refused naming the demo and key",
            trials,
            missed,
            0,
            "datasets",
        )
    ]


def _episode(rng: Any, seed: int):
    import numpy as np

    from skillstack.skills.training.dataset import OBS_KEYS, Episode, actions_from_path

    n = 6
    obs = {k: rng.normal(size=(n, d)) for k, d in OBS_KEYS.items()}
    quat = rng.normal(size=(n, 4))
    obs["robot0_eef_quat"] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    actions = actions_from_path(obs["robot0_eef_pos"], obs["robot0_eef_quat"], rng.random(n))
    rewards, dones = np.zeros(n), np.zeros(n)
    rewards[-1], dones[-1] = 1.0, 1
    return Episode(obs, actions, rng.normal(size=(n, 7)), rewards, dones, True, seed, {})


# ----------------------------------------------------------------------------- all

SUITES: tuple[Callable[[bool, int], list[dict]], ...] = (
    scene_file_faults,
    validation_scale_faults,
    interpenetration_faults,
    hijack_faults,
    instruction_text_faults,
    cli_faults,
    dataset_faults,
)


def run(small: bool = False, seed: int = 0) -> list[dict]:
    """Inject every input fault of issue 17; one entry per criterion (see the module doc).

    Args:
        small: the reduced corpus (well under 20 s) instead of the full one.
        seed: seed of the random parts of the corpus (mutated files, layouts, datasets).

    Returns:
        Entries with exactly the keys fault, criterion, trials, worst, limit, unit, passed.
    """
    return [entry for suite in SUITES for entry in suite(small, seed)]


if __name__ == "__main__":  # pragma: no cover - a quick look at the figures
    import json
    import sys

    for row in run(small="--small" in sys.argv):
        print(json.dumps(row))
