"""What a command is doing, said on stderr as soon as it starts a slow step.

Importing torch alone takes seconds, loading a model or a large annotation file more; a
command that prints nothing meanwhile looks hung. Each slow step runs inside
:func:`status`: a spinner on a terminal, one plain line otherwise (logs, pipes, CI),
where an animation would only add noise. stdout stays for the results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

__all__ = ["status", "stderr_console"]

stderr_console = Console(stderr=True)


@contextmanager
def status(text: str) -> Iterator[None]:
    """Show ``text`` while the block runs: a spinner on a terminal, else ``text ...``."""
    if stderr_console.is_terminal:
        with stderr_console.status(text):
            yield
    else:
        stderr_console.print(f"{text} ...", markup=False, highlight=False, soft_wrap=True)
        yield
