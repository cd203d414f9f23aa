"""The base class of errors whose message is written for the user.

Every error of this kind names the file or option at fault and the problem, on one
line; the command line prints ``error: <message>`` and exits with ``exit_code``
instead of showing a traceback. This module imports nothing heavy, so the command
line can recognise these errors without importing torch.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Bad input (a file, an option, a recipe) described for the user.

    Subclasses mix it into the built-in class they specialise (``OSError``,
    ``ValueError``, ...), so ``except ValueError`` keeps catching them.

    Attributes:
        exit_code: the command line's exit status for this error (1: an input or an
            output failed; 2: a bad option or recipe).
    """

    exit_code = 1
