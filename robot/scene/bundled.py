"""The scene files that ship with skillstack, found by name from any working directory.

``find_scene("pour")`` is ``assets/scenes/pour.yaml`` inside the installed package; a path to
an existing file is returned as it is.
"""

from __future__ import annotations

from pathlib import Path

SCENE_SUFFIXES = (".yaml", ".yml", ".json")
MAX_SHOWN = 200  # characters of a missing name echoed in an error


def bundled_scenes_dir() -> Path:
    """The folder of the bundled scene files (``assets/scenes`` in the package)."""
    from skillstack import assets

    return Path(assets.__file__).resolve().parent / "scenes"


def bundled_scene_names() -> list[str]:
    """Names (file stems) of the bundled scene files."""
    return sorted(p.stem for p in bundled_scenes_dir().iterdir() if p.suffix in SCENE_SUFFIXES)


def find_scene(value: str | Path) -> Path:
    """A scene file: ``value`` itself when it is a file, else the bundled scene of that name
    (``workcell`` -> ``assets/scenes/workcell.yaml``); `FileNotFoundError` naming both."""
    text = str(value)
    path = Path(text)
    if path.is_file():
        return path
    if path.suffix.lower() not in SCENE_SUFFIXES and path.name == text:
        for suffix in SCENE_SUFFIXES:
            candidate = bundled_scenes_dir() / f"{text}{suffix}"
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"no scene file {text[:MAX_SHOWN]!r} and no bundled scene of that name; "
        f"bundled scenes: {', '.join(bundled_scene_names())}"
    )
