"""Command-line interface. Each sub-command lives in its own module and registers itself."""

from occlupose.cli import demo, evaluate, export, info, occlude, predict, synth, train  # noqa: F401
from occlupose.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
