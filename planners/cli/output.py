"""What a command prints on stdout under ``--json``: exactly one object, errors included."""

from __future__ import annotations

import json
import sys

try:  # typer 0.2x carries its own copy of click: its exceptions and contexts are those
    from typer._click import exceptions as click_exceptions
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]  # noqa: F401
    from click import get_current_context  # type: ignore[no-redef]

MAX_ERROR_CHARS = 2000  # an error line is cut here, whatever input it quotes


def one_line_bounded(message: object, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Output:
    """What this command printed on stdout: ``--json`` prints exactly one object."""

    json_printed = False


def new_invocation() -> None:
    """Forget what an earlier command in this process printed (one app, many invocations)."""
    _Output.json_printed = False


def print_json(obj: object) -> None:
    """Print the command's one JSON object on stdout."""
    _Output.json_printed = True
    print(json.dumps(obj))


def json_requested() -> bool:
    """Whether the running command was given ``--json`` (parsed or, before parsing, typed)."""
    ctx = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return "--json" in sys.argv[1:]


def json_error(message: str, code: int) -> None:
    """Under ``--json``, the error as the command's one object (unless it printed one)."""
    if json_requested() and not _Output.json_printed:
        print_json({"success": False, "error": one_line_bounded(message), "exit_code": code})
