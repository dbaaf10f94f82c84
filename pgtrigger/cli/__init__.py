"""The ``pgtrigger`` command line (console script ``pgtrigger = pgtrigger.cli:main``)."""

from __future__ import annotations

import sys
import warnings


def main() -> None:
    from pgtrigger.distribution import PackageClashError, PackageClashWarning, check_installation

    # Before anything else of ours is imported: django-pgtrigger may have replaced it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PackageClashWarning)
        try:
            check_installation()
        except PackageClashError as exc:
            print(f"pgtrigger: error: {exc}", file=sys.stderr)
            sys.exit(1)
    for warning in caught:
        print(f"pgtrigger: warning: {warning.message}", file=sys.stderr)

    from pgtrigger.cli.app import main as run

    sys.exit(run())
