"""Apply ``pgtrigger.ignore`` / ``schema`` state to SQLAlchemy connections.

Before each statement a connection compares the state it carries with the current context's
state (``contextvars``) and, only when they differ, sends it. Settings are always
transaction-local, so they end with the transaction on their own and never reach another
client through a transaction-pooling proxy:

- in a transaction, one ``set_config`` per transaction per change of state; on psycopg 3 it
  rides with the ``BEGIN`` the driver would send anyway (no extra round trip);
- in autocommit, a statement that runs while the state is not the default carries it in its
  own query string where the driver sends one simple query (psycopg2, psycopg 3's
  ``ClientCursor``): ``SELECT set_config(...); <statement>``, one implicit transaction, no
  extra round trip; elsewhere (psycopg 3's server-side binding, asyncpg) it runs in a short
  transaction of its own (``sending.ShortTransaction``): ``BEGIN; set_config(...)``, the
  statement, ``COMMIT``.

Inside transactions user statements are never touched; in autocommit only the prefix above.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import Pool

from pgtrigger import citus, runtime, sending

LOGGER = logging.getLogger("pgtrigger")
KEY = "pgtrigger.state"
#: A connection's info holds the ``sending.ShortTransaction`` its autocommit statement runs in.
WRAPPED = "pgtrigger.wrapped"
#: Set while an autocommit statement carries the state in its own query string.
INLINED = "pgtrigger.inlined"

# info[KEY] is None (nothing carried) or (id of the DBAPI connection, State or None): the state
# the current transaction carries; None means "unknown" (after a savepoint rollback): re-apply.


def carries(info: dict[str, Any], dbapi_connection: Any, state: runtime.State) -> bool:
    """Does the connection already carry ``state``? (The per-statement check: cheap.)"""
    entry = info.get(KEY)
    if entry is None:
        return state.is_default
    return bool(entry[1] == state and entry[0] == id(dbapi_connection))


def apply_state(
    info: dict[str, Any], dbapi_connection: Any, paramstyle: str, state: runtime.State
) -> None:
    """Make the transaction of ``dbapi_connection`` carry ``state`` (one round trip)."""
    entry = info.get(KEY)
    if sending.can_begin_with_state(dbapi_connection):
        sending.begin_with_state(dbapi_connection, paramstyle, state, autocommit=False)
    else:
        carried = runtime.DEFAULT if entry is None or entry[0] != id(dbapi_connection) else entry[1]
        sending.send_state(dbapi_connection, paramstyle, state, carried=carried)
    # Remember even the default: a savepoint rollback may bring an earlier state back.
    info[KEY] = (id(dbapi_connection), state)


_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _before_cursor_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    fairy = conn.connection
    dbapi_connection = fairy.dbapi_connection
    state = runtime.current()
    if carries(fairy.info, dbapi_connection, state):
        return statement, parameters
    if conn.dialect.name != "postgresql":
        return statement, parameters
    status = sending.transaction_status(dbapi_connection)
    if status == "INERROR":
        return statement, parameters  # a failed transaction: its rollback must go first
    if isinstance(statement, str) and statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
        return statement, parameters  # SQLAlchemy's own savepoints: the next statement applies
    paramstyle = conn.dialect.paramstyle
    if getattr(dbapi_connection, "autocommit", False):
        # Nothing is carried between autocommit statements (KEY stays None).
        if status == "INTRANS":  # a transaction the user opened by hand: mark it, each time
            sending.send_state(dbapi_connection, paramstyle, state, carried=None)
        elif not _server_side(context):
            if status == "IDLE" and sending.inline_prefix(
                cursor, statement, parameters, executemany
            ):
                inlined = sending.with_inline_state(state, statement)
                if inlined is not None:  # one simple query, one implicit transaction
                    fairy.info[INLINED] = True
                    return inlined, parameters
            wrapped = sending.short_transaction(dbapi_connection, paramstyle, state, statement)
            if wrapped is not None:
                fairy.info[WRAPPED] = wrapped
        return statement, parameters
    apply_state(fairy.info, dbapi_connection, paramstyle, state)
    return statement, parameters


def _server_side(context: Any) -> bool:
    # A server-side cursor outlives the statement; it cannot live in a transaction we commit
    # right away (and in autocommit it needs a transaction of the user's anyway).
    return bool(getattr(context, "_is_server_side", False))


def _info(conn: Connection) -> dict[str, Any] | None:
    """The pooled connection's info; None once SQLAlchemy invalidated it (a disconnect): the
    pool discards that connection, and with it whatever its transaction carried."""
    if conn.invalidated or conn.closed:
        return None
    return conn.connection.info


def _after_cursor_execute(conn: Connection, cursor: Any, *args: Any) -> None:
    info = _info(conn)
    if info is not None and info.pop(INLINED, False):
        sending.skip_to_last_result(cursor)
    wrapped = None if info is None else info.pop(WRAPPED, None)
    if wrapped is not None:
        wrapped.close()  # an error raised here is the statement's: SQLAlchemy wraps it


def _handle_error(context: Any) -> None:
    conn = context.connection
    info = None if conn is None else _info(conn)
    if info is not None:
        info.pop(INLINED, None)
    wrapped = None if info is None else info.pop(WRAPPED, None)
    if wrapped is not None:
        wrapped.close(context.original_exception)


def _forget(conn: Connection, *args: Any) -> None:
    """Commit or rollback: transaction-local settings ended with the transaction."""
    info = _info(conn)
    if info is not None:
        info[KEY] = None


def _savepoint_rolled_back(conn: Connection, *args: Any) -> None:
    info = _info(conn)
    entry = None if info is None else info.get(KEY)
    if info is not None and entry is not None:
        # Settings made inside the savepoint are gone, earlier ones stay: re-apply next time.
        info[KEY] = (entry[0], None)


def _connect(dbapi_connection: Any, record: Any) -> None:
    """Ask once, as the connection opens, whether it is on Citus: state is then sent as
    Citus needs it (``runtime.citus_statements``) without a question on the way."""
    module = type(dbapi_connection).__module__
    if module.split(".")[0] in ("psycopg", "psycopg2") or ".postgresql." in module:
        citus.is_citus(dbapi_connection)


def _checkin(dbapi_connection: Any, record: Any) -> None:
    # The pool's reset rolls back (or the connection is closed): transaction-local settings
    # are gone with it.
    record.info.pop(KEY, None)
    record.info.pop(WRAPPED, None)
    record.info.pop(INLINED, None)


_installed = False


def install_hooks() -> None:
    """Listen on every Engine and Pool (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute, retval=True)
    event.listen(Engine, "after_cursor_execute", _after_cursor_execute)
    event.listen(Engine, "handle_error", _handle_error)
    event.listen(Engine, "commit", _forget)
    event.listen(Engine, "rollback", _forget)
    event.listen(Engine, "rollback_savepoint", _savepoint_rolled_back)
    event.listen(Pool, "checkin", _checkin)
    event.listen(Pool, "connect", _connect)
    _installed = True
