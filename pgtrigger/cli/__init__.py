"""The ``pgtrigger`` command line (console script ``pgtrigger = pgtrigger.cli:main``)."""

from __future__ import annotations

import sys

from pgtrigger.cli.app import main as _main


def main() -> None:
    sys.exit(_main())
