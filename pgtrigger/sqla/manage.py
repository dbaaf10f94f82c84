"""Install, uninstall, enable, disable, prune and list the triggers of SQLAlchemy tables.

``bind`` is what the application already holds; each call reads the catalog once:

- an Engine or AsyncEngine: the catalog is read in autocommit (one round trip, no
  transaction); only when something must change is a transaction opened, the catalog read
  again inside it and the SQL run and committed: all or nothing;
- a Connection or AsyncConnection: inside its transaction if one is open (a savepoint keeps a
  failure from ending it), else in a transaction of its own, committed on success;
- a Session or AsyncSession (or a scoped one, like Flask-SQLAlchemy's ``db.session``): on
  the session's connection (for ``metadata=``, the one its
  tables are bound to), inside the session's transaction: the caller commits.

Async binds return awaitables. ``metadata=`` (a MetaData or a list of tables) limits a call to
those tables; without it a call acts on every SQLAlchemy table with triggers, and declared
tables this database does not have (another engine's, another bind's) are reported with
``table_missing=True`` and skipped by ``install``. ``prune`` only ever touches triggers on
tables the code declares: the metadata's tables, or without ``metadata=`` every table of the
MetaData objects that hold triggers.

A ``schema_translate_map`` execution option on the bind is honoured: triggers are read,
installed and dropped on the translated tables, under the code's URIs and pgids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from pgtrigger import engine, registry
from pgtrigger.sqla import declare
from pgtrigger.sqla.executor import ConnectionExecutor
from pgtrigger.triggers import Trigger

LOGGER = logging.getLogger("pgtrigger")

Schemas = str | Sequence[str] | None
Tables = MetaData | Iterable[Table] | None
#: ``work(executor, connection)``: one management call on one connection.
Work = Callable[[ConnectionExecutor, Connection], list[engine.Status]]

BIND_TYPES = (
    "an Engine, Connection, Session, AsyncEngine, AsyncConnection or AsyncSession"
    " (or a scoped_session / async_scoped_session)"
)


def _schemas(schema: Schemas) -> list[str] | None:
    if schema is None:
        return None
    return [schema] if isinstance(schema, str) else list(schema)


def _tables(metadata: Tables) -> list[Table] | None:
    if metadata is None:
        return None
    if isinstance(metadata, MetaData):
        return list(metadata.tables.values())
    return [declare.to_table(t) for t in metadata]


def _pairs(uris: Sequence[str], tables: list[Table] | None) -> list[tuple[str, Table, Trigger]]:
    """(uri, table, trigger) for the URIs given (or all) among ``tables`` (or every table)."""
    if tables is not None:
        own = {
            trigger.get_uri(table): (table, trigger)
            for table in tables
            for trigger in declare.triggers_of(table)
        }
        if not uris:
            return [(uri, table, trigger) for uri, (table, trigger) in own.items()]
        for uri in uris:
            registry.registered(uri)  # an unknown URI: LookupError naming the closest ones
        return [(uri, *own[uri]) for uri in uris if uri in own]
    return [
        (uri, model, trigger)
        for uri, model, trigger in registry.entries(*uris)
        if isinstance(model, Table)
    ]


def targets(
    *uris: str, metadata: Tables = None, schema_translate_map: declare.SchemaMap | None = None
) -> list[engine.Target]:
    """Compiled targets for the URIs given, or every trigger on SQLAlchemy tables (of
    ``metadata`` when given), on the tables a ``schema_translate_map`` names."""
    with declare.translated(schema_translate_map):
        return [
            engine.Target(uri, trigger.compile(table))
            for uri, table, trigger in _pairs(uris, _tables(metadata))
        ]


def declared_tables(
    metadata: Tables = None, schema_translate_map: declare.SchemaMap | None = None
) -> list[engine.TableName]:
    """The tables prune may touch: ``metadata``'s, or every table of each MetaData that holds
    a table with triggers."""
    tables = _tables(metadata)
    if tables is None:
        metadatas = {
            id(model.metadata): model.metadata
            for model, _ in registry.registered()
            if isinstance(model, Table)
        }
        tables = [t for md in metadatas.values() for t in md.tables.values()]
    with declare.translated(schema_translate_map):
        return [(declare.effective_schema(t), t.name) for t in tables]


def _schema_map(connection: Connection) -> declare.SchemaMap | None:
    found: declare.SchemaMap | None = connection.get_execution_options().get("schema_translate_map")
    return found


class _ChangesNeeded(Exception):
    """A read-only pass found SQL to run: run again in a transaction."""


class _ReadOnlyExecutor(ConnectionExecutor):
    """Reads the catalog in autocommit; stops the call at the first SQL that would change it."""

    def execute(self, sql: str) -> None:
        raise _ChangesNeeded


# -- running a call on whatever bind the caller holds -----------------------------------------
def _dispatch(bind: Any, work: Work, *, read_only: bool, tables: list[Table] | None) -> Any:
    if _is_async(bind):
        return _adispatch(bind, work, read_only=read_only, tables=tables)
    if isinstance(bind, Engine):
        return _on_engine(bind, work, read_only)
    if isinstance(bind, Connection):
        return _on_connection(bind, work, read_only)
    if isinstance(bind, scoped_session):  # Flask-SQLAlchemy's db.session
        bind = bind()
    if isinstance(bind, Session):
        connection = bind.connection(bind_arguments=_bind_arguments(tables))
        return work(ConnectionExecutor(connection), connection)
    raise TypeError(f"bind must be {BIND_TYPES}, got {bind!r}")


def _bind_arguments(tables: list[Table] | None) -> dict[str, Any] | None:
    """Lets a Session with several binds (Flask-SQLAlchemy binds) pick the metadata's."""
    return {"clause": tables[0]} if tables else None


def _on_engine(bind: Engine, work: Work, read_only: bool) -> list[engine.Status]:
    with bind.connect() as connection:
        # On the connection: Engine.execution_options() on an engine that already carries a
        # schema_translate_map raises before SQLAlchemy 2.0.38 (sqlalchemy#12289).
        connection.execution_options(isolation_level="AUTOCOMMIT")
        executor = ConnectionExecutor if read_only else _ReadOnlyExecutor
        try:
            return work(executor(connection), connection)
        except _ChangesNeeded:
            pass
    with bind.begin() as connection:
        return work(ConnectionExecutor(connection), connection)


def _on_connection(bind: Connection, work: Work, read_only: bool) -> list[engine.Status]:
    if bind.in_transaction():
        if read_only:
            return work(ConnectionExecutor(bind), bind)
        with bind.begin_nested():
            return work(ConnectionExecutor(bind), bind)
    with bind.begin():
        return work(ConnectionExecutor(bind), bind)


def _is_async(bind: Any) -> bool:
    return type(bind).__module__.startswith("sqlalchemy.ext.asyncio")


async def _adispatch(
    bind: Any, work: Work, *, read_only: bool, tables: list[Table] | None
) -> list[engine.Status]:
    from sqlalchemy.ext.asyncio import (
        AsyncConnection,
        AsyncEngine,
        AsyncSession,
        async_scoped_session,
    )

    if isinstance(bind, async_scoped_session):
        bind = bind()
    if isinstance(bind, AsyncEngine):
        async with bind.connect() as connection:
            # On the connection, as in _on_engine (sqlalchemy#12289).
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            executor = ConnectionExecutor if read_only else _ReadOnlyExecutor
            try:
                return await connection.run_sync(lambda sync: work(executor(sync), sync))
            except _ChangesNeeded:
                pass
        async with bind.begin() as connection:
            return await connection.run_sync(lambda sync: work(ConnectionExecutor(sync), sync))
    if isinstance(bind, AsyncConnection):
        return await bind.run_sync(lambda sync: _on_connection(sync, work, read_only))
    if isinstance(bind, AsyncSession):
        connection = await bind.connection(bind_arguments=_bind_arguments(tables))
        return await connection.run_sync(lambda sync: work(ConnectionExecutor(sync), sync))
    raise TypeError(f"bind must be {BIND_TYPES}, got {bind!r}")


class _Scope:
    """What one call acts on, resolved per connection (its schema_translate_map)."""

    def __init__(self, uris: Sequence[str], metadata: Tables) -> None:
        self.uris = tuple(uris)
        self.tables = _tables(metadata)
        # Compiling is pure: one compile per translate map, however many passes a call needs.
        self._cache: dict[Any, tuple[list[engine.Target], list[engine.TableName]]] = {}

    @property
    def everything(self) -> bool:
        """No metadata and no URI: every table with triggers, wherever it lives."""
        return self.tables is None and not self.uris

    def resolve(self, connection: Connection) -> tuple[list[engine.Target], list[engine.TableName]]:
        schema_map = _schema_map(connection)
        key = tuple(sorted(schema_map.items(), key=repr)) if schema_map else None
        if key not in self._cache:
            self._cache[key] = (
                targets(*self.uris, metadata=self.tables, schema_translate_map=schema_map),
                declared_tables(self.tables, schema_map),
            )
        return self._cache[key]


def _report_missing(found: Sequence[engine.Status]) -> None:
    missing = sorted({row.uri for row in found if row.table_missing and row.uri})
    if missing:
        LOGGER.info(
            "pgtrigger: skipped %d trigger(s) whose table this database does not have: %s",
            len(missing),
            ", ".join(missing),
        )


# -- the public calls ---------------------------------------------------------------------------
def ls(bind: Any, *uris: str, schema: Schemas = None, metadata: Tables = None) -> Any:
    """Status of each declared trigger (per schema), then (with no URI) the orphans to prune.

    Rows of tables the database does not have carry ``table_missing=True``.
    """
    scope = _Scope(uris, metadata)

    def work(ex: ConnectionExecutor, connection: Connection) -> list[engine.Status]:
        declared, tables = scope.resolve(connection)
        return engine.ls(ex, declared, _schemas(schema), not uris, registry.current_pgids(), tables)

    return _dispatch(bind, work, read_only=True, tables=scope.tables)


def install(
    bind: Any,
    *uris: str,
    schema: Schemas = None,
    metadata: Tables = None,
    prune: bool | None = None,
    force: bool = False,
    lock_timeout: str | None = None,
) -> Any:
    """Install missing or outdated triggers; with no URI, also prune orphans (``prune=False``
    to keep them). Returns the statuses read before installing."""
    scope = _Scope(uris, metadata)
    do_prune = (not uris) if prune is None else prune

    def work(ex: ConnectionExecutor, connection: Connection) -> list[engine.Status]:
        declared, tables = scope.resolve(connection)
        found = engine.install(
            ex,
            declared,
            schemas=_schemas(schema),
            force=force,
            prune=do_prune,
            lock_timeout=lock_timeout,
            declared_pgids=registry.current_pgids(),
            declared_tables=tables,
            skip_missing_tables=scope.everything,
        )
        if scope.everything:
            _report_missing(found)
        return found

    return _dispatch(bind, work, read_only=False, tables=scope.tables)


def uninstall(
    bind: Any,
    *uris: str,
    schema: Schemas = None,
    metadata: Tables = None,
    lock_timeout: str | None = None,
) -> Any:
    """Drop triggers (and their functions)."""
    scope = _Scope(uris, metadata)

    def work(ex: ConnectionExecutor, connection: Connection) -> list[engine.Status]:
        declared, _ = scope.resolve(connection)
        return engine.uninstall(ex, declared, schemas=_schemas(schema), lock_timeout=lock_timeout)

    return _dispatch(bind, work, read_only=False, tables=scope.tables)


def _toggle(
    bind: Any, uris: Sequence[str], enabled: bool, schema: Schemas, metadata: Tables
) -> Any:
    scope = _Scope(uris, metadata)

    def work(ex: ConnectionExecutor, connection: Connection) -> list[engine.Status]:
        declared, _ = scope.resolve(connection)
        return engine.set_enabled(ex, declared, enabled, schemas=_schemas(schema))

    return _dispatch(bind, work, read_only=False, tables=scope.tables)


def enable(bind: Any, *uris: str, schema: Schemas = None, metadata: Tables = None) -> Any:
    """Enable installed triggers."""
    return _toggle(bind, uris, True, schema, metadata)


def disable(bind: Any, *uris: str, schema: Schemas = None, metadata: Tables = None) -> Any:
    """Disable installed triggers (they stay installed)."""
    return _toggle(bind, uris, False, schema, metadata)


def prunable(bind: Any, schema: Schemas = None, metadata: Tables = None) -> Any:
    """pgtrigger triggers on the code's tables that no declared trigger matches."""
    rows = ls(bind, schema=schema, metadata=metadata)
    if _is_async(bind):

        async def orphans() -> list[engine.Status]:
            return [row for row in await rows if row.status == engine.PRUNE]

        return orphans()
    return [row for row in rows if row.status == engine.PRUNE]


def prune(bind: Any, schema: Schemas = None, metadata: Tables = None) -> Any:
    """Drop pgtrigger triggers no code declares, on the tables the code declares."""
    scope = _Scope((), metadata)

    def work(ex: ConnectionExecutor, connection: Connection) -> list[engine.Status]:
        declared, tables = scope.resolve(connection)
        return engine.prune(
            ex,
            declared,
            schemas=_schemas(schema),
            declared_pgids=registry.current_pgids(),
            declared_tables=tables,
        )

    return _dispatch(bind, work, read_only=False, tables=scope.tables)
