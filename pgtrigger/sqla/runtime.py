"""Apply ``pgtrigger.ignore`` / ``schema`` state to SQLAlchemy connections.

Before each statement a connection compares the state it carries with the current context's
state (``contextvars``) and, only when they differ, sends one ``set_config`` statement with
bind parameters. Inside a transaction the settings are transaction-local (so commit and
rollback clear them: at most one extra statement per transaction per change of state); in
autocommit they are session-level and reset as soon as the state changes, and when the
connection goes back to the pool. User statements are never rewritten.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import Pool

from pgtrigger import runtime

LOGGER = logging.getLogger("pgtrigger")
KEY = "pgtrigger.state"

# info[KEY] is None (nothing carried) or (id of the DBAPI connection, State or None, session):
# State None means "unknown" (after a savepoint rollback, a failed reset): always re-apply.


def carries(info: dict[str, Any], dbapi_connection: Any, state: runtime.State) -> bool:
    """Does the connection already carry ``state``? (The per-statement check: cheap.)"""
    entry = info.get(KEY)
    if entry is None:
        return state.is_default
    return bool(entry[1] == state and entry[0] == id(dbapi_connection))


def apply_state(
    info: dict[str, Any], dbapi_connection: Any, paramstyle: str, state: runtime.State
) -> None:
    """Make ``dbapi_connection`` carry ``state`` with one statement."""
    entry = info.get(KEY)
    if entry is None or entry[0] != id(dbapi_connection):
        carried, session = runtime.DEFAULT, False
    else:
        carried, session = entry[1], entry[2]
    session = session or bool(getattr(dbapi_connection, "autocommit", False))
    runtime.send_state(
        dbapi_connection, paramstyle, state, carried=carried, session=session, memo=info
    )
    # Remember even the default: a savepoint rollback may bring an earlier state back.
    info[KEY] = (id(dbapi_connection), state, session)


_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _before_cursor_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    fairy = conn.connection
    state = runtime.current()
    if carries(fairy.info, fairy.dbapi_connection, state):
        return
    if conn.dialect.name != "postgresql" or _failed_transaction(fairy.dbapi_connection):
        return  # nothing can run in a failed transaction; its rollback must go first
    if isinstance(statement, str) and statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
        return  # SQLAlchemy's own savepoint statements: the next real statement applies state
    apply_state(fairy.info, fairy.dbapi_connection, conn.dialect.paramstyle, state)


def _failed_transaction(dbapi_connection: Any) -> bool:
    return runtime.transaction_status(dbapi_connection) == "INERROR"


def _committed(conn: Connection, *args: Any) -> None:
    info = conn.connection.info
    entry = info.get(KEY)
    if entry is not None and not entry[2]:
        info[KEY] = None  # transaction-local settings ended with the transaction


def _rolled_back(conn: Connection, *args: Any) -> None:
    info = conn.connection.info
    entry = info.get(KEY)
    if entry is None:
        return
    if not entry[2]:
        info[KEY] = None
    else:
        info[KEY] = (entry[0], None, True)  # a rollback may have undone a session-level set


def _savepoint_rolled_back(conn: Connection, *args: Any) -> None:
    info = conn.connection.info
    entry = info.get(KEY)
    if entry is not None:
        # Settings made inside the savepoint are gone, earlier ones stay: re-apply next time.
        info[KEY] = (entry[0], None, entry[2])


def _checkin(dbapi_connection: Any, record: Any) -> None:
    info = record.info
    entry = info.get(KEY)
    if entry is None or dbapi_connection is None:
        return
    if not entry[2]:
        info[KEY] = None  # the pool's reset rolls back, ending transaction-local settings
        return
    if entry[1] == runtime.DEFAULT:
        return
    try:
        apply_state(info, dbapi_connection, _paramstyle(dbapi_connection), runtime.DEFAULT)
        if not getattr(dbapi_connection, "autocommit", False):
            # Autocommit was already switched back off: make the reset stick.
            dbapi_connection.commit()
    except Exception:  # the next statement through SQLAlchemy resets it instead
        LOGGER.warning("pgtrigger: could not reset a pooled connection's state", exc_info=True)
        info[KEY] = (entry[0], None, True)


def _paramstyle(dbapi_connection: Any) -> str:
    module = type(dbapi_connection).__module__
    return "numeric_dollar" if "asyncpg" in module else "format"


_installed = False


def install_hooks() -> None:
    """Listen on every Engine and Pool (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(Engine, "commit", _committed)
    event.listen(Engine, "rollback", _rolled_back)
    event.listen(Engine, "rollback_savepoint", _savepoint_rolled_back)
    event.listen(Pool, "checkin", _checkin)
    _installed = True
