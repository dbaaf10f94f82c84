"""Run ``alembic`` commands each in a process of its own, without paying Python's start-up.

A user's every ``alembic`` command is a new process: trigger URIs are registered afresh and an
edited models.py is read again. The tests keep that, but a new interpreter importing
SQLAlchemy, Alembic and psycopg costs ~1 s per command, most of the Alembic tests' time; so
commands are forked from the CLI tests' pre-warmed launcher (:mod:`tests.cli.forkserver`),
which has imported those libraries and registered nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.cli.helpers import fork_server


def run_alembic(
    root: Path, *commands: Sequence[str], timeout: float = 120
) -> list[subprocess.CompletedProcess[str]]:
    """Run each of ``commands`` (argv after ``alembic``), one after the other; their results."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    results = []
    for argv in commands:
        ran = fork_server().run(root, tuple(argv), env, timeout, program="alembic")
        results.append(
            subprocess.CompletedProcess(["alembic", *argv], ran.code, ran.stdout, ran.stderr)
        )
    return results
