# ruff: noqa: E501  (the corpus is data: one hostile file per line reads best)
"""An adversarial corpus of scene files, and how `load_scene` answers it.

`corpus` builds seeded hostile files (YAML alias bombs, deep nesting, a megabyte of objects,
huge and non-finite numbers, unicode and control characters, long strings, unknown keys,
wrong types, Python tags, random byte mutations of a valid scene); `answer_corpus` loads each
one and measures the time and the bytes of error text; `interpenetration_cases` are scenes
whose objects would spawn inside one another. `planners.faults_input` turns these into the
issue-17 figures.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from skillstack.robot.scene.io import load_scene, scene_from_dict
from skillstack.robot.scene.model import MAX_SCENE_BYTES, SceneError

VALID = """name: fuzz base
objects:
  - {name: cube, kind: box, color: red, size: [0.05, 0.05, 0.05], pose: [0.5, 0.0]}
  - {name: cup, kind: cup, color: blue, size: [0.07, 0.09], pose: [0.45, 0.2], contents: 20}
  - {name: bowl, kind: bowl, color: white, size: [0.16, 0.06], pose: {xyz: [0.45, -0.2]}}
  - {name: plate, kind: plate, color: yellow, size: [0.18, 0.015], pose: [0.65, 0.0, 0, 0.3]}
"""


@dataclass(frozen=True)
class Answer:
    """How `load_scene` answered one file."""

    name: str
    size: int  # bytes of the file
    seconds: float
    error_bytes: int  # bytes of the SceneError's text (0: the scene loaded)
    crash: str  # the type and text of any other exception ("" when none)


def _obj(i: int, x: float, y: float, z: float = 0.0, kind: str = "box") -> str:
    size = "[0.03, 0.03, 0.03]" if kind == "box" else "[0.04, 0.05]"
    return f"  - {{name: o{i}, kind: {kind}, size: {size}, pose: [{x:.4f}, {y:.4f}, {z:.4f}]}}\n"


def alias_bomb(levels: int, width: int) -> str:
    """The "billion laughs": ``levels`` lists of ``width`` aliases of the one before (a few
    hundred bytes that expand to ``width ** levels`` strings)."""
    names = [chr(ord("a") + k) if k < 26 else f"a{k}" for k in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{','.join(['lol'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"{names[k]}: &{names[k]} [{','.join([f'*{names[k - 1]}'] * width)}]")
    return "\n".join(lines) + f"\nobjects: *{names[-1]}\n"


def _fill(head: str, unit: str, tail: str, limit: int) -> str:
    """``head`` + as many ``unit`` as fit in ``limit`` bytes + ``tail``."""
    n = max(0, (limit - len(head) - len(tail)) // max(1, len(unit.encode())))
    return head + unit * n + tail


def _fixed(rng: random.Random, small: bool) -> Iterator[tuple[str, str | bytes]]:
    mb = MAX_SCENE_BYTES
    yield "alias_bomb.yaml", alias_bomb(9, 9)
    yield "alias_bomb_wide.yaml", alias_bomb(6, 30)
    yield "alias_recursive.yaml", "objects: &a [*a]\n"
    yield "merge_bomb.yaml", "b: &b {kind: box}\nobjects: [{<<: *b, name: a}]\n"
    yield "deep_flow.yaml", "objects: " + "[" * 5000
    yield "deep_block.yaml", "objects:\n" + "".join("  " * i + "- \n" for i in range(400))
    yield "deep_map.yaml", "objects: " + "{a: " * 3000 + "1" + "}" * 3000
    yield "deep.json", '{"objects": ' + "[" * 50000 + "]" * 50000 + "}"
    yield (
        "big_int.yaml",
        "objects: [{name: a, kind: box, size: [" + "9" * 5000 + ", 1, 1], pose: [0.5, 0]}]",
    )
    yield (
        "big_int.json",
        '{"objects": [{"name": "a", "kind": "box", "size": ['
        + "9" * 5000
        + ', 1, 1], "pose": [0.5, 0]}]}',
    )
    yield (
        "big_int_4000.yaml",
        "objects: [{name: a, kind: cup, size: [0.07, 0.09], pose: [0.5, 0], contents: "
        + "9" * 4000
        + "}]",
    )
    yield (
        "big_float.yaml",
        "objects: [{name: a, kind: box, size: [1e999, -1e999, 1e-999], pose: [1e308, 1e308], mass: 1e400}]",
    )
    yield (
        "nan.yaml",
        "objects: [{name: a, kind: box, size: [.nan, .inf, -.inf], pose: [.nan, .nan, .nan, .inf], mass: .nan, friction: .nan}]",
    )
    yield (
        "nan.json",
        '{"objects": [{"name": "a", "kind": "box", "size": [NaN, Infinity, 1], "pose": [NaN, 0], "mass": -Infinity}]}',
    )
    yield (
        "nan_table.yaml",
        "table: {size: [.nan, .inf], center: [.nan, 0], height: -.inf, friction: .nan}\n",
    )
    yield (
        "contents_inf.json",
        '{"objects": [{"name": "a", "kind": "cup", "size": [0.07, 0.09], "pose": [0.5, 0], "contents": 1e999}]}',
    )
    yield (
        "unicode_names.yaml",
        'objects:\n  - {name: "\u202e\u0645\u0631\u062d\u0628\u0627\U0001f600", kind: "\U0001f4a3", size: [0.05, 0.05, 0.05], pose: [0.5, 0]}\n  - {name: "caf\u00e9\u0301", kind: box, size: [0.05, 0.05, 0.05], pose: [0.5, 0.2]}\n',
    )
    yield (
        "control_chars.yaml",
        'objects: [{name: "a\\0b\\x07\\x1b[31m", kind: box, size: [0.05, 0.05, 0.05], pose: [0.5, 0]}]',
    )
    yield "nul_byte.yaml", "objects: [{name: a\x00b}]"
    yield "bad_utf8.yaml", b"objects: [{name: \xff\xfe\xfd, kind: box}]\n"
    yield "bom.yaml", "\ufeff" + VALID
    yield "utf16.json", '{"objects": []}'.encode("utf-16")
    yield "empty.yaml", ""
    yield "blank.yaml", "   \n\n  \t\n"
    yield "null.json", "null"
    yield "scalar.yaml", "just a string"
    yield "list_top.yaml", "- 1\n- 2\n"
    yield "multi_doc.yaml", VALID + "---\n" + VALID
    yield "python_tag.yaml", "!!python/object/apply:os.system ['echo pwned']\n"
    yield "binary_tag.yaml", "objects: [{name: a, kind: !!binary " + "QUFB" * 20000 + "}]"
    yield "set_tag.yaml", "objects: !!set {a, b, c}\n"
    yield (
        "timestamp.yaml",
        "objects: [{name: 2001-12-14t21:59:43.10-05:00, kind: box, size: [0.05, 0.05, 0.05], pose: [0.5, 0]}]",
    )
    yield "unhashable_key.yaml", "objects: [{? [a, b]: 1}]"
    yield (
        "bad_syntax.yaml",
        "objects: [{name: a, kind: box, size: [0.05, 0.05, 0.05], pose: [0.5, 0]",
    )
    yield "bad_syntax.json", '{"objects": [{"name": "a",,}]}'
    yield "wrong_types.yaml", "name: [1, 2]\ntable: 5\nobjects: {a: 1}\n"
    yield (
        "wrong_object_types.yaml",
        "objects: [1, null, [], {name: 5, kind: [], size: x, pose: {}, color: 7, mass: yes, friction: [], contents: 1.5}]",
    )
    yield "unknown_keys.yaml", "objects: [{" + ", ".join(f"k{i}: 1" for i in range(3000)) + "}]"
    yield "long_name.yaml", _fill("name: ", "x", "\n", mb - 10)
    yield (
        "long_kind.yaml",
        _fill("objects: [{name: a, kind: ", "k", ", size: [1, 1], pose: [0, 0]}]", mb - 10),
    )
    yield (
        "long_color.yaml",
        _fill(
            "objects: [{name: a, kind: box, size: [0.05, 0.05, 0.05], pose: [0.5, 0], color: ",
            "r",
            "}]",
            mb - 10,
        ),
    )
    yield (
        "long_size_list.yaml",
        _fill("objects: [{name: a, kind: box, pose: [0.5, 0], size: [", "0.1, ", "0.1]}]", mb - 10),
    )
    yield (
        "long_size_list.json",
        _fill(
            '{"objects": [{"name": "a", "kind": "box", "pose": [0.5, 0], "size": [',
            "0.1,",
            "0.1]}]}",
            mb - 10,
        ),
    )
    yield "meg_objects.yaml", _fill("objects:\n", _obj(0, 0.5, 0.0), "", mb - 10)
    yield (
        "meg_objects_flow.yaml",
        _fill(
            "objects: [",
            "{name: a, kind: box, size: [0.03, 0.03, 0.03], pose: [0.5, 0]}, ",
            "]",
            mb - 10,
        ),
    )
    objs = [
        {"name": f"o{i}", "kind": "box", "size": [0.03] * 3, "pose": [0.5, 0.0]}
        for i in range(mb // 70)
    ]
    yield "meg_objects.json", json.dumps({"objects": objs})[: mb - 10]  # cut: also invalid
    yield "meg_objects_ok.json", json.dumps({"objects": objs[: mb // 80]})
    yield "too_big.yaml", _fill("name: big\n# ", "x", "\n", mb + 100)
    # 256 objects (the limit): spread over the reach, piled in one spot, stacked in a tower
    spread = "".join(
        _obj(
            i, rng.uniform(0.0, 0.9), rng.uniform(-0.55, 0.55), kind=rng.choice(["box", "cylinder"])
        )
        for i in range(256)
    )
    yield "limit_spread.yaml", "objects:\n" + spread
    yield "limit_piled.yaml", "objects:\n" + "".join(_obj(i, 0.5, 0.0) for i in range(256))
    yield (
        "limit_tower.yaml",
        "objects:\n" + "".join(_obj(i, 0.5, 0.0, 0.03 * i) for i in range(256)),
    )
    yield "limit_floating.yaml", "objects:\n" + "".join(_obj(i, 0.5, 0.0, 0.1) for i in range(256))
    yield "over_limit.yaml", "objects:\n" + "".join(_obj(i, 0.5, 0.01 * i) for i in range(257))


def _mutations(rng: random.Random, n: int) -> Iterator[tuple[str, str | bytes]]:
    """``n`` random byte-level mutations of `VALID` (flips, insertions, deletions, splices of
    hostile snippets)."""
    snippets = [
        b"&a ",
        b"*a",
        b"[",
        b"{",
        b"]",
        b"}",
        b"!!python/name:os.system ",
        b".nan",
        b"1e999",
        b"\x00",
        b"\xff",
        b"'",
        b'"',
        b"\n  - ",
        b": ",
        b"9" * 500,
        b"<<: *a",
        b"---\n",
        b"\t",
    ]
    base = VALID.encode()
    for k in range(n):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            at = rng.randrange(len(data) + 1)
            if op < 0.3 and data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
            elif op < 0.5 and data:
                del data[at : at + rng.randint(1, 20)]
            else:
                data[at:at] = rng.choice(snippets)
        yield f"mutant_{k}{rng.choice(['.yaml', '.json'])}", bytes(data)


def corpus(small: bool = False, seed: int = 0) -> Iterator[tuple[str, str | bytes]]:
    """(file name, contents) of the adversarial scene files: the fixed hostile cases and
    seeded random mutations (40 when ``small``, else 400)."""
    rng = random.Random(seed)
    yield from _fixed(rng, small)
    yield from _mutations(rng, 40 if small else 400)
    if not small:
        for k in range(20):  # random scenes near the object limit, for validation time
            body = "".join(
                _obj(i, rng.uniform(0.2, 0.8), rng.uniform(-0.5, 0.5), rng.choice([0, 0.03]))
                for i in range(rng.randint(100, 256))
            )
            yield f"random_{k}.yaml", "objects:\n" + body


def answer(path: Path) -> Answer:
    """Load ``path`` with `load_scene`: the time taken and the bytes of error text."""
    size = path.stat().st_size
    start = time.perf_counter()
    error, crash = "", ""
    try:
        load_scene(path)
    except SceneError as exc:
        error = str(exc)
    except Exception as exc:
        crash = f"{type(exc).__name__}: {str(exc)[:200]}"
    seconds = time.perf_counter() - start
    return Answer(path.name, size, seconds, len(error.encode("utf-8", "replace")), crash)


def answer_corpus(folder: Path, small: bool = False, seed: int = 0) -> list[Answer]:
    """Write `corpus` into ``folder`` and `answer` every file that is at most
    `MAX_SCENE_BYTES` (plus those over it, which must be refused as fast)."""
    out = []
    for name, text in corpus(small, seed):
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        out.append(answer(path))
    return out


# ----------------------------------------------------------------------------- interpenetration


def _box(name: str, x: float, y: float, z: float = 0.0, s: float = 0.05, yaw: float = 0.0):
    return {"name": name, "kind": "box", "size": [s, s, s], "pose": [x, y, z, yaw]}


def interpenetration_cases(rng: random.Random, n: int) -> list[tuple[dict, tuple[str, str]]]:
    """``n`` scenes, each with one pair of objects that would spawn inside one another (and
    the pair's names), among a few well-placed others."""
    out = []
    makers = [
        lambda: (_box("a", 0.5, 0.0), _box("b", 0.5 + rng.uniform(-0.04, 0.04), 0.0)),
        lambda: (_box("a", 0.5, 0.0), _box("b", 0.5, 0.0, rng.uniform(0.01, 0.045), 0.03)),
        lambda: (
            _box("a", 0.5, 0.0, yaw=rng.uniform(0, math.pi)),
            _box("b", 0.545, 0.0, yaw=rng.uniform(0, math.pi)),
        ),
        lambda: (
            {"name": "a", "kind": "cup", "size": [0.08, 0.09], "pose": [0.5, 0.0], "contents": 30},
            _box("b", 0.5, 0.0, 0.012, 0.03),
        ),
        lambda: (
            {"name": "a", "kind": "plate", "size": [0.18, 0.015], "pose": [0.5, 0.0]},
            _box("b", 0.5 + rng.uniform(-0.05, 0.05), 0.0, rng.uniform(0.0, 0.012), 0.04),
        ),
        lambda: (
            {"name": "a", "kind": "cylinder", "size": [0.06, 0.08], "pose": [0.5, 0.0]},
            {"name": "b", "kind": "cylinder", "size": [0.05, 0.06], "pose": [0.53, 0.02]},
        ),
    ]
    for k in range(n):
        a, b = makers[k % len(makers)]()
        others = [_box(f"far{i}", 0.3 + 0.1 * i, 0.4) for i in range(rng.randint(0, 3))]
        a["name"], b["name"] = f"obj{k}_a", f"obj{k}_b"
        objects = [*others, a, b] if rng.random() < 0.5 else [b, *others, a]
        out.append(({"name": f"pen {k}", "objects": objects}, (a["name"], b["name"])))
    return out


def interpenetration_missed(rng: random.Random, n: int) -> list[str]:
    """The scenes of `interpenetration_cases` whose pair `scene_from_dict` failed to report
    in one problem naming both objects (empty: all reported)."""
    missed = []
    for data, (a, b) in interpenetration_cases(rng, n):
        try:
            scene_from_dict(data)
        except SceneError as exc:
            if any(f"'{a}'" in p and f"'{b}'" in p for p in exc.problems):
                continue
        missed.append(data["name"])
    return missed
