"""Run ``alembic`` commands each in a process of its own, without paying Python's start-up.

A user's every ``alembic`` command is a new process: trigger URIs are registered afresh and an
edited models.py is read again. The tests keep that, but a new interpreter importing
SQLAlchemy, Alembic and psycopg costs ~1 s per command, most of the Alembic tests' time. So
commands are forked from a multiprocessing fork server that has imported those libraries
(never pgtrigger, alembic_ext or a project's modules: each command imports them fresh, as a
new process would) and run ``alembic``'s own command line in the child.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: Imported once by the fork server; third-party only (see the module docstring).
PRELOAD = [
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "mako.template",
    "alembic.config",
    "alembic.command",
    "alembic.autogenerate",
    "alembic.operations",
    "alembic.runtime.migration",
]

_context: multiprocessing.context.ForkServerContext | None = None


def _fork_server() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def _alembic_main(root: str, argv: list[str], out: str, err: str) -> None:
    """The child: ``python -m alembic <argv>`` with ``root`` as working directory."""
    os.chdir(root)
    sys.path.insert(0, root)  # python -m puts the working directory first
    sys.dont_write_bytecode = True
    sys.stdout = open(out, "w", buffering=1)  # noqa: SIM115 (flushed and closed at exit)
    sys.stderr = open(err, "w", buffering=1)  # noqa: SIM115
    from alembic.config import main

    main(argv=argv, prog="alembic")


def run_alembic(
    root: Path, *commands: Sequence[str], timeout: float = 120
) -> list[subprocess.CompletedProcess[str]]:
    """Run each of ``commands`` (argv after ``alembic``) side by side; their results."""
    context = _fork_server()
    with tempfile.TemporaryDirectory(prefix="alembic-out-") as outdir:
        started = []
        for index, argv in enumerate(commands):
            out, err = (os.path.join(outdir, f"{index}.{name}") for name in ("out", "err"))
            process = context.Process(target=_alembic_main, args=(str(root), list(argv), out, err))
            process.start()
            started.append((argv, process, out, err))
        results = []
        for argv, process, out, err in started:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join()
                raise TimeoutError(f"alembic {' '.join(argv)} did not finish in {timeout} s")
            code = process.exitcode if process.exitcode is not None else -1
            results.append(
                subprocess.CompletedProcess(
                    ["alembic", *argv],
                    code % 256 if code >= 0 else code,
                    Path(out).read_text() if os.path.exists(out) else "",
                    Path(err).read_text() if os.path.exists(err) else "",
                )
            )
        return results
