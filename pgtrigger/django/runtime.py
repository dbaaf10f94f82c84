"""Apply ``pgtrigger.ignore`` / ``schema`` state to Django's database connections.

An execute wrapper on every PostgreSQL connection compares, before each query, the state the
connection carries with the current context's and sends it only when they differ. Settings
are always transaction-local, so they end with the transaction and never reach another client
through a transaction-pooling proxy (pgbouncer):

- inside ``transaction.atomic``, one ``set_config`` per transaction per change of state: in
  the same round trip as the ``BEGIN`` on psycopg 3, else in front of the next query itself
  where the cursor allows it (as in autocommit, below), else as a statement of its own;
- in autocommit (Django's default outside atomic blocks), a query that runs while the state is
  not the default carries it in its own query string when the cursor binds parameters on the
  client (Django's default, and psycopg2): ``SELECT set_config(...); <query>``, one simple
  query that PostgreSQL runs as one implicit transaction, so no extra round trip. Otherwise
  (server-side binding, named cursors, executemany) it runs in a short transaction of its own
  (``sending.ShortTransaction``): ``BEGIN; set_config(...)``, the query, ``COMMIT``.

User SQL is never touched but for the prefix above, and only where the driver sends the query
as one simple query and no other execute wrapper is active.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from pgtrigger import citus, runtime, sending

_UNKNOWN = runtime.State(schemas=("\x00unknown",))  # never equal to a real state
_IDLE, _INTRANS, _INERROR = "IDLE", "INTRANS", "INERROR"


class _Carried:
    """What the current transaction of one connection carries (None: nothing yet)."""

    __slots__ = ("local",)

    def __init__(self) -> None:
        self.local: runtime.State | None = None


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
    """Make the transaction of ``connection`` carry ``state`` (at most one round trip)."""
    dbapi = connection.connection
    carried = _carried(connection)
    status = sending.transaction_status(dbapi)
    if status == _IDLE:
        carried.local = None  # the transaction that carried local settings has ended
    effective = carried.local if carried.local is not None else runtime.DEFAULT
    if effective == state or status == _INERROR:
        return
    # Errors (a dead connection, say) reach the application as Django's own exceptions, and
    # Django marks the connection unusable as for any query.
    with connection.wrap_database_errors:
        if status == _IDLE and sending.can_begin_with_state(dbapi):
            sending.begin_with_state(dbapi, "format", state, autocommit=False)
        else:
            sending.send_state(dbapi, "format", state, carried=carried.local)
    carried.local = state


def _in_own_transaction(
    connection: Any,
    state: runtime.State,
    execute: Any,
    sql: Any,
    params: Any,
    many: bool,
    context: dict[str, Any],
) -> Any:
    """Run an autocommit query in a short transaction carrying ``state``."""
    dbapi = connection.connection
    status = sending.transaction_status(dbapi)
    if status == _INTRANS:  # a transaction opened by hand (raw BEGIN): mark it, each time
        with connection.wrap_database_errors:
            sending.send_state(dbapi, "format", state, carried=None)
        return execute(sql, params, many, context)
    dbapi_cursor = context["cursor"].cursor
    if (
        status == _IDLE
        and connection.execute_wrappers[-1] is _wrapper  # no other wrapper sees our prefix
        and sending.inline_prefix(dbapi_cursor, sql, params, many)
    ):
        inlined = sending.with_inline_state(state, sql)
        if inlined is not None:  # one simple query, one implicit transaction: no round trip
            result = execute(inlined, params, many, context)
            sending.skip_to_last_result(dbapi_cursor)
            return result
    wrapped = None
    if status == _IDLE:
        with connection.wrap_database_errors:
            wrapped = sending.short_transaction(dbapi, "format", state, sql)
    if wrapped is None:
        return execute(sql, params, many, context)
    try:
        result = execute(sql, params, many, context)
    except BaseException as error:
        wrapped.close(error)
        raise
    with connection.wrap_database_errors:  # the query's own error may surface here
        wrapped.close()
    return result


def _inline_in_transaction(
    connection: Any, state: runtime.State, sql: Any, params: Any, many: bool, context: Any
) -> Any:
    """The query carrying the state change itself, ``SELECT set_config(...); <query>``, when
    the transaction must change state and no cheaper way exists; else None.

    Cheaper: none needed, or psycopg 3 opening the transaction (the state rides with its
    ``BEGIN``). Only where ``sending.inline_prefix`` allows, and only when no other execute
    wrapper would see our prefix in place of the query it expects.
    """
    dbapi = connection.connection
    carried = _carried(connection)
    status = sending.transaction_status(dbapi)
    if status == _IDLE:
        carried.local = None
    effective = carried.local if carried.local is not None else runtime.DEFAULT
    if effective == state or status == _INERROR:
        return None
    if status == _IDLE and sending.can_begin_with_state(dbapi):
        return None
    if connection.execute_wrappers[-1] is not _wrapper:
        return None
    if not sending.inline_prefix(context["cursor"].cursor, sql, params, many):
        return None
    return sending.with_inline_state(state, sql, carried.local)


def _wrapper(execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    connection = context["connection"]
    state = runtime.current()
    if connection.get_autocommit():
        if state.is_default:
            return execute(sql, params, many, context)
        return _in_own_transaction(connection, state, execute, sql, params, many, context)
    carried = _peek(connection)
    if carried is None and state.is_default:
        return execute(sql, params, many, context)
    inlined = _inline_in_transaction(connection, state, sql, params, many, context)
    if inlined is not None:  # no round trip of ours: the query carries the change
        try:
            result = execute(inlined, params, many, context)
        except BaseException:
            _carried(connection).local = _UNKNOWN  # set_config may or may not have run
            raise
        sending.skip_to_last_result(context["cursor"].cursor)
        _carried(connection).local = state
        return result
    ensure(connection, state)
    result = execute(sql, params, many, context)
    if isinstance(sql, str) and sql.lstrip()[:20].upper().startswith("ROLLBACK TO SAVEPOINT"):
        _carried(connection).local = _UNKNOWN  # settings made inside the savepoint are gone
    return result


def install_wrapper(connection: Any, **kwargs: Any) -> None:
    """Put our wrapper at the bottom of the connection's wrapper stack (outermost).

    Other libraries push and pop their own with ``connection.execute_wrapper()``, and Django
    pops the *last* one when such a block ends: appended after theirs (a connection opened
    inside ``pghistory.context()``), ours would be popped in their place, leaving theirs on
    forever. Outermost, ours never sits on top of one still active; and since a wrapper
    below us would see the SQL we pass on, we inline the state in a query only when no other
    wrapper is active (else a short transaction carries it, leaving their SQL untouched).
    """
    if connection.vendor != "postgresql":
        return
    if _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _wrapper)
    if connection.connection is not None:  # asked once per connection (see pgtrigger.citus)
        with connection.wrap_database_errors:
            citus.is_citus(connection.connection)


def setup() -> None:
    connection_created.connect(install_wrapper, dispatch_uid="pgtrigger.runtime")
    for connection in connections.all():
        install_wrapper(connection)
