"""The ``occlupose`` Typer application; command modules register themselves on it.

Errors: every command reports bad input on one line, ``error: <file or option>:
<problem>``, and exits with a non-zero status instead of showing a traceback
(:class:`~occlupose.utils.errors.UserError` carries its own status; anything else is
reported as unexpected). ``occlupose --debug COMMAND ...`` or ``OCCLUPOSE_DEBUG=1``
shows the traceback instead.

Speed: the command modules import only typer and rich at the top; torch, the models
and the data stack are imported inside the commands that need them, so ``occlupose
--help`` and every ``--help`` answer at once.

Help is click's plain format, which wraps to any width (rich's help panels cut option
names and text at 80 columns when the output is not a terminal).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from occlupose.utils.errors import UserError

__all__ = [
    "EXIT_STATUS",
    "app",
    "debug_enabled",
    "describe_error",
    "print_error",
    "sigterm_runs_cleanup",
]

#: The exit status rule of every command, shown in the help pages.
EXIT_STATUS = (
    "Exit status: 0 when every input was processed; 1 when any input failed or an "
    "output could not be written (the other inputs are still processed); 2 for a bad "
    "option or recipe."
)

_DEBUG_KEY = "occlupose.debug"


def debug_enabled(ctx: typer.Context | None = None) -> bool:
    """``--debug`` was given, or ``OCCLUPOSE_DEBUG`` is set to 1/true/yes."""
    if ctx is not None and ctx.meta.get(_DEBUG_KEY):
        return True
    return os.environ.get("OCCLUPOSE_DEBUG", "").strip().lower() in ("1", "true", "yes")


def print_error(message: str) -> None:
    """``error: message`` on stderr, on one line (never wrapped, so paths stay whole)."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)


def describe_error(error: BaseException) -> tuple[str, int]:
    """The one-line message and exit status for an exception a command let through."""
    if isinstance(error, UserError):
        return str(error), error.exit_code
    if isinstance(error, MemoryError):
        return (
            "out of memory (an input or an option asks for more memory than this machine "
            "has; use smaller images, sizes or batches)",
            1,
        )
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or str(error)
        return f"{error.filename}: {reason[:1].lower()}{reason[1:]}", 1
    text = str(error) or "no message"
    return (
        f"unexpected {type(error).__name__}: {text} (rerun with --debug or "
        "OCCLUPOSE_DEBUG=1 for the traceback, and report it)",
        1,
    )


@contextmanager
def sigterm_runs_cleanup() -> Iterator[None]:
    """Within the block, SIGTERM (kill, timeout, a job scheduler) ends the command as
    Ctrl-C does: through its clean-up code, which removes partial outputs, with exit
    status 143. (By default SIGTERM ends Python at once, leaving them behind.)"""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can handle signals
        return

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _ReportingGroup(TyperGroup):
    """Turns exceptions that escape a command into one ``error:`` line and an exit status."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
            raise
        except Exception as error:
            if debug_enabled(ctx):
                raise
            message, code = describe_error(error)
            print_error(message)
            raise typer.Exit(code) from None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # Each command's first sentence in full, wrapped (click cuts it to the width).
        rows = [
            (name, command.get_short_help_str(limit=1000))
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="occlupose",
    cls=_ReportingGroup,
    help="Multi-person 2D pose estimation under occlusion (HRGR-Net, HigherHRNet).",
    epilog=EXIT_STATUS,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an error (or set OCCLUPOSE_DEBUG=1)."
    ),
) -> None:
    """occlupose: multi-person 2D pose estimation that stays accurate under occlusion."""
    ctx.meta[_DEBUG_KEY] = debug
