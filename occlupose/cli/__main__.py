"""``python -m occlupose.cli``: the ``occlupose`` command without the installed script."""

from occlupose.cli import main

main()
