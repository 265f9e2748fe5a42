"""Running the command-line tool in tests exactly as a user would: a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def skillstack(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``skillstack ARGS`` from the repository root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "skillstack", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
