"""Old name of the study runner, kept so that ``python -m ehrcausal.study ...`` still works.

The runner is the package :mod:`ehrcausal.runner` (``python -m ehrcausal.runner ...``); this
module only forwards its command line to :func:`ehrcausal.runner.cli.main`, with identical
arguments, behaviour and exit status.
"""

from __future__ import annotations

import sys

from .runner.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m ehrcausal.study"))
