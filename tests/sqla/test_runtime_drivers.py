"""``pgtrigger.ignore``, ``is_ignored``, ``schema`` and ``constraints`` on SQLAlchemy connections
of every driver: psycopg, psycopg2 (sync), psycopg async and asyncpg (``AsyncEngine``).

Each test body is a coroutine run once per driver; for sync drivers the awaited calls are
plain calls (see ``tests.sqla.helpers.aw``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    DDL,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    event,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger
import pgtrigger.sqla
from tests.sqla.helpers import (
    CANNOT_DELETE,
    CANNOT_UPDATE,
    DRIVERS,
    NO_IGNORE,
    aw,
    connection,
    created,
    engine_for,
    error_text,
    orm_session,
    outcome,
    settings,
)

P = "sqla_rt_"
SCHEMA = "sqla_rt_other"


class Base(DeclarativeBase):
    metadata = MetaData()


event.listen(Base.metadata, "before_create", DDL(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
event.listen(Base.metadata, "after_drop", DDL(f"DROP SCHEMA IF EXISTS {SCHEMA}"))


class Post(Base):
    __tablename__ = P + "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    qty: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(String(40), default="")
    __table_args__ = (
        pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),
        pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
    )


# Same table name in another schema, with 2 rows instead of 3: rowcounts tell them apart.
other_post = Table(
    P + "post",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("qty", Integer, default=0),
    pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),
    schema=SCHEMA,
)


class Check(Base):
    __tablename__ = P + "check"
    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int] = mapped_column()
    __table_args__ = (
        pgtrigger.Trigger(
            name="deferred_check",
            when=pgtrigger.After,
            operation=pgtrigger.Insert,
            timing=pgtrigger.Deferred,
            func="IF NEW.amount < 0 THEN RAISE EXCEPTION 'negative amount %', NEW.id; END IF;"
            " RETURN NULL;",
        ),
    )


UPDATES = f"{P}post:protect_updates"
DELETES = f"{P}post:protect_deletes"
OTHER_UPDATES = f"{SCHEMA}.{P}post:protect_updates"
DEFERRED = f"{P}check:deferred_check"
ADD_ONE = update(Post).values(qty=Post.qty + 1)


def pgids(*uris: str) -> str:
    """The ``pgtrigger.ignore`` value while ``uris`` are ignored."""
    return "{" + ",".join(sorted(pgtrigger.registry.pgid_of(u) for u in uris)) + "}"


@pytest.fixture(scope="module")
def tables(module_database: Any) -> Iterator[Engine]:
    with created(module_database, Base.metadata) as engine:
        with engine.begin() as conn:
            conn.execute(Post.__table__.insert(), [{"id": i} for i in (1, 2, 3)])
            conn.execute(other_post.insert(), [{"id": i} for i in (1, 2)])
        yield engine


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, tables: Engine) -> str:
    return str(request.param)


def run(coro: Any) -> None:
    asyncio.run(coro)


def test_ignore_on_engine_connections(module_database: Any, driver: str) -> None:
    async def main() -> None:
        async with engine_for(module_database, driver) as engine, connection(engine) as conn:
            assert (await outcome(conn, ADD_ONE) or "").startswith(CANNOT_UPDATE)
            assert not pgtrigger.is_ignored(UPDATES)
            with pgtrigger.ignore(UPDATES):
                assert pgtrigger.is_ignored(UPDATES) and not pgtrigger.is_ignored(DELETES)
                assert (await aw(conn.execute(ADD_ONE))).rowcount == 3
                assert await settings(conn) == (pgids(UPDATES), '"$user", public')
                # Raw SQL with "%" and ":name" goes through untouched.
                raw = text(
                    f"UPDATE {P}post SET note = :note WHERE note NOT LIKE '%x%' AND id = :id"
                )
                assert (await aw(conn.execute(raw, {"note": "50% :off", "id": 1}))).rowcount == 1
                got = await aw(conn.execute(text(f"SELECT note FROM {P}post WHERE id = 1")))
                assert got.scalar_one() == "50% :off"
            # Same transaction, context left: protected again.
            assert (await settings(conn))[0] in NO_IGNORE
            assert (await outcome(conn, ADD_ONE) or "").startswith(CANNOT_UPDATE)
            # A transaction begun inside the context, committed inside it.
            async with pgtrigger.ignore(UPDATES):
                await aw(conn.execute(ADD_ONE))
                await aw(conn.commit())
                await aw(conn.execute(update(Post).values(qty=0)))
                await aw(conn.commit())
            assert (await aw(conn.execute(select(Post.qty).order_by(Post.id)))).scalars().all() == [
                0,
                0,
                0,
            ]
            await aw(conn.rollback())

    run(main())


def test_ignore_as_decorator(module_database: Any, driver: str) -> None:
    @pgtrigger.ignore(UPDATES)
    async def bump(conn: Any) -> int:
        assert pgtrigger.is_ignored(UPDATES)
        return int((await aw(conn.execute(ADD_ONE))).rowcount)

    @pgtrigger.ignore(DELETES)
    def sync_check() -> bool:
        return pgtrigger.is_ignored(DELETES) and not pgtrigger.is_ignored(UPDATES)

    async def main() -> None:
        async with engine_for(module_database, driver) as engine, connection(engine) as conn:
            assert await bump(conn) == 3
            assert sync_check()
            assert not pgtrigger.is_ignored(UPDATES)
            assert (await outcome(conn, ADD_ONE) or "").startswith(CANNOT_UPDATE)

    run(main())


def test_ignore_in_orm_session(module_database: Any, driver: str) -> None:
    async def main() -> None:
        async with engine_for(module_database, driver) as engine, orm_session(engine) as session:
            post = await aw(session.get(Post, 1))
            post.qty = 10
            with pytest.raises(DBAPIError, match=CANNOT_UPDATE):
                await aw(session.flush())
            await aw(session.rollback())
            with pgtrigger.ignore(UPDATES, DELETES):
                post = await aw(session.get(Post, 1))
                post.qty = 10
                await aw(session.flush())
                await aw(session.delete(post))
                await aw(session.flush())
                row = await aw(session.execute(select(Post.id).where(Post.id == 1)))
                assert row.scalar_one_or_none() is None
            await aw(session.rollback())
            rows = await aw(session.execute(select(Post.id, Post.qty).order_by(Post.id)))
            assert rows.all() == [(1, 0), (2, 0), (3, 0)]
            # Committed inside the context: persisted.
            async with pgtrigger.ignore(UPDATES):
                post = await aw(session.get(Post, 2))
                post.note = "session"
                await aw(session.commit())
                post.note = ""
                await aw(session.commit())
            post = await aw(session.get(Post, 2))
            post.note = "outside"
            with pytest.raises(DBAPIError, match=CANNOT_UPDATE):
                await aw(session.commit())
            await aw(session.rollback())

    run(main())


def test_nested_ignores(module_database: Any, driver: str) -> None:
    delete_one = text(f"DELETE FROM {P}post WHERE id = :id")

    async def main() -> None:
        async with engine_for(module_database, driver) as engine, connection(engine) as conn:
            with pgtrigger.ignore(UPDATES):
                with pgtrigger.ignore(DELETES):
                    assert pgtrigger.is_ignored(UPDATES) and pgtrigger.is_ignored(DELETES)
                    await aw(conn.execute(ADD_ONE))
                    assert (await aw(conn.execute(delete_one, {"id": 3}))).rowcount == 1
                    assert (await settings(conn))[0] == pgids(UPDATES, DELETES)
                    with pgtrigger.ignore(UPDATES):  # again: no change
                        assert (await settings(conn))[0] == pgids(UPDATES, DELETES)
                assert pgtrigger.is_ignored(UPDATES) and not pgtrigger.is_ignored(DELETES)
                assert (await settings(conn))[0] == pgids(UPDATES)
                await aw(conn.execute(ADD_ONE))
                assert (await outcome(conn, delete_one, {"id": 2}) or "").startswith(CANNOT_DELETE)
                with pgtrigger.ignore():  # every registered trigger
                    assert pgtrigger.is_ignored(DELETES) and pgtrigger.is_ignored(DEFERRED)
                    assert (await aw(conn.execute(delete_one, {"id": 2}))).rowcount == 1
                    await aw(conn.rollback())
            assert not pgtrigger.is_ignored(UPDATES)
            assert (await settings(conn))[0] in (None, "")
            rows = await aw(conn.execute(select(Post.id, Post.qty).order_by(Post.id)))
            assert rows.all() == [(1, 0), (2, 0), (3, 0)]

    run(main())


def test_schema(module_database: Any, driver: str) -> None:
    unqualified = text(f"UPDATE {P}post SET qty = qty + 1")
    schemas = text("SELECT current_schemas(false)")

    async def main() -> None:
        async with engine_for(module_database, driver) as engine, connection(engine) as conn:
            base = (await settings(conn))[1]
            with pgtrigger.schema(SCHEMA):
                assert (await aw(conn.execute(schemas))).scalar_one() == [SCHEMA]
                with pgtrigger.ignore(OTHER_UPDATES):
                    assert (await aw(conn.execute(unqualified))).rowcount == 2
                assert (await outcome(conn, unqualified) or "").startswith(CANNOT_UPDATE)
                with pgtrigger.schema("public"):  # nesting appends
                    assert (await aw(conn.execute(schemas))).scalar_one() == [SCHEMA, "public"]
                assert (await aw(conn.execute(schemas))).scalar_one() == [SCHEMA]
            assert (await settings(conn))[1] == base
            with pgtrigger.ignore(UPDATES):  # the public table again
                assert (await aw(conn.execute(unqualified))).rowcount == 3
            await aw(conn.rollback())
            # In autocommit too, and the connection's own path comes back afterwards.
            autocommit = await aw(conn.execution_options(isolation_level="AUTOCOMMIT"))
            async with pgtrigger.schema(SCHEMA):
                assert (await aw(autocommit.execute(schemas))).scalar_one() == [SCHEMA]
            assert (await settings(autocommit))[1] == base

    run(main())


def test_constraints_with_a_deferred_trigger(module_database: Any, driver: str) -> None:
    bad = Check.__table__.insert().values(id=1, amount=-1)

    async def main() -> None:
        async with engine_for(module_database, driver) as engine:
            async with connection(engine) as conn:
                await aw(conn.execute(bad))  # deferred: no error yet
                with pytest.raises(DBAPIError, match="negative amount 1") as info:
                    await aw(conn.commit())
                assert error_text(info.value) == "negative amount 1"
                await aw(conn.rollback())
                await aw(pgtrigger.sqla.constraints(pgtrigger.Immediate, DEFERRED, bind=conn))
                assert (await outcome(conn, bad)) == "negative amount 1"  # raised at once
                # Ignored: the trigger does not even fire, commit succeeds.
                with pgtrigger.ignore(DEFERRED):
                    await aw(conn.execute(bad))
                    await aw(conn.commit())
                await aw(conn.execute(Check.__table__.delete()))
                await aw(conn.commit())
            async with orm_session(engine) as session:
                await aw(pgtrigger.sqla.constraints(pgtrigger.Immediate, bind=session))
                session.add(Check(id=2, amount=-2))
                with pytest.raises(DBAPIError, match="negative amount 2"):
                    await aw(session.flush())
                await aw(session.rollback())
                await aw(pgtrigger.sqla.constraints(pgtrigger.Immediate, DEFERRED, bind=session))
                await aw(pgtrigger.sqla.constraints(pgtrigger.Deferred, DEFERRED, bind=session))
                session.add(Check(id=3, amount=-3))
                await aw(session.flush())
                with pytest.raises(DBAPIError, match="negative amount 3"):
                    await aw(session.commit())

    run(main())


def test_constraints_refuses_a_trigger_that_is_not_deferrable() -> None:
    with pytest.raises(pgtrigger.DefinitionError, match="not deferrable"):
        pgtrigger.sqla.constraints(pgtrigger.Immediate, UPDATES, bind=None)


def test_is_ignored_is_per_context_and_restored_on_error() -> None:
    assert not pgtrigger.is_ignored(UPDATES)
    with pytest.raises(RuntimeError), pgtrigger.ignore(UPDATES):
        assert pgtrigger.is_ignored(UPDATES)
        raise RuntimeError
    assert not pgtrigger.is_ignored(UPDATES)

    async def task(uri: str | None) -> bool:
        if uri is None:
            await asyncio.sleep(0.01)
            return pgtrigger.is_ignored(UPDATES)
        async with pgtrigger.ignore(uri):
            await asyncio.sleep(0.01)
            return pgtrigger.is_ignored(UPDATES)

    async def main() -> list[bool]:
        return list(await asyncio.gather(task(UPDATES), task(None), task(DELETES)))

    assert asyncio.run(main()) == [True, False, False]
