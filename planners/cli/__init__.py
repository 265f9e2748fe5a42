"""The `skillstack` command line: a thin shell over the packages.

Every command exits 0 on success and non-zero with a one-line reason on failure or bad
input; ``--json`` prints exactly one JSON object on stdout (logs go to stderr). One module
per group of commands; they register themselves on the shared `app`.
"""

from __future__ import annotations

import sys

import typer

from skillstack.planners.cli import (  # noqa: F401  (each module registers its commands)
    bench_cmd,
    calibrate_cmd,
    dataset_cmd,
    franky_sim_cmd,
    llm_cmd,
    mcp_cmd,
    robot_cmd,
    run_cmd,
    sim_cmd,
    skills_cmd,
    train_cmd,
)
from skillstack.planners.cli.common import (
    app,
    err,
    fail,
)
from skillstack.planners.cli.output import (
    click_exceptions,
    json_error,
    new_invocation,
    one_line_bounded,
)

LOG_LEVELS = ("debug", "info", "warning", "error")


def _print_version(value: bool) -> None:
    if value:
        from skillstack import __version__

        print(f"skillstack {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(
        False,
        "-v",
        "--verbose",
        help="Log what happens (model requests and replies, retries) to stderr: --log-level info.",
    ),
    log_level: str = typer.Option(
        "warning",
        "--log-level",
        help=f"Log to stderr from this level on: {', '.join(LOG_LEVELS)}.",
    ),
) -> None:
    new_invocation()
    level = "info" if verbose and log_level == "warning" else log_level.lower()
    if level not in LOG_LEVELS:
        fail(f"unknown --log-level {log_level[:40]!r}; levels: {', '.join(LOG_LEVELS)}", code=2)
    import logging

    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


DEBUG_ENV = "SKILLSTACK_DEBUG"  # set to 1 for the traceback of an unexpected error


def main() -> None:
    """Console-script entry point: an unexpected exception is one ``error:`` line (exit 1),
    not a traceback, unless ``SKILLSTACK_DEBUG=1``. Under ``--json`` every error, a usage
    error included, is also the one JSON object on stdout."""
    import os

    try:
        code = app(standalone_mode=False)
    except click_exceptions.ClickException as exc:  # usage: an unknown option, a bad value, ...
        message = one_line_bounded(exc.format_message())
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
        print(f"error: {message}{hint}", file=sys.stderr)  # one line, as every error
        json_error(message, exc.exit_code)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence for one-line errors
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        name = type(exc).__name__
        message = f"unexpected {name}: {one_line_bounded(exc, 500)}"
        print(f"error: {message} (set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        json_error(message, 1)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
