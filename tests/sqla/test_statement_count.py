"""The runtime hooks send the fewest statements: one per transaction for a change of state,
never one per query.

Statements are counted where they leave for the server, whoever sends them (SQLAlchemy or the
pgtrigger hooks): a counting cursor class for psycopg, psycopg2 and psycopg async
(``cursor_factory``), and a wrapper around the adapted asyncpg cursor's execution. SQLAlchemy's
own statements are counted with ``before_cursor_execute``; the difference is what the hooks sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg2.extensions
import pytest
from sqlalchemy import Engine, MetaData, event, select, text, update
from sqlalchemy.dialects.postgresql import asyncpg as sqla_asyncpg
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger
from pgtrigger import sending
from tests.sqla.helpers import DRIVERS, aw, connection, created, engine_for, orm_session

P = "sqla_count_"
UPDATES = 100


class Base(DeclarativeBase):
    metadata = MetaData()


class Counter(Base):
    __tablename__ = P + "counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    # Deletes are protected; updates are free, so the same work runs with and without ignore.
    __table_args__ = (pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),)


URI = f"{P}counter:protect_deletes"

_sent = [0]  # statements handed to the driver (or, riding with BEGIN, to libpq)
_riding = [0]  # of which sent with the BEGIN the driver would have sent anyway (psycopg 3)


class CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return super().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return super().executemany(*args, **kwargs)


class CountingAsyncCursor(psycopg.AsyncCursor):  # type: ignore[type-arg]
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return await super().execute(*args, **kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return await super().executemany(*args, **kwargs)


class CountingCursor2(psycopg2.extensions.cursor):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return super().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return super().executemany(*args, **kwargs)


CURSORS = {
    "psycopg": CountingCursor,
    "psycopg2": CountingCursor2,
    "psycopg_async": CountingAsyncCursor,
}


class Counts:
    """Statements sent in total and by SQLAlchemy, since ``mark()``."""

    def __init__(self) -> None:
        self._sqlalchemy = 0
        self._marks = (0, 0)

    def listen(self, engine: Any) -> None:
        def count(*args: Any) -> None:
            self._sqlalchemy += 1

        event.listen(getattr(engine, "sync_engine", engine), "before_cursor_execute", count)

    def mark(self) -> None:
        self._marks = (_sent[0], self._sqlalchemy)

    @property
    def since(self) -> tuple[int, int]:
        """(SQLAlchemy's statements, the hooks' statements) since the last mark."""
        total, by_sqlalchemy = _sent[0] - self._marks[0], self._sqlalchemy - self._marks[1]
        return by_sqlalchemy, total - by_sqlalchemy


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = str(request.param)
    on_libpq = sending._exec_on_libpq

    def counted_on_libpq(*args: Any) -> None:
        _sent[0] += 1
        _riding[0] += 1
        on_libpq(*args)

    monkeypatch.setattr(sending, "_exec_on_libpq", counted_on_libpq)
    if name == "asyncpg":
        cursor = sqla_asyncpg.AsyncAdapt_asyncpg_cursor
        execute, executemany = cursor._prepare_and_execute, cursor.executemany

        async def counted_execute(self: Any, *args: Any) -> Any:
            _sent[0] += 1
            return await execute(self, *args)

        def counted_executemany(self: Any, *args: Any) -> Any:
            _sent[0] += 1
            return executemany(self, *args)

        monkeypatch.setattr(cursor, "_prepare_and_execute", counted_execute)
        monkeypatch.setattr(cursor, "executemany", counted_executemany)
    return name


def counting_engine(database: Any, driver: str, **kwargs: Any) -> Any:
    if driver in CURSORS:
        kwargs["connect_args"] = {"cursor_factory": CURSORS[driver]}
    return engine_for(database, driver, **kwargs)


@pytest.fixture(scope="module")
def tables(module_database: Any) -> Iterator[Engine]:
    with created(module_database, Base.metadata) as engine:
        with engine.begin() as conn:
            conn.execute(Counter.__table__.insert(), [{"id": 1}, {"id": 2}])
        yield engine


async def orm_updates(session: Any, start: int) -> None:
    """1 SELECT, then 100 flushes of one UPDATE each, then COMMIT (not a cursor statement)."""
    counter = await aw(session.get(Counter, 1))
    for i in range(UPDATES):
        counter.hits = start + i + 1  # always a change: one UPDATE per flush
        await aw(session.flush())
    await aw(session.commit())


async def warm_up(session: Any) -> None:
    """Connect (and let the dialect initialize) before counting."""
    await aw(session.execute(text("SELECT 1")))
    await aw(session.commit())


def test_100_orm_updates_in_one_ignore_block(
    module_database: Any, tables: Engine, driver: str
) -> None:
    async def main() -> dict[str, tuple[int, int]]:
        counts, results = Counts(), {}
        async with counting_engine(module_database, driver) as engine:
            counts.listen(engine)
            async with orm_session(engine) as session:
                await warm_up(session)

                counts.mark()
                await orm_updates(session, 0)
                results["plain"] = counts.since

                counts.mark()
                with pgtrigger.ignore(URI):
                    await orm_updates(session, 1000)
                results["ignored"] = counts.since

                # Three transactions in one ignore block: one statement each.
                counts.mark()
                async with pgtrigger.ignore(URI):
                    for n in range(3):
                        await orm_updates(session, 2000 + 100 * n)
                results["three transactions"] = counts.since
        return results

    riding = _riding[0]
    results = asyncio.run(main())
    assert results["plain"] == (1 + UPDATES, 0)
    assert results["ignored"] == (1 + UPDATES, 1)
    assert results["three transactions"] == (3 * (1 + UPDATES), 3)
    # psycopg 3 (sync): each of those four statements was the transaction's BEGIN itself, so
    # ignore cost no round trip at all.
    assert _riding[0] - riding == (4 if driver == "psycopg" else 0)


def test_entering_and_leaving_within_a_transaction(
    module_database: Any, tables: Engine, driver: str
) -> None:
    async def main() -> dict[str, tuple[int, int]]:
        counts, results = Counts(), {}
        async with counting_engine(module_database, driver) as engine:
            counts.listen(engine)
            async with orm_session(engine) as session:
                await warm_up(session)

                # One statement to apply, one to reset, in the same transaction.
                counts.mark()
                counter = await aw(session.get(Counter, 1))
                with pgtrigger.ignore(URI):
                    for i in range(10):
                        counter.hits = i
                        await aw(session.flush())
                counter.hits = -1
                await aw(session.flush())
                await aw(session.commit())
                results["in and out"] = counts.since

                # Nesting the same URI changes nothing: no statement.
                counts.mark()
                with pgtrigger.ignore(URI):
                    await aw(session.execute(select(Counter.id)))
                    with pgtrigger.ignore(URI):
                        await aw(session.execute(select(Counter.id)))
                    await aw(session.execute(select(Counter.id)))
                    await aw(session.commit())
                results["nested same"] = counts.since

                # 100 Core statements.
                counts.mark()
                stmt = update(Counter).where(Counter.id == 2).values(hits=Counter.hits + 1)
                with pgtrigger.ignore(URI):
                    for _ in range(UPDATES):
                        await aw(session.execute(stmt))
                    await aw(session.commit())
                results["core"] = counts.since
        return results

    results = asyncio.run(main())
    assert results["in and out"] == (1 + 11, 2)
    assert results["nested same"] == (3, 1)
    assert results["core"] == (UPDATES, 1)


def test_autocommit_runs_each_statement_in_a_short_transaction(
    module_database: Any, tables: Engine, driver: str
) -> None:
    """In autocommit nothing is session-level (a transaction-pooling proxy would hand it to
    another client): while the state is not the default, each statement runs in a transaction
    of ours, ``BEGIN; set_config(...)`` (one execute; two on asyncpg) then ``COMMIT``, except
    on psycopg2, whose one simple query carries the state itself
    (``SELECT set_config(...); <statement>``: no statement of ours). Outside the context,
    nothing is sent at all."""
    bump = update(Counter).where(Counter.id == 2).values(hits=Counter.hits + 1)

    async def main() -> dict[str, tuple[int, int]]:
        counts, results = Counts(), {}
        options = {"isolation_level": "AUTOCOMMIT"}
        async with counting_engine(module_database, driver, **options) as engine:
            counts.listen(engine)
            async with connection(engine) as conn:
                await aw(conn.execute(text("SELECT 1")))
                counts.mark()
                with pgtrigger.ignore(URI):
                    for _ in range(UPDATES):
                        await aw(conn.execute(bump))
                        await aw(conn.commit())
                results["inside"] = counts.since
                counts.mark()
                for _ in range(3):
                    await aw(conn.execute(select(Counter.id)))
                results["after"] = counts.since
            counts.mark()
            async with connection(engine) as conn:
                with pgtrigger.ignore(URI):
                    await aw(conn.execute(select(Counter.id)))
            results["until checkin"] = counts.since
            # A Session releases its connection at commit: set and reset per transaction.
            async with orm_session(engine) as session:
                counts.mark()
                with pgtrigger.ignore(URI):
                    for n in range(2):
                        await orm_updates(session, 7000 + 100 * n)
                results["session"] = counts.since
        return results

    per_statement = {"psycopg2": 0, "asyncpg": 3}.get(driver, 2)
    results = asyncio.run(main())
    assert results == {
        "inside": (UPDATES, per_statement * UPDATES),
        "after": (3, 0),
        "until checkin": (1, per_statement),
        "session": (2 * (1 + UPDATES), per_statement * 2 * (1 + UPDATES)),
    }


def test_schema_costs_one_statement_once_known(
    module_database: Any, tables: Engine, driver: str
) -> None:
    async def main() -> list[tuple[int, int]]:
        counts, results = Counts(), []
        options = {"pool_size": 1, "max_overflow": 0}
        async with counting_engine(module_database, driver, **options) as engine:
            counts.listen(engine)
            for _ in range(3):
                async with orm_session(engine) as session:
                    await warm_up(session)
                    counts.mark()
                    with pgtrigger.schema("public"):
                        for _ in range(10):
                            await aw(session.execute(select(Counter.id)))
                    await aw(session.commit())
                    results.append(counts.since)
        return results

    # Leaving schema() restores the transaction's own path from a setting kept on the server:
    # nothing to read first.
    assert asyncio.run(main()) == [(10, 1), (10, 1), (10, 1)]
