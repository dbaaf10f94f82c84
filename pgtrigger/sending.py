"""Sending ``pgtrigger.ignore`` / ``schema`` state over DB-API connections.

The integrations (SQLAlchemy, Django) decide *when* a connection must carry a state; this
module decides *how*, per driver (psycopg 3, psycopg2, asyncpg), always as transaction-local
settings: ``send_state`` inside a transaction, ``begin_with_state`` for the transaction's
own ``BEGIN`` on psycopg 3, and for an autocommit statement either the state in its own query
string (``inline_prefix`` / ``with_inline_state``) or a ``ShortTransaction`` around it.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Any

from pgtrigger import citus
from pgtrigger.runtime import DEFAULT, State, apply_sql, citus_statements, state_parts


def _placeholders(paramstyle: str, count: int) -> list[str]:
    if paramstyle == "numeric_dollar":
        return [f"${i}" for i in range(1, count + 1)]
    if paramstyle == "numeric":
        return [f":{i}" for i in range(1, count + 1)]
    if paramstyle == "qmark":
        return ["?"] * count
    return ["%s"] * count


def run_dbapi(
    dbapi_connection: Any, paramstyle: str, sql: str, params: tuple[Any, ...]
) -> list[Any]:
    """Run one statement on a raw DB-API connection ("{}" marks the parameters in ``sql``)."""
    marks = _placeholders(paramstyle, len(params))
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql.format(*marks), params)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


def run_script(dbapi_connection: Any, sql: str) -> None:
    """Run ``sql`` (no bind parameters; may hold several statements) in one round trip."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def send_state(
    dbapi_connection: Any, paramstyle: str, state: State, *, carried: State | None
) -> None:
    """Make the current transaction carry ``state``: one ``SELECT set_config(...)``.

    Settings are transaction-local, never session-level: a transaction-pooling proxy may give
    the server connection to another client as soon as this transaction ends. ``carried`` is
    what the transaction carries now (None: unknown). Values go as bind parameters; on Citus
    as standalone ``SET LOCAL`` statements, which reach the workers (``citus_statements``).
    """
    if citus.is_citus(dbapi_connection):
        for statement in citus_statements(state, carried):
            run_script(dbapi_connection, statement)
        return
    params: list[str] = []

    def value(text: str) -> str:
        params.append(text)
        return "{}"

    sql = "SELECT " + ", ".join(state_parts(state, carried, value))
    run_dbapi(dbapi_connection, paramstyle, sql, tuple(params))


def is_psycopg3(dbapi_connection: Any) -> bool:
    module = type(dbapi_connection).__module__
    return module.startswith("psycopg.") or module == "psycopg"


def _begin_command(dbapi_connection: Any, autocommit: bool) -> str:
    """The ``BEGIN`` psycopg 3 would send itself, with the connection's transaction options."""
    if autocommit:
        return "BEGIN"  # autocommit statements run with the server's defaults
    words = ["BEGIN"]
    level = getattr(dbapi_connection, "isolation_level", None)
    if level is not None:
        words.append("ISOLATION LEVEL " + level.name.replace("_", " "))
    read_only = getattr(dbapi_connection, "read_only", None)
    if read_only is not None:
        words.append("READ ONLY" if read_only else "READ WRITE")
    deferrable = getattr(dbapi_connection, "deferrable", None)
    if deferrable is not None:
        words.append("DEFERRABLE" if deferrable else "NOT DEFERRABLE")
    return " ".join(words)


def can_begin_with_state(dbapi_connection: Any) -> bool:
    """May we open the transaction ourselves, carrying the state in the same round trip?

    Only for a psycopg 3 (sync) connection outside autocommit and pipeline mode: psycopg 3 asks
    libpq whether a transaction is open before sending its own ``BEGIN`` (and before
    ``COMMIT``/``ROLLBACK``), so it carries on with ours. psycopg2 keeps its own flag, asyncpg
    prepares every statement, and async connections must not block on a round trip.
    """
    if not is_psycopg3(dbapi_connection):
        return False
    import psycopg

    return (
        isinstance(dbapi_connection, psycopg.Connection)
        and not dbapi_connection.autocommit
        and getattr(dbapi_connection, "_pipeline", None) is None
        and transaction_status(dbapi_connection) == "IDLE"
    )


def _exec_on_libpq(dbapi_connection: Any, sql: str) -> None:
    """Run ``sql`` on psycopg 3's libpq connection: no cursor, so no ``BEGIN`` of its own."""
    import psycopg

    encoding = dbapi_connection.info.encoding
    with dbapi_connection.lock:
        result = dbapi_connection.pgconn.exec_(sql.encode(encoding))
    if result.status not in (psycopg.pq.ExecStatus.COMMAND_OK, psycopg.pq.ExecStatus.TUPLES_OK):
        raise psycopg.errors.error_from_result(result, encoding=encoding)


def begin_with_state(
    dbapi_connection: Any, paramstyle: str, state: State, *, autocommit: bool
) -> None:
    """Open a transaction carrying ``state``: ``BEGIN; SELECT set_config(...)``.

    ``autocommit``: the connection is in autocommit and the caller ends the transaction right
    after the statement (which then runs as in autocommit, but with transaction-local
    settings): one round trip on psycopg 3 and psycopg2, two on asyncpg. Otherwise the
    connection must pass ``can_begin_with_state``: the ``BEGIN`` its driver would have sent
    carries the state, so applying it costs no round trip.
    """
    if paramstyle == "numeric_dollar":  # asyncpg: one prepared statement at a time
        run_dbapi(dbapi_connection, paramstyle, "BEGIN", ())
        send_state(dbapi_connection, paramstyle, state, carried=DEFAULT)
        return
    if citus.is_citus(dbapi_connection):  # each SET LOCAL in a query string of its own
        run = run_script if autocommit else _exec_on_libpq
        run(dbapi_connection, _begin_command(dbapi_connection, autocommit))
        for statement in citus_statements(state, DEFAULT):
            run(dbapi_connection, statement)
        return
    script = f"{_begin_command(dbapi_connection, autocommit)}; {apply_sql(state)}"
    if autocommit:
        run_script(dbapi_connection, script)
    else:
        _exec_on_libpq(dbapi_connection, script)


def end_transaction(dbapi_connection: Any, *, commit: bool) -> None:
    """``COMMIT`` (or ``ROLLBACK``) the transaction ``begin_with_state`` opened in autocommit."""
    run_script(dbapi_connection, "COMMIT" if commit else "ROLLBACK")


class ShortTransaction:
    """One autocommit statement run with transaction-local state; ``close()`` right after it.

    ``BEGIN; SELECT set_config(...)`` before the statement (one round trip; two on asyncpg),
    ``COMMIT`` after it (``ROLLBACK`` after an error): the statement runs as in autocommit,
    and nothing outlives it on the server connection, which a transaction-pooling proxy may
    hand to another client as soon as the transaction ends.

    (Not a psycopg 3 pipeline, which would spare both round trips: leaving one may send a
    Flush after the Sync, and pgbouncer, at least up to 1.18, then ties its only server
    connection to the idle client, so every other client waits.)
    """

    __slots__ = ("_dbapi",)

    def __init__(self, dbapi_connection: Any, paramstyle: str, state: State) -> None:
        self._dbapi = dbapi_connection
        begin_with_state(dbapi_connection, paramstyle, state, autocommit=True)

    def close(self, error: BaseException | None = None) -> None:
        """Commit after success; after ``error``, roll back (never raising over it).

        On success, an error only the commit reveals (a deferred constraint) is raised here.
        """
        if error is None:
            end_transaction(self._dbapi, commit=True)
            return
        if not getattr(self._dbapi, "closed", False):
            with contextlib.suppress(Exception):
                end_transaction(self._dbapi, commit=False)


def inline_prefix(dbapi_cursor: Any, statement: Any, params: Any, many: bool) -> bool:
    """May ``statement`` carry the state in its own query string (no extra round trip)?

    Only on a cursor that binds parameters on the client and sends one simple query (psycopg2,
    psycopg 3's ``ClientCursor`` as Django uses it), not named (server-side) and not
    ``executemany``: PostgreSQL runs the statements of one simple query as one implicit
    transaction, so ``SELECT set_config(..., true); <statement>`` holds for the statement and
    ends with it, also behind a transaction-pooling proxy. Server-side binding (psycopg 3's
    default cursor, asyncpg) cannot take two statements: ``ShortTransaction`` serves those.
    """
    if many or not isinstance(statement, (str, bytes)) or getattr(dbapi_cursor, "name", None):
        return False
    if not wrappable_in_autocommit(_text(statement)):
        return False
    if not (_is_psycopg2_cursor(dbapi_cursor) or _is_client_cursor(dbapi_cursor)):
        return False
    return not citus.is_citus(dbapi_cursor.connection)  # Citus: SET LOCAL stands alone


def _is_psycopg2_cursor(dbapi_cursor: Any) -> bool:
    extensions = sys.modules.get("psycopg2.extensions")
    return extensions is not None and isinstance(dbapi_cursor, extensions.cursor)


def _is_client_cursor(dbapi_cursor: Any) -> bool:
    psycopg = sys.modules.get("psycopg")
    client_cursor = getattr(psycopg, "ClientCursor", None)
    return client_cursor is not None and isinstance(dbapi_cursor, client_cursor)


def _text(statement: str | bytes) -> str:
    """A query as text (Django and psycopg2 also take UTF-8 bytes)."""
    return statement.decode() if isinstance(statement, bytes) else statement


def with_inline_state(state: State, statement: Any, carried: State | None = DEFAULT) -> Any:
    """``statement`` preceded by the ``set_config`` of ``state`` (see ``inline_prefix``);
    ``carried``: what the transaction carries now (DEFAULT in autocommit, None: unknown).

    The values are literals (``sqltext``). None when they hold a ``%`` (a schema name): the
    driver may or may not interpolate parameters into the string, so that one goes another
    way (a ``ShortTransaction``, or its own statement inside a transaction).
    """
    prefix = apply_sql(state, carried)
    if "%" in prefix:
        return None
    if isinstance(statement, bytes):  # the query keeps its type
        return f"{prefix}; ".encode() + statement
    return f"{prefix}; {statement}"


def skip_to_last_result(dbapi_cursor: Any) -> None:
    """Leave the cursor on the user's statement's result (psycopg 3 starts on the first)."""
    nextset = getattr(dbapi_cursor, "nextset", None)
    if nextset is None or _is_psycopg2_cursor(dbapi_cursor):
        return  # psycopg2 shows the last result already
    while nextset():
        pass


def short_transaction(
    dbapi_connection: Any, paramstyle: str, state: State, statement: Any
) -> ShortTransaction | None:
    """Open a ``ShortTransaction`` for an autocommit ``statement``, or None if it may not have one.

    None for the commands PostgreSQL refuses in a transaction block and for transaction
    control: those run as they are, without the state.
    """
    if not wrappable_in_autocommit(statement):
        return None
    return ShortTransaction(dbapi_connection, paramstyle, state)


#: Statements that cannot run inside a transaction block (so never wrapped in one), and
#: transaction control: matched on the statement's first words (after any parentheses).
_NO_TRANSACTION_BLOCK = re.compile(
    r"""\s*\(*\s*(?:
        VACUUM | CLUSTER | REINDEX | ALTER\s+SYSTEM
      | (?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)
      | CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY | DROP\s+INDEX\s+CONCURRENTLY
      | BEGIN | START\s+TRANSACTION | COMMIT | END | ROLLBACK | ABORT | SAVEPOINT | RELEASE
      | PREPARE\s+TRANSACTION
    )(?![\w$])""",
    re.IGNORECASE | re.VERBOSE,
)


def wrappable_in_autocommit(statement: Any) -> bool:
    """May an autocommit statement run inside a short transaction of ours?

    Not transaction control, and not the few commands PostgreSQL refuses in a transaction
    block (``VACUUM``, ``CREATE DATABASE``, ``... CONCURRENTLY``; ``CLUSTER`` and ``REINDEX``
    too, to be safe): those run as they are, without the state.
    """
    return not isinstance(statement, str) or _NO_TRANSACTION_BLOCK.match(statement) is None


_PSYCOPG2_STATUS = {0: "IDLE", 1: "ACTIVE", 2: "INTRANS", 3: "INERROR", 4: "UNKNOWN"}


def transaction_status(dbapi_connection: Any) -> str:
    """IDLE, ACTIVE, INTRANS, INERROR or UNKNOWN, for psycopg 3, psycopg2 and others."""
    asyncpg_connection = getattr(dbapi_connection, "_connection", None)
    in_transaction = getattr(asyncpg_connection, "is_in_transaction", None)
    if in_transaction is not None:  # SQLAlchemy's asyncpg adapter
        return "INTRANS" if in_transaction() else "IDLE"
    info = getattr(dbapi_connection, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is None:
        getter = getattr(dbapi_connection, "get_transaction_status", None)
        status = getter() if getter is not None else None
    if status is None:
        return "UNKNOWN"
    name = getattr(status, "name", None)  # psycopg 3 enum
    return str(name) if name is not None else _PSYCOPG2_STATUS.get(int(status), "UNKNOWN")
