"""Shared helpers for the SQLAlchemy integration tests (``tests.sqla.helpers``).

Every test module declares its own tables (names prefixed by the module) because the trigger
registry is global: a URI may be registered once per process. Each module gets one database
per server (``module_database``) and creates its tables there once.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import pgtrigger.sqla  # noqa: F401  (installs the Engine/Pool hooks)

SYNC_DRIVERS = ("psycopg", "psycopg2")
ASYNC_DRIVERS = ("psycopg_async", "asyncpg")
DRIVERS = SYNC_DRIVERS + ASYNC_DRIVERS

#: The SQL that shows what a connection carries.
STATE_SQL = "SELECT current_setting('pgtrigger.ignore', true), current_setting('search_path')"
#: What a connection that carries no pgtrigger state reports for ``pgtrigger.ignore``.
NO_IGNORE = (None, "", "{}")  # never set, cleared by django-pgtrigger, cleared by us

# The error text each installed trigger raises (psycopg, psycopg2 and asyncpg all carry it).
CANNOT_UPDATE = "pgtrigger: Cannot update rows from"
CANNOT_DELETE = "pgtrigger: Cannot delete rows from"


def make_engine(database: Any, driver: str = "psycopg", **kwargs: Any) -> Engine:
    return create_engine(database.sqlalchemy_url(driver), **kwargs)


def make_async_engine(database: Any, driver: str = "psycopg_async", **kwargs: Any) -> AsyncEngine:
    return create_async_engine(database.sqlalchemy_url(driver), **kwargs)


@contextlib.contextmanager
def created(database: Any, metadata: MetaData, **kwargs: Any) -> Iterator[Engine]:
    """A psycopg engine on ``database`` with ``metadata``'s tables (and triggers) created."""
    engine = make_engine(database, **kwargs)
    try:
        metadata.create_all(engine)
        yield engine
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def pgtrigger_functions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT n.nspname || '.' || p.proname FROM pg_proc p"
                    " JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE p.proname LIKE 'pgtrigger\\_%' ORDER BY 1"
                )
            ).scalars()
        )


def installed_triggers(bind: Any) -> list[tuple[str, str, str, bool]]:
    """(schema, table, trigger name, enabled) of every pgtrigger trigger in the database."""
    sql = text(
        "SELECT n.nspname, c.relname, t.tgname, t.tgenabled <> 'D' FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE t.tgname LIKE 'pgtrigger\\_%' ORDER BY 1, 2, 3"
    )
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return [tuple(row) for row in conn.execute(sql)]  # type: ignore[misc]
    return [tuple(row) for row in bind.execute(sql)]  # type: ignore[misc]


def attempt(conn: Any, statement: Any, params: Any = None) -> str | None:
    """Run ``statement`` in a transaction of its own, rolled back; the error's first line or None.

    (No savepoint: a failed statement ends the whole transaction, as in most applications.)
    """
    try:
        conn.execute(statement, params) if params is not None else conn.execute(statement)
    except DBAPIError as exc:
        return error_text(exc)
    finally:
        conn.rollback()
    return None


def error_text(exc: BaseException) -> str:
    """The server's message (first line), whatever the driver's exception looks like."""
    message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    # asyncpg errors read "<class 'asyncpg.exceptions.RaiseError'>: message"
    return re.sub(r"^<class '[\w.]+'>: ", "", message)


# -- one test body for sync and async drivers -------------------------------------------------
# Test bodies are coroutines; ``aw(x)`` awaits ``x`` when an async driver returned an awaitable
# and passes a sync driver's result through, so both paths run the same assertions.


async def aw(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def is_async(driver: str) -> bool:
    return driver in ASYNC_DRIVERS


@contextlib.asynccontextmanager
async def engine_for(database: Any, driver: str, **kwargs: Any) -> AsyncIterator[Any]:
    """An Engine or AsyncEngine of ``driver``, disposed at the end."""
    if is_async(driver):
        async_engine = make_async_engine(database, driver, **kwargs)
        try:
            yield async_engine
        finally:
            await async_engine.dispose()
    else:
        engine = make_engine(database, driver, **kwargs)
        try:
            yield engine
        finally:
            engine.dispose()


@contextlib.asynccontextmanager
async def connection(engine: Any) -> AsyncIterator[Any]:
    """``engine.connect()`` for either kind of engine."""
    if isinstance(engine, AsyncEngine):
        async with engine.connect() as conn:
            yield conn
    else:
        with engine.connect() as conn:
            yield conn


@contextlib.asynccontextmanager
async def orm_session(engine: Any) -> AsyncIterator[Any]:
    """A Session or AsyncSession, closed at the end."""
    if isinstance(engine, AsyncEngine):
        async with AsyncSession(engine) as session:
            yield session
    else:
        with Session(engine) as session:
            yield session


async def outcome(conn: Any, statement: Any, params: Any = None) -> str | None:
    """:func:`attempt` for either kind of connection."""
    try:
        await aw(conn.execute(statement, params) if params is not None else conn.execute(statement))
    except DBAPIError as exc:
        return error_text(exc)
    finally:
        await aw(conn.rollback())
    return None


async def settings(conn: Any) -> tuple[Any, Any]:
    """(pgtrigger.ignore, search_path) as the connection's current transaction sees them."""
    row = (await aw(conn.execute(text(STATE_SQL)))).one()
    return row[0], row[1]
