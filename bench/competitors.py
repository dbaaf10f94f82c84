"""Competitors' own environments, for side-by-side benchmarks.

django-pgtrigger and pgtrigger both provide a top-level ``pgtrigger`` package, so the
competitor never shares an interpreter with us: it gets its own virtualenv under
``bench/.envs/<name>`` (created on first use, reused afterwards, never committed) and the
benchmarks drive it in a subprocess with that venv's Python.

    from competitors import DJANGO_PGTRIGGER, ensure_env
    python = ensure_env(DJANGO_PGTRIGGER)      # Path of the venv's python
    subprocess.run([python, "-P", "bench/_worker.py", ...])

Run the competitor's python with ``-P`` (or from another directory): with the checkout as the
working directory, ``python -c`` would import our ``pgtrigger`` instead of theirs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ENVS = Path(os.environ.get("PGTRIGGER_BENCH_ENVS", Path(__file__).parent / ".envs"))


@dataclass(frozen=True)
class Env:
    name: str
    requirements: tuple[str, ...]


#: django-pgtrigger as measured by the issue's targets, with the Django and driver we use.
DJANGO_PGTRIGGER = Env(
    "django-pgtrigger",
    ("django-pgtrigger==4.17.0", "Django>=4.2,<6", "psycopg[binary]>=3.1"),
)
#: alembic_utils (PGTrigger / PGFunction entities) next to our package, for autogenerate.
ALEMBIC_UTILS = Env(
    "alembic-utils",
    ("alembic_utils", "alembic>=1.13", "SQLAlchemy>=2.0", "psycopg[binary]>=3.1"),
)


def ensure_env(env: Env, *, quiet: bool = True) -> Path:
    """Create (once) the competitor's virtualenv; return the path of its python."""
    root = ENVS / env.name
    python = root / "bin" / "python"
    stamp = root / ".requirements-stamp"
    want = hashlib.sha256("\n".join(env.requirements).encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    if not python.exists():
        print(f"bench: creating {root} for {env.name}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
    print(f"bench: installing {', '.join(env.requirements)} into {root}", file=sys.stderr)
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        command.append("--quiet")
    subprocess.run([*command, *env.requirements], check=True)
    stamp.write_text(want)
    return python


def version_of(python: Path, distribution: str) -> str:
    """The installed version of ``distribution`` in the venv of ``python``."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    return subprocess.run(
        [str(python), "-P", "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


if __name__ == "__main__":
    for each in (DJANGO_PGTRIGGER, ALEMBIC_UTILS):
        print(each.name, ensure_env(each, quiet=False))
