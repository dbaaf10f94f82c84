"""create_all / drop_all: a table's triggers are installed right after it, in its transaction.

DDL elements compiled for PostgreSQL and attached with ``execute_if(dialect="postgresql")``,
so they also render in offline SQL (``create_mock_engine``, Alembic ``--sql``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.sql.compiler import DDLCompiler

from pgtrigger.sqla import declare, executor


class InstallTriggers(ExecutableDDLElement):
    """Install every trigger declared on a table (``schema``: where a table declared without
    one was found, so that names are qualified; see docs/security.md)."""

    inherit_cache = False

    def __init__(self, table: Table, schema: str | None = None) -> None:
        self.table = table
        self.schema = schema


class DropTriggerFunctions(ExecutableDDLElement):
    """Drop the trigger functions left behind when a table (and so its triggers) is dropped."""

    inherit_cache = False

    def __init__(self, table: Table) -> None:
        self.table = table


def _schema_map(compiler: Any) -> Any:
    """The ``schema_translate_map`` the statement is compiled (and executed) with, if any."""
    return getattr(compiler, "schema_translate_map", None)


def _install_sql(element: InstallTriggers, dialect: Any, schema_map: Any) -> str:
    version = executor.server_version(dialect)
    with declare.translated(schema_map):
        return "\n".join(
            trigger.compile(element.table).install_sql_for(version, schema=element.schema).strip()
            for trigger in declare.triggers_of(element.table)
        )


def _drop_sql(element: DropTriggerFunctions) -> str:
    statements = []
    for trigger in declare.triggers_of(element.table):
        function = trigger.compile(element.table).function
        if function is not None:
            statements.append(f"DROP FUNCTION IF EXISTS {function}();")
    return "\n".join(statements)


def _raw_sql(element: ExecutableDDLElement, dialect: Any, schema_map: Any) -> str:
    """The element's SQL as the server takes it (no driver escaping of ``%``)."""
    if isinstance(element, InstallTriggers):
        return _install_sql(element, dialect, schema_map)
    with declare.translated(schema_map):
        return _drop_sql(element)  # type: ignore[arg-type]


@compiles(InstallTriggers, "postgresql")
def _compile_install(element: InstallTriggers, compiler: DDLCompiler, **kw: Any) -> str:
    sql = _install_sql(element, compiler.dialect, _schema_map(compiler))
    return compiler.sql_compiler.post_process_text(sql)  # type: ignore[no-any-return]


@compiles(DropTriggerFunctions, "postgresql")
def _compile_drop(element: DropTriggerFunctions, compiler: DDLCompiler, **kw: Any) -> str:
    with declare.translated(_schema_map(compiler)):
        sql = _drop_sql(element)
    return compiler.sql_compiler.post_process_text(sql)  # type: ignore[no-any-return]


def _connection_schema_map(connection: Any) -> Any:
    return connection.get_execution_options().get("schema_translate_map")


def _run(connection: Any, element: ExecutableDDLElement) -> None:
    if executor.one_statement_driver(connection) or executor.on_citus(connection):
        sql = _raw_sql(element, connection.dialect, _connection_schema_map(connection))
        executor.ConnectionExecutor(connection).execute(sql)
    else:
        connection.execute(element)  # compiled with the connection's schema_translate_map


def _install(target: Table, connection: Any, **kw: Any) -> None:
    if declare.triggers_of(target):
        schema = target.schema
        if isinstance(connection, Connection):  # not a mock (offline SQL): ask where it is
            schema = (_connection_schema_map(connection) or {}).get(schema, schema)
            if schema is None:
                from pgtrigger import engine

                schema = engine.table_schema(executor.ConnectionExecutor(connection), target.name)
        _run(connection, InstallTriggers(target, schema))


def _drop_functions(target: Table, connection: Any, **kw: Any) -> None:
    with declare.translated(_connection_schema_map(connection)):
        has_functions = any(
            trigger.compile(target).function for trigger in declare.triggers_of(target)
        )
    if has_functions:
        _run(connection, DropTriggerFunctions(target))


def _after_create(target: Table, connection: Any, **kw: Any) -> None:
    if declare.triggers_of(target) and connection.dialect.name == "postgresql":
        _install(target, connection, **kw)


def _before_create(target: Table, connection: Any, **kw: Any) -> None:
    """Describe (and so check) a table with triggers before its ``CREATE TABLE`` is sent.

    Registration no longer describes tables; what a description refuses (identifiers
    Postgres would truncate, NUL characters) must still stop ``create_all`` before any SQL.
    """
    if connection.dialect.name == "postgresql" and declare.triggers_of(target):
        declare.describe_table(target)


def _after_drop(target: Table, connection: Any, **kw: Any) -> None:
    if declare.triggers_of(target) and connection.dialect.name == "postgresql":
        _drop_functions(target, connection, **kw)


_listening = False


def listen() -> None:
    """Hook table creation and drops once, for every Table (cheaper than per table)."""
    global _listening
    if not _listening:
        event.listen(Table, "before_create", _before_create)
        event.listen(Table, "after_create", _after_create)
        event.listen(Table, "after_drop", _after_drop)
        _listening = True
