"""Running the command-line tool in tests exactly as a user would: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def skillstack(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``skillstack ARGS`` from the repository root; output captured as text (``env``: more
    environment variables)."""
    return subprocess.run(
        [sys.executable, "-m", "skillstack", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **env} if env else None,
    )


def json_error(proc: subprocess.CompletedProcess) -> str:
    """The error of a failed ``--json`` command: one ``error:`` line on stderr, and the same
    error as the one JSON object on stdout (``success`` false, the exit code). Returns it."""
    import json

    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: "), proc.stderr[-2000:]
    (out,) = proc.stdout.strip().splitlines()  # exactly one line: one object
    obj = json.loads(out)
    assert obj == {"success": False, "error": obj["error"], "exit_code": proc.returncode}
    assert obj["error"] and obj["error"] in line
    return obj["error"]
