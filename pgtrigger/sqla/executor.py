"""The core engine's ``Executor`` over a SQLAlchemy ``Connection``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from pgtrigger import sqltext

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


class ConnectionExecutor:
    """Runs the engine's parameterless SQL; ``%`` and ``:`` pass through untouched."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._split = one_statement_driver(connection)
        self.round_trips = 0

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        self.round_trips += 1
        result = self.connection.exec_driver_sql(sql, execution_options=_NO_PARAMETERS)
        return [tuple(row) for row in result.fetchall()]

    def execute(self, sql: str) -> None:
        statements = sqltext.split_statements(sql) if self._split else [sql]
        for statement in statements:
            self.round_trips += 1
            self.connection.exec_driver_sql(statement, execution_options=_NO_PARAMETERS)
