"""Apply ``pgtrigger.ignore`` / ``schema`` state to Django's database connections.

An execute wrapper on every PostgreSQL connection compares, before each query, the state the
connection carries with the current context's and sends one ``set_config`` only when they
differ. Inside ``transaction.atomic`` the settings are transaction-local: one extra statement
per transaction per change of state, whatever the number of queries. In autocommit (Django's
default outside atomic blocks) they are session-level, reset as soon as the state changes and
when a request finishes. User SQL is never rewritten, so named cursors, server-side binding
and failed transactions need no special cases.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.core.signals import request_finished
from django.db import connections
from django.db.backends.signals import connection_created

from pgtrigger import runtime

_UNKNOWN = runtime.State(schemas=("\x00unknown",))  # never equal to a real state
_IDLE, _INERROR = "IDLE", "INERROR"


def _transaction_status(dbapi: Any) -> str:
    return runtime.transaction_status(dbapi)


class _Carried:
    """What one connection carries: a session-level state and the current transaction's."""

    __slots__ = ("local", "memo", "session")

    def __init__(self) -> None:
        self.session = runtime.DEFAULT
        self.local: runtime.State | None = None
        self.memo: dict[str, Any] = {}


# What each *database* connection carries. Keyed by the DB-API connection, not Django's
# wrapper: pooled connections (psycopg pool, persistent connections) move between wrappers.
_by_dbapi: weakref.WeakKeyDictionary[Any, _Carried] = weakref.WeakKeyDictionary()


def _carried(connection: Any) -> _Carried:
    dbapi = connection.connection
    carried = _by_dbapi.get(dbapi)
    if carried is None:
        carried = _by_dbapi[dbapi] = _Carried()
    return carried


def _peek(connection: Any) -> _Carried | None:
    dbapi = connection.connection
    return None if dbapi is None else _by_dbapi.get(dbapi)


def ensure(connection: Any, state: runtime.State) -> None:
    """Make ``connection`` carry ``state`` before its next query (at most one statement)."""
    dbapi = connection.connection
    carried = _carried(connection)
    status = _transaction_status(dbapi)
    if status == _IDLE:
        carried.local = None  # the transaction that carried local settings has ended
    effective = carried.local if carried.local is not None else carried.session
    if effective == state or status == _INERROR:
        return
    if connection.get_autocommit():
        runtime.send_state(
            dbapi, "format", state, carried=carried.session, session=True, memo=carried.memo
        )
        carried.session, carried.local = state, None
    else:
        runtime.send_state(
            dbapi, "format", state, carried=effective, session=False, memo=carried.memo
        )
        carried.local = state


def _wrapper(execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    connection = context["connection"]
    state = runtime.current()
    carried = _peek(connection)
    if (carried is None and state.is_default) or (
        carried is not None
        and carried.local is None
        and carried.session == state
        and connection.get_autocommit()
    ):
        return execute(sql, params, many, context)
    ensure(connection, state)
    result = execute(sql, params, many, context)
    if isinstance(sql, str) and sql.lstrip()[:20].upper().startswith("ROLLBACK TO SAVEPOINT"):
        _carried(connection).local = _UNKNOWN  # settings made inside the savepoint are gone
    return result


def install_wrapper(connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql" and _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(_wrapper)


def _reset_after_request(**kwargs: Any) -> None:
    for connection in connections.all(initialized_only=True):
        carried = _peek(connection)
        if carried is None:
            continue
        if carried.session != runtime.DEFAULT and connection.get_autocommit():
            try:
                ensure(connection, runtime.DEFAULT)
            except Exception:  # a broken connection is discarded by Django anyway
                carried.session = _UNKNOWN


def setup() -> None:
    connection_created.connect(install_wrapper, dispatch_uid="pgtrigger.runtime")
    request_finished.connect(_reset_after_request, dispatch_uid="pgtrigger.runtime.reset")
    for connection in connections.all():
        install_wrapper(connection)
