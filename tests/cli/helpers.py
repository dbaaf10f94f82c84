"""Shared helpers of the CLI tests (``tests.cli.helpers``).

The trigger registry is global to a process, so every command that imports the user's
models runs in a process of its own whose working directory is a temporary project holding
:data:`MODELS` as ``models.py``: a fresh interpreter (``python -m pgtrigger.cli``, ``spawn=True``)
or, by default, a child forked from a pre-warmed server (``tests/cli/forkserver.py``), which
saves the ~0.4 s of imports per command. ``PGTRIGGER_CLI_SPAWN=1`` spawns a fresh interpreter
for every command.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

#: Two tables, one in a second schema, four triggers.
MODELS = '''\
"""A user project for the CLI tests."""

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "cli_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(default="new")
    __table_args__ = (
        pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
        pgtrigger.ReadOnly(name="frozen_name", fields=["name"]),
    )


class Invoice(Base):
    __tablename__ = "cli_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int]
    status: Mapped[str] = mapped_column(default="open")
    __table_args__ = (
        pgtrigger.Protect(
            name="append_only",
            operation=pgtrigger.Update | pgtrigger.Delete,
            condition=pgtrigger.Q(old__status="paid"),
        ),
        pgtrigger.FSM(name="status_fsm", field="status", transitions=[("open", "paid")]),
        {"schema": "billing"},
    )


class Other(Base):
    """No triggers: its table is still the project's, so prune may clean it."""

    __tablename__ = "cli_other"
    id: Mapped[int] = mapped_column(primary_key=True)


metadata = Base.metadata
TABLES = [Item.__table__, Invoice.__table__]
NOT_A_TARGET = 42
'''

#: The tables of :data:`MODELS` (without triggers).
TABLES_SQL = """
CREATE SCHEMA billing;
CREATE TABLE cli_item (id int PRIMARY KEY, name text NOT NULL, status text NOT NULL);
CREATE TABLE billing.cli_invoice (id int PRIMARY KEY, amount int NOT NULL, status text NOT NULL);
CREATE TABLE cli_other (id int PRIMARY KEY);
"""

ITEM_URIS = ("cli_item:protect_deletes", "cli_item:frozen_name")
INVOICE_URIS = ("billing.cli_invoice:append_only", "billing.cli_invoice:status_fsm")
URIS = ITEM_URIS + INVOICE_URIS
SCHEMA_OF = {uri: ("billing" if uri.startswith("billing.") else "public") for uri in URIS}


def pgid(uri: str) -> str:
    """``pgtrigger_{name}_{first 12 hex of sha1(uri)}`` (SQLAlchemy tables: see get_pgid)."""
    return f"pgtrigger_{uri.rsplit(':', 1)[1]}_{hashlib.sha1(uri.encode()).hexdigest()[:12]}"


def key(uri: str) -> tuple[str, str, str]:
    """(schema, table, pgid) of a URI of :data:`MODELS`, as :func:`installed` reports it."""
    table = uri.split(":")[0].rsplit(".", 1)[-1]
    return (SCHEMA_OF[uri], table, pgid(uri))


ORPHAN = "pgtrigger_orphan_abcde"
ORPHAN_SQL = f"""
CREATE FUNCTION {ORPHAN}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER {ORPHAN} BEFORE INSERT ON cli_other FOR EACH ROW EXECUTE FUNCTION {ORPHAN}();
"""

#: Variables of the test process that must not leak into the CLI's environment.
SCRUBBED = ("DATABASE_URL", "NO_COLOR", "DJANGO_SETTINGS_MODULE", "PYTHONPATH")


@dataclass(frozen=True, repr=False)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __repr__(self) -> str:  # shown by failing asserts
        return (
            f"pgtrigger {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    environ.update(env or {})
    return environ


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgtrigger.cli", *args]


class ForkServer:
    """Client of ``tests/cli/forkserver.py`` (see the module docstring)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("forkserver.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=cli_env(),
        )
        self._buffer = b""
        assert self._readline(60) == "ready"

    def _readline(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                if not selector.select(timeout):
                    return None
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError("the CLI fork server died")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def run(
        self,
        cwd: Path,
        args: tuple[str, ...],
        env: dict[str, str],
        timeout: float,
        stdout: str | None = None,
        program: str = "pgtrigger",
    ) -> Result:
        """Run one command; ``stdout``: a path (a terminal) to write to instead of a file
        (the result's stdout is then empty); ``program``: ``pgtrigger`` or ``alembic``."""
        assert self.proc.stdin is not None
        with tempfile.TemporaryDirectory(prefix="pgtrigger-cli-") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            out.touch()
            request = {"program": program, "argv": args, "cwd": str(cwd), "env": env}
            request["stdout"] = stdout or str(out)
            request["stderr"] = str(err)
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            started = self._readline(30)
            assert started is not None and started.startswith("pid "), started
            ended = self._readline(timeout)
            if ended is None:
                os.kill(int(started.split()[1]), signal.SIGKILL)
                self._readline(30)
                raise subprocess.TimeoutExpired([program, *args], timeout)
            assert ended.startswith("exit "), ended
            return Result(args, int(ended.split()[1]), out.read_text(), err.read_text())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


_server: ForkServer | None = None


def close_fork_server() -> None:
    global _server
    server, _server = _server, None
    if server is not None:
        server.close()


def fork_server() -> ForkServer:
    global _server
    if _server is None:
        _server = ForkServer()
    return _server


def spawning() -> bool:
    """Whether every command must run in a fresh interpreter (``PGTRIGGER_CLI_SPAWN=1``)."""
    return os.environ.get("PGTRIGGER_CLI_SPAWN", "") not in ("", "0")


def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run ``python -m pgtrigger.cli *args`` in a fresh interpreter."""
    proc = subprocess.run(
        cli_command(*args),
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def run(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    fresh: bool = False,
) -> Result:
    """Run ``pgtrigger *args`` in a process of its own (stdout is a file: never a terminal);
    ``fresh=True`` (or ``PGTRIGGER_CLI_SPAWN=1``) in a fresh interpreter."""
    if fresh or spawning():
        result = spawn(cwd, *args, env=env, timeout=timeout)
    else:
        result = fork_server().run(cwd, tuple(args), cli_env(env), timeout)
    # Output to a pipe is never coloured.
    assert "\x1b[" not in result.stdout + result.stderr, result
    return result


def ok(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = run(cwd, *args, env=env)
    assert result.code == 0, result
    assert result.stderr == "", result
    return result


def make_project(path: Path, pyproject: str | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "models.py").write_text(MODELS)
    if pyproject is not None:
        (path / "pyproject.toml").write_text(pyproject)
    return path


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of a STATUS table (header dropped), split on runs of spaces."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.startswith("STATUS"))
    return [line.split() for line in lines[start + 1 :]]


def installed(dsn: str) -> dict[tuple[str, str, str], bool]:
    """(schema, table, trigger) -> enabled, for every pgtrigger trigger in the database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, t.tgname, t.tgenabled <> 'D' FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE t.tgname LIKE 'pgtrigger\\_%' AND NOT t.tgisinternal"
        ).fetchall()
    return {(s, t, name): enabled for s, t, name, enabled in rows}


def functions(dsn: str) -> set[str]:
    """schema.name of every pgtrigger_ function in the database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || p.proname FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname LIKE 'pgtrigger\\_%'"
        ).fetchall()
    return {row[0] for row in rows}


def execute(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def server_url(server: Any) -> str:
    """A URL (never ``key=value``) of the server's maintenance database."""
    dbname = conninfo_to_dict(server.admin_dsn).get("dbname") or "postgres"
    return str(server.dsn(str(dbname)))
