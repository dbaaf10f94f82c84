"""The core engine's ``Executor`` over a SQLAlchemy ``Connection``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from pgtrigger import citus, sqltext

_NO_PARAMETERS = {"no_parameters": True}


def server_version(dialect: Any) -> int | None:
    """``server_version_num`` (e.g. 150020) from a dialect's ``server_version_info``; None when
    no server was seen (offline SQL: templates then assume a current PostgreSQL)."""
    info = getattr(dialect, "server_version_info", None)
    if not info:
        return None
    major, minor = (*tuple(info), 0)[:2]
    return int(major) * 10000 + int(minor)


def one_statement_driver(connection: Connection) -> bool:
    """asyncpg prepares every statement, so it takes one statement per call."""
    return connection.dialect.driver == "asyncpg"


def on_citus(connection: Connection) -> bool:
    """Is the connection's database a Citus one? (Asked once per DB-API connection; never
    for a mock connection, which renders offline SQL.)"""
    if not isinstance(connection, Connection):
        return False
    return citus.is_citus(connection.connection.dbapi_connection)


class ConnectionExecutor:
    """Runs the engine's parameterless SQL; ``%`` and ``:`` pass through untouched.

    One statement per call on asyncpg, and on Citus (in sequential mode, see
    :mod:`pgtrigger.citus`): create_all and Alembic operations send their SQL through here.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._split = one_statement_driver(connection)
        self._citus: bool | None = None
        self.round_trips = 0

    def on_citus(self) -> bool:
        if self._citus is None:
            self._citus = on_citus(self.connection)
            if self._citus:
                self.round_trips += 1
                self.connection.exec_driver_sql(citus.SEQUENTIAL, execution_options=_NO_PARAMETERS)
        return self._citus

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        self.round_trips += 1
        result = self.connection.exec_driver_sql(sql, execution_options=_NO_PARAMETERS)
        return [tuple(row) for row in result.fetchall()]

    def execute(self, sql: str) -> None:
        split = self.on_citus() or self._split
        statements = sqltext.split_statements(sql) if split else [sql]
        for statement in statements:
            self.round_trips += 1
            self.connection.exec_driver_sql(statement, execution_options=_NO_PARAMETERS)
