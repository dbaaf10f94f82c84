"""What a new user meets first: ``--version``, help texts, a quiet ``| head``, progress on a
terminal while an install waits."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

import pgtrigger
from pgtrigger.cli.app import BROKEN_PIPE_EXIT, COMMANDS
from tests.cli.helpers import cli_env, ok
from tests.pgservers import DatabaseDSN

SCRIPT = str(Path(sys.executable).with_name("pgtrigger"))


def test_version(tmp_path: Path) -> None:
    result = ok(tmp_path, "--version")
    assert result.stdout == f"pgtrigger {pgtrigger.__version__}\n"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_plain_text(tmp_path: Path, command: str | None) -> None:
    text = ok(tmp_path, *([command] if command else []), "--help").stdout
    assert "``" not in text
    assert "usage: pgtrigger" in text


def test_demo_help_lists_only_what_the_demo_uses(tmp_path: Path) -> None:
    text = ok(tmp_path, "demo", "--help").stdout
    assert re.findall(r"^\s+(-\w|--[\w-]+)", text, re.M) == ["-h", "--url", "-v"]
    assert "DATABASE_URL" not in text
    assert "embedded PostgreSQL" in text


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``pgtrigger sql | head -0``: the reader is gone before the first write."""
    (tmp_path / "models.py").write_text(
        "import sqlalchemy as sa\nimport pgtrigger\nmetadata = sa.MetaData()\n"
        + "".join(
            f"sa.Table('t{i}', metadata, sa.Column('id', sa.Integer, primary_key=True),"
            f" pgtrigger.Protect(name='p', operation=pgtrigger.Delete))\n"
            for i in range(50)
        )
    )
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [SCRIPT, "sql", "--target", "models:metadata"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (BROKEN_PIPE_EXIT, "")


def test_a_long_install_shows_progress_on_a_terminal(project: Path, cli_db: DatabaseDSN) -> None:
    """While install waits for a lock, stderr (a terminal) shows what it works on and for how
    long; the line is erased at the end. Off a terminal, nothing."""
    base = ("install", "--target", "models:Base", "--url", cli_db)
    with psycopg.connect(cli_db) as holder:
        holder.execute("LOCK TABLE cli_item IN ACCESS EXCLUSIVE MODE")
        threading.Timer(2.0, holder.commit).start()
        master, slave = pty.openpty()
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [SCRIPT, *base],
                cwd=project,
                env=cli_env(),
                stdout=subprocess.PIPE,
                stderr=slave,
                text=True,
                timeout=60,
            )
            os.close(slave)
            slave = -1
            terminal = _drain(master)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
    assert time.monotonic() - started >= 2.0
    assert proc.returncode == 0, (proc.stdout, terminal)
    assert len(proc.stdout.splitlines()) == 4
    assert re.search(r"\rinstall: \d s", terminal), repr(terminal)
    assert terminal.endswith("\r"), repr(terminal)  # erased: blanks, then back to column 0
    assert terminal.rsplit("\r", 2)[-2].strip() == ""
    # Off a terminal (tests' stderr is a file): no progress at all.
    assert ok(project, *base).stderr == ""


def _drain(master: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()
