"""State never outlives its context on any connection.

After each scenario every connection of a small pool is checked out at once and read through
the driver's own connection (``raw_connection`` / ``get_raw_connection``), which bypasses the
pgtrigger hooks, so the check sees the server's true state: no open transaction, no
``pgtrigger.ignore`` value, the default ``search_path``, and the same after a rollback (a reset
left uncommitted would be undone by it).

Scenarios: transactions (commit, rollback, pool reset), autocommit (engine-level and
connection-level), savepoints rolled back inside and outside ``ignore``, failed statements,
connections returned to the pool while still inside the context, server-side cursors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, MetaData, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger
from tests.sqla.helpers import (
    CANNOT_UPDATE,
    DRIVERS,
    NO_IGNORE,
    STATE_SQL,
    SYNC_DRIVERS,
    aw,
    connection,
    created,
    engine_for,
    outcome,
    settings,
)

P = "sqla_leak_"
SCHEMA = "public"  # an existing schema: pgtrigger.schema() sets exactly it
POOL_SIZE = 3

#: The hooks must never have to log a failed reset.
pytestmark = pytest.mark.usefixtures("no_warnings_from_pgtrigger")


class Base(DeclarativeBase):
    metadata = MetaData()


class Item(Base):
    __tablename__ = P + "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    qty: Mapped[int] = mapped_column(default=0)
    __table_args__ = (pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),)


URI = f"{P}item:protect_updates"
BUMP = update(Item).values(qty=Item.qty + 1)
DUPLICATE = insert(Item).values(id=1)


def ignored_value() -> str:
    return f"{{{pgtrigger.registry.pgid_of(URI)}}}"


@pytest.fixture(scope="module")
def tables(module_database: Any) -> Iterator[Engine]:
    with created(module_database, Base.metadata) as engine:
        with engine.begin() as conn:
            conn.execute(insert(Item), [{"id": i} for i in (1, 2, 3)])
        yield engine


@pytest.fixture(scope="module")
def base_path(module_database: Any) -> str:
    with psycopg.connect(module_database, autocommit=True) as conn:
        row = conn.execute("SHOW search_path").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, tables: Engine) -> str:
    return str(request.param)


@pytest.fixture
def clean(base_path: str) -> tuple[Any, ...]:
    """What ``pool_states`` reports for a connection that carries nothing."""
    return (False, "", base_path, "")


def engine_of(database: Any, driver: str, **kwargs: Any) -> Any:
    return engine_for(database, driver, pool_size=POOL_SIZE, max_overflow=0, **kwargs)


async def _raw_state(driver: str, dc: Any) -> tuple[Any, ...]:
    """(in a transaction, pgtrigger.ignore, search_path, pgtrigger.ignore after a rollback)."""
    ignore_sql = "SELECT current_setting('pgtrigger.ignore', true)"
    if driver == "asyncpg":
        busy = dc.is_in_transaction()
        ignore, path = await dc.fetchrow(STATE_SQL)
        if busy:
            await dc.execute("ROLLBACK")
        after = await dc.fetchval(ignore_sql)
    elif driver == "psycopg_async":
        busy = dc.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        ignore, path = await (await dc.execute(STATE_SQL)).fetchone()
        await dc.rollback()
        after = (await (await dc.execute(ignore_sql)).fetchone())[0]
        await dc.rollback()
    else:
        if driver == "psycopg":
            busy = dc.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        else:
            busy = dc.get_transaction_status() != 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE
        cursor = dc.cursor()
        cursor.execute(STATE_SQL)
        ignore, path = cursor.fetchone()
        dc.rollback()
        cursor.execute(ignore_sql)
        after = cursor.fetchone()[0]
        cursor.close()
        dc.rollback()
    # Never set, '' and '{}' all mean "nothing ignored": compare them as one.
    return (busy, "" if ignore in NO_IGNORE else ignore, path, "" if after in NO_IGNORE else after)


async def pool_states(engine: Any, driver: str) -> list[tuple[Any, ...]]:
    """The true state of every pooled connection, all checked out at once (hooks bypassed)."""
    states = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(POOL_SIZE):
            if isinstance(engine, AsyncEngine):
                conn = await stack.enter_async_context(engine.connect())
                raw = await conn.get_raw_connection()
            else:
                raw = engine.raw_connection()
                stack.callback(raw.close)
            states.append(await _raw_state(driver, raw.driver_connection))
    return states


async def carried(conn: Any) -> tuple[str, str]:
    """(pgtrigger.ignore, search_path without quotes) in the connection's transaction."""
    ignore, path = await settings(conn)
    return ignore or "", path.replace('"', "")


def run(coro: Any) -> None:
    asyncio.run(coro)


def test_transactions(module_database: Any, driver: str, clean: tuple[Any, ...]) -> None:
    async def main() -> None:
        async with engine_of(module_database, driver) as engine:
            async with connection(engine) as c1, connection(engine) as c2:
                with pgtrigger.ignore(URI), pgtrigger.schema(SCHEMA):
                    await aw(c1.execute(BUMP))
                    await aw(c1.commit())  # committed inside the context
                    await aw(c2.execute(BUMP))
                    await aw(c2.rollback())
                    async with connection(engine) as c3:
                        await aw(c3.execute(BUMP))  # closed with its transaction open
                assert (await settings(c1))[0] in (None, "")
                assert (await outcome(c1, BUMP) or "").startswith(CANNOT_UPDATE)
            async with connection(engine) as conn, pgtrigger.ignore(URI):
                await aw(conn.execute(update(Item).values(qty=0)))
                await aw(conn.commit())
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())


@pytest.mark.parametrize("level", ["engine", "connection"])
def test_autocommit(module_database: Any, driver: str, level: str, clean: tuple[Any, ...]) -> None:
    """Autocommit statements inside the context carry the state; nothing stays afterwards.

    ``level="connection"`` is ``Connection.execution_options(isolation_level="AUTOCOMMIT")``:
    SQLAlchemy restores the pool's isolation level when the connection is returned.
    """
    engine_options = {"isolation_level": "AUTOCOMMIT"} if level == "engine" else {}

    async def autocommit(conn: Any) -> Any:
        if level == "engine":
            return conn
        return await aw(conn.execution_options(isolation_level="AUTOCOMMIT"))

    async def main() -> None:
        async with engine_of(module_database, driver, **engine_options) as engine:
            async with connection(engine) as a, connection(engine) as b, connection(engine) as c:
                c1, c2, c3 = [await autocommit(x) for x in (a, b, c)]
                with pgtrigger.ignore(URI), pgtrigger.schema(SCHEMA):
                    await aw(c1.execute(BUMP))  # left without another statement
                    await aw(c2.execute(BUMP))
                    with pgtrigger.ignore(URI):
                        await aw(c3.execute(BUMP))
                        assert await carried(c3) == (ignored_value(), SCHEMA)
                # Nothing was left on the connections.
                assert (await settings(c2))[0] in NO_IGNORE
                assert (await outcome(c2, BUMP) or "").startswith(CANNOT_UPDATE)
            states = await pool_states(engine, driver)
            assert states == [clean] * POOL_SIZE
            async with connection(engine) as c1:
                assert (await outcome(await autocommit(c1), BUMP) or "").startswith(CANNOT_UPDATE)

    run(main())


def test_savepoint_rolled_back_inside_ignore(
    module_database: Any, driver: str, clean: tuple[Any, ...]
) -> None:
    async def main() -> None:
        async with engine_of(module_database, driver) as engine:
            async with connection(engine) as conn:
                await aw(conn.begin())
                with pgtrigger.ignore(URI):
                    await aw(conn.execute(BUMP))
                    savepoint = await aw(conn.begin_nested())
                    await aw(conn.execute(BUMP))
                    await aw(savepoint.rollback())
                    # Still ignored after the savepoint's rollback.
                    assert (await aw(conn.execute(BUMP))).rowcount == 3
                    savepoint = await aw(conn.begin_nested())
                    with pgtrigger.schema("pg_catalog"):
                        assert await carried(conn) == (ignored_value(), "pg_catalog")
                    await aw(savepoint.rollback())
                    assert (await settings(conn))[0] == ignored_value()
                    # A savepoint begun inside the context, rolled back after a statement
                    # that ran inside it, still inside the context.
                    savepoint = await aw(conn.begin_nested())
                    await aw(conn.execute(BUMP))
                    await aw(savepoint.rollback())
                    assert (await aw(conn.execute(BUMP))).rowcount == 3
                assert (await carried(conn))[0] in NO_IGNORE
                assert (await carried(conn))[1] != "pg_catalog"
                await aw(conn.commit())
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())


def test_savepoint_rolled_back_after_leaving_ignore(
    module_database: Any, driver: str, clean: tuple[Any, ...]
) -> None:
    """Context left inside a savepoint, savepoint rolled back: the trigger must fire again.

    Rolling back the savepoint undoes the reset made inside it, restoring the ignore value
    set before it; the next statement must not run with the trigger ignored.
    """

    async def main() -> None:
        async with engine_of(module_database, driver) as engine:
            async with connection(engine) as conn:
                await aw(conn.begin())
                with pgtrigger.ignore(URI):
                    await aw(conn.execute(BUMP))
                    savepoint = await aw(conn.begin_nested())
                await aw(conn.execute(select(Item.id)))  # outside the context, in the savepoint
                await aw(savepoint.rollback())
                assert not pgtrigger.is_ignored(URI)
                assert (await settings(conn))[0] in NO_IGNORE
                assert (await outcome(conn, BUMP) or "").startswith(CANNOT_UPDATE)
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())


def test_failed_statement_in_savepoint_inside_ignore(
    module_database: Any, driver: str, clean: tuple[Any, ...]
) -> None:
    """``try: with begin_nested(): ...`` inside ``ignore``: the savepoint rolls back cleanly,
    the original error propagates, and the transaction goes on (still ignoring)."""

    async def main() -> None:
        async with engine_of(module_database, driver) as engine:
            async with connection(engine) as conn:
                await aw(conn.begin())
                with pgtrigger.ignore(URI):
                    await aw(conn.execute(BUMP))
                    savepoint = await aw(conn.begin_nested())
                    with pytest.raises(IntegrityError):
                        await aw(conn.execute(DUPLICATE))
                    await aw(savepoint.rollback())
                    assert (await aw(conn.execute(BUMP))).rowcount == 3
                await aw(conn.rollback())
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "AUTOCOMMIT"])
def test_failed_statement_inside_ignore(
    module_database: Any, driver: str, isolation: str, clean: tuple[Any, ...]
) -> None:
    async def main() -> None:
        async with engine_of(module_database, driver, isolation_level=isolation) as engine:
            async with connection(engine) as conn:
                with pgtrigger.ignore(URI), pgtrigger.schema(SCHEMA):
                    await aw(conn.execute(BUMP))
                    with pytest.raises(IntegrityError):
                        await aw(conn.execute(DUPLICATE))
                    await aw(conn.rollback())
                    # The state is applied again after the rollback.
                    assert (await aw(conn.execute(BUMP))).rowcount == 3
                    assert await carried(conn) == (ignored_value(), SCHEMA)
                    await aw(conn.rollback())
                assert (await outcome(conn, BUMP) or "").startswith(CANNOT_UPDATE)
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE
            if isolation == "AUTOCOMMIT":  # the updates were committed one by one: undo them
                async with connection(engine) as conn, pgtrigger.ignore(URI):
                    await aw(conn.execute(update(Item).values(qty=0)))

    run(main())


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "AUTOCOMMIT"])
def test_returned_to_the_pool_inside_the_context(
    module_database: Any, driver: str, isolation: str, clean: tuple[Any, ...]
) -> None:
    async def main() -> None:
        async with engine_of(module_database, driver, isolation_level=isolation) as engine:
            with pgtrigger.ignore(URI), pgtrigger.schema(SCHEMA):
                async with connection(engine) as c1, connection(engine) as c2:
                    await aw(c1.execute(select(Item.id)))
                    await aw(c2.execute(select(Item.id)))
                # Still inside the context: the pooled connections carry nothing.
                assert await pool_states(engine, driver) == [clean] * POOL_SIZE
                async with connection(engine) as c1:  # and pick the state up again
                    assert await carried(c1) == (ignored_value(), SCHEMA)
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_server_side_cursor(
    module_database: Any, tables: Engine, driver: str, clean: tuple[Any, ...]
) -> None:
    """Named (server-side) cursors: the state is applied before the cursor is declared."""
    streamed = {"stream_results": True, "yield_per": 1}

    async def main() -> None:
        async with engine_of(module_database, driver) as engine:
            async with connection(engine) as conn:
                with pgtrigger.ignore(URI):
                    result = conn.execute(text(STATE_SQL).execution_options(**streamed))
                    assert result.cursor.name  # a named cursor indeed
                    assert result.all()[0][0] == ignored_value()
                    assert conn.execute(BUMP).rowcount == 3
                    query = select(Item.id).order_by(Item.id).execution_options(**streamed)
                    assert [row.id for row in conn.execute(query)] == [1, 2, 3]
                conn.rollback()
                assert (await outcome(conn, BUMP) or "").startswith(CANNOT_UPDATE)
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())


def test_an_error_inside_ignore_does_not_skip_the_reset(
    module_database: Any, driver: str, clean: tuple[Any, ...]
) -> None:
    async def main() -> None:
        async with engine_of(module_database, driver, isolation_level="AUTOCOMMIT") as engine:
            async with connection(engine) as conn:
                with pytest.raises(RuntimeError), pgtrigger.ignore(URI):
                    await aw(conn.execute(select(Item.id)))
                    raise RuntimeError
                assert (await outcome(conn, BUMP) or "").startswith(CANNOT_UPDATE)
            assert await pool_states(engine, driver) == [clean] * POOL_SIZE

    run(main())
