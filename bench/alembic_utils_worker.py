"""alembic_utils' side of ``bench/autogenerate.py``, in alembic_utils' own virtualenv.

alembic_utils must not share an interpreter with our package (it would see our comparator and
we would see its global one), so ``autogenerate.py`` starts this script once per benchmark run
with the python of ``competitors.ensure_env(ALEMBIC_UTILS)`` and ``-P``, and keeps it alive
across scenarios and rounds: its import cost is paid once and reported separately.

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout (anything else
the libraries print goes to stderr)::

    {"cmd": "hello"}                        -> {"versions": {...}, "import_seconds": s}
    {"cmd": "setup", "url": URL, "tables": [name, ...],
     "entities": [{"table", "function", "function_definition",
                   "trigger", "trigger_definition"}, ...]}
                                            -> {"created": n}
    {"cmd": "run", "variant": "plain" | "alembic_utils"}
                                            -> {"seconds": s, "statements": n, "ops": [kind, ...]}
    {"cmd": "outdate"}                      -> {"function": name}
    {"cmd": "teardown"} / {"cmd": "quit"}   -> {}

``setup`` works in a database the caller created (and drops): it creates the tables of
``autogenerate.build_metadata`` (same columns, no pgtrigger), then one ``PGFunction`` and one
``PGTrigger`` per declared trigger, from the SQL our v2 template compiles to (so both sides
manage the same database objects, minus our hash comment), and registers them with
``register_entities``; the diff is then empty. ``run`` times what ``alembic revision
--autogenerate`` does, in-process (``produce_migrations``); ``plain`` detaches Alembic's
global comparator registry, where alembic_utils hooks itself at import, so it is plain Alembic
in this interpreter. ``outdate`` rewrites the first function's body in the database, so
exactly one entity is outdated (one ``ReplaceOp`` expected).
"""

from __future__ import annotations

import time

_started = time.perf_counter()

import importlib.metadata  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import sqlalchemy as sa  # noqa: E402
from alembic.autogenerate import compare as alembic_compare  # noqa: E402
from alembic.autogenerate import produce_migrations  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.util import PriorityDispatcher  # noqa: E402
from alembic_utils.pg_function import PGFunction  # noqa: E402
from alembic_utils.pg_trigger import PGTrigger  # noqa: E402
from alembic_utils.replaceable_entity import (  # noqa: E402
    ReplaceableEntity,
    register_entities,
    registry,
)

IMPORT_SECONDS = time.perf_counter() - _started
SCHEMA = "public"


class Scenario:
    """One scratch database with its tables and registered entities."""

    def __init__(self, url: str, tables: list[str], entities: list[dict[str, str]]) -> None:
        self.engine = sa.create_engine(
            sa.make_url(url).set(drivername="postgresql+psycopg"), pool_size=1
        )
        self.metadata = sa.MetaData()
        for name in tables:  # the columns of autogenerate.build_metadata
            sa.Table(
                name,
                self.metadata,
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("amount", sa.Integer),
            )
        self.functions: list[PGFunction] = []
        declared: list[ReplaceableEntity] = []
        for each in entities:
            function = PGFunction(
                schema=SCHEMA,
                signature=f"{each['function']}()",
                definition=each["function_definition"],
            )
            trigger = PGTrigger(
                schema=SCHEMA,
                signature=each["trigger"],
                on_entity=f"{SCHEMA}.{each['table']}",
                definition=each["trigger_definition"],
            )
            self.functions.append(function)
            declared += [function, trigger]
        self.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            for entity in declared:
                conn.execute(entity.to_sql_statement_create())
        registry.clear()
        register_entities(declared)
        self.declared = len(declared)
        #: ``include_schemas`` as ``EnvironmentContext.configure`` fills it in (env.py);
        #: alembic_utils reads it unconditionally.
        self.opts = {"target_metadata": self.metadata, "include_schemas": False}
        self.statements = 0
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.statements += 1

    def run(self, variant: str) -> dict[str, Any]:
        comparators = alembic_compare.comparators
        if variant == "plain":
            alembic_compare.comparators = PriorityDispatcher()
        elif variant != "alembic_utils":
            raise ValueError(f"unknown variant {variant!r}")
        try:
            with self.engine.connect() as connection:
                before = self.statements
                start = time.perf_counter()
                context = MigrationContext.configure(connection, opts=self.opts)
                script = produce_migrations(context, self.metadata)
                seconds = time.perf_counter() - start
                sent = self.statements - before
                try:
                    connection.rollback()
                except RecursionError:
                    # alembic_utils leaves one nested transaction per entity; unwinding 1,000
                    # of them recurses past Python's limit: drop the connection instead.
                    connection.invalidate()
        finally:
            alembic_compare.comparators = comparators
        assert script.upgrade_ops is not None
        ops = [type(op).__name__ for op in script.upgrade_ops.ops]
        return {"seconds": seconds, "statements": sent, "ops": ops}

    def outdate(self) -> dict[str, Any]:
        """Give the first function another body in the database (alembic_utils' own SQL)."""
        first = self.functions[0]
        changed = PGFunction(
            schema=first.schema,
            signature=first.signature,
            definition=first.definition.replace("BEGIN", "BEGIN\nPERFORM 1;", 1),
        )
        with self.engine.begin() as conn:
            for statement in changed.to_sql_statement_create_or_replace():
                conn.execute(statement)
        return {"function": first.signature}

    def close(self) -> None:
        registry.clear()
        self.engine.dispose()


class Worker:
    """The commands of the protocol, around at most one live scenario."""

    def __init__(self) -> None:
        self.scenario: Scenario | None = None

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        cmd = command["cmd"]
        if cmd == "hello":
            names = ("alembic_utils", "alembic", "SQLAlchemy", "psycopg")
            return {
                "import_seconds": IMPORT_SECONDS,
                "versions": {name: importlib.metadata.version(name) for name in names},
                "python": sys.version.split()[0],
            }
        if cmd == "setup":
            self.close()
            self.scenario = Scenario(command["url"], command["tables"], command["entities"])
            return {"created": self.scenario.declared}
        if cmd in ("teardown", "quit"):
            self.close()
            return {}
        if self.scenario is None:
            raise RuntimeError(f"{cmd!r} before setup")
        if cmd == "run":
            return self.scenario.run(command["variant"])
        if cmd == "outdate":
            return self.scenario.outdate()
        raise ValueError(f"unknown command {cmd!r}")

    def close(self) -> None:
        if self.scenario is not None:
            self.scenario.close()
            self.scenario = None


def main() -> None:
    answers = sys.stdout
    sys.stdout = sys.stderr  # keep the protocol stream clean
    worker = Worker()
    for line in sys.stdin:
        command = json.loads(line)
        try:
            answer = worker.handle(command)
        except Exception:  # reported to the caller, which stops the benchmark
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if command["cmd"] == "quit":
            break
    worker.close()


if __name__ == "__main__":
    main()
