"""Command-line interface. Each sub-command lives in its own module."""

from occlupose.cli import info  # noqa: F401  (registers the command)
from occlupose.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
