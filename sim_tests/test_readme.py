"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_tap_skill_example_is_complete_and_runs(capsys):
    blocks = python_blocks()
    skill_code = next(b for b in blocks if "class Tap(Skill)" in b)
    run_code = next(b for b in blocks if "execute(Tap()" in b)
    assert len(skill_code.strip().splitlines()) < 50
    namespace: dict = {}
    # dont_inherit: this module's `from __future__ import annotations` must not apply.
    exec(compile(skill_code + run_code, "README.md", "exec", dont_inherit=True), namespace)
    out = capsys.readouterr().out
    assert "'success': True" in out and "'skill': 'tap'" in out
    from skillstack.skills.registry import all_skills

    assert "tap" in all_skills()


def test_the_hal_example_runs():
    hal = next(b for b in python_blocks() if 'JointCommand("joint_position"' in b)
    exec(compile(hal, "README.md", "exec"), {})
