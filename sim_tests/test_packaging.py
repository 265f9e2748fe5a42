"""One import namespace: the folders install as ``skillstack.*`` and collide with nothing.

The wheel is built from this checkout and read as an installer would: its only top-level
names are ``skillstack`` and its metadata, so installing Robot Framework (``robot``) or
PyPI's ``skills``, ``planners`` or ``hw`` beside it can neither overwrite nor delete a file
of ours. Then the installed package is imported with decoy top-level ``robot``, ``skills``,
``planners`` and ``hw`` packages first on the path, as those distributions would put them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from run_cli import skillstack

ROOT = Path(__file__).resolve().parent.parent
COLLIDING = ("robot", "skills", "planners", "hw", "assets")


def test_every_folder_with_an_init_is_a_listed_package():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {"skillstack"} | {
        "skillstack." + ".".join(p.parent.relative_to(ROOT).parts)
        for folder in COLLIDING
        for p in (ROOT / folder).rglob("__init__.py")
    }
    assert listed == on_disk


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: setuptools writes build/ next to what it builds
    skip = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "*.mp4")
    shutil.copytree(ROOT, source, ignore=skip)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (path,) = out.glob("skillstack-*.whl")
    return path


def test_the_wheel_holds_one_top_level_package_and_the_bundled_scenes(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"skillstack"}
    assert "skillstack/__main__.py" in names
    assert "skillstack/robot/types.py" in names
    assert {"skillstack/assets/scenes/pour.yaml", "skillstack/assets/scenes/workcell.yaml"} <= set(
        names
    )
    assert not any(n.startswith("skillstack/sim_tests/") for n in names)


def test_the_wheel_declares_its_license_and_pins_no_exact_torch(wheel):
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    text = archive.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
    # A library must install beside CUDA builds of torch (lerobot, robomimic): a lower bound.
    (torch,) = [line for line in text.splitlines() if line.startswith("Requires-Dist: torch")]
    assert ">=" in torch and "==" not in torch


def test_the_installed_wheel_imports_past_colliding_packages_and_finds_scenes_by_name(
    wheel, tmp_path
):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    decoys = tmp_path / "decoys"
    for name in COLLIDING:  # what robotframework, skills, planners, hw would install
        (decoys / name).mkdir(parents=True)
        (decoys / name / "__init__.py").write_text(f"raise ImportError('decoy {name}')\n")
    probe = (
        "import skillstack, skillstack.planners.cli\n"
        "from skillstack.robot.scene.bundled import find_scene\n"
        "from skillstack.robot.scene import load_scene\n"
        "print(skillstack.__file__)\n"
        "print(len(load_scene(find_scene('pour')).objects))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # not the checkout: nothing to import by accident
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(decoys), str(site)])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    where, objects = result.stdout.split()
    assert Path(where).is_relative_to(site) and int(objects) > 0


def test_version_from_the_command_and_from_python_m():
    from skillstack import __version__

    assert skillstack("--version").stdout.strip() == f"skillstack {__version__}"
    result = subprocess.run(
        [sys.executable, "-m", "skillstack", "--version"], capture_output=True, text=True
    )
    assert result.stdout.strip() == f"skillstack {__version__}"
