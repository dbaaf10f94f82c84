"""One trigger, one pgid however its table is described; copies keep their triggers; sessions
are binds like any other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

import pgtrigger
import pgtrigger.sqla
from tests.pgservers import DatabaseDSN
from tests.sqla.helpers import CANNOT_DELETE, attempt, installed_triggers, make_async_engine
from tests.sqla.helpers import make_engine as engine_of

metadata = MetaData()
post = Table(
    "ident_post",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(20)),
    pgtrigger.Protect(name="no_deletes", operation=pgtrigger.Delete),
)
URI = "ident_post:no_deletes"
#: The same table as a migration written by hand describes it (docs/alembic.md).
DESCRIBED = pgtrigger.TableDescription(
    name="ident_post",
    primary_key=("id",),
    fields=(pgtrigger.FieldDescription("status", "status"),),
)


def test_a_description_gets_the_tables_pgid() -> None:
    trigger = pgtrigger.Protect(name="no_deletes", operation=pgtrigger.Delete)
    by_description = trigger.compile(DESCRIBED)
    assert by_description.pgid == pgtrigger.registry.pgid_of(URI)
    assert by_description.pgid == pgtrigger.sqla.targets(URI)[0].compiled.pgid
    assert len(by_description.pgid.rsplit("_", 1)[1]) == 12
    assert by_description.hash == pgtrigger.sqla.targets(URI)[0].compiled.hash


def test_a_trigger_installed_from_a_description_is_the_tables(database: DatabaseDSN) -> None:
    """Installed by a hand-written op: ls reads it INSTALLED, ignore() skips it."""
    engine = engine_of(database)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE ident_post (id int PRIMARY KEY, status text)"))
            compiled = pgtrigger.Protect(name="no_deletes", operation=pgtrigger.Delete).compile(
                DESCRIBED
            )
            conn.exec_driver_sql(compiled.install_sql, execution_options={"no_parameters": True})
            conn.execute(insert(post).values(id=1))
        rows = pgtrigger.sqla.ls(engine, metadata=metadata)
        assert [(r.uri, r.status) for r in rows] == [(URI, pgtrigger.INSTALLED)]
        with engine.connect() as conn:
            assert attempt(conn, delete(post)) == f"{CANNOT_DELETE} ident_post table"
            with pgtrigger.ignore(URI):
                assert attempt(conn, delete(post)) is None
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE ident_post"))
            conn.execute(text(f"DROP FUNCTION {compiled.pgid}()"))
        engine.dispose()


def test_to_metadata_copies_keep_their_triggers(database: DatabaseDSN) -> None:
    same_name = post.to_metadata(MetaData())
    other_schema = post.to_metadata(MetaData(), schema="ident_tenant")
    assert pgtrigger.sqla.triggers_of(same_name) == pgtrigger.sqla.triggers_of(post)
    assert pgtrigger.sqla.triggers_of(other_schema) == pgtrigger.sqla.triggers_of(post)
    # Same name: the same URI and pgid. Another schema: a table of its own.
    assert [t.uri for t in pgtrigger.sqla.targets(metadata=[same_name])] == [URI]
    copied_uri = f"ident_tenant.{URI}"
    assert [t.uri for t in pgtrigger.sqla.targets(metadata=[other_schema])] == [copied_uri]

    engine = engine_of(database)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA ident_tenant"))
        same_name.metadata.create_all(engine)
        other_schema.metadata.create_all(engine)
        assert installed_triggers(engine) == [
            ("ident_tenant", "ident_post", pgtrigger.registry.pgid_of(copied_uri), True),
            ("public", "ident_post", pgtrigger.registry.pgid_of(URI), True),
        ]
        rows = pgtrigger.sqla.ls(engine, metadata=other_schema.metadata)
        assert [(r.uri, r.schema, r.status) for r in rows] == [
            (copied_uri, "ident_tenant", pgtrigger.INSTALLED)
        ]
        with engine.connect() as conn:
            conn.execute(insert(other_schema).values(id=1))
            conn.commit()
            assert attempt(conn, delete(other_schema)) == f"{CANNOT_DELETE} ident_post table"
        other_schema.metadata.drop_all(engine)
        same_name.metadata.drop_all(engine)
        assert installed_triggers(engine) == []
    finally:
        engine.dispose()


def test_session_binds(database: DatabaseDSN) -> None:
    """A Session works in its own transaction: nothing is committed behind the caller's back."""
    engine = engine_of(database)
    try:
        metadata.create_all(engine)
        with Session(engine) as session:
            pgtrigger.sqla.uninstall(session, URI)
            assert installed_triggers(session.connection()) == []
            session.rollback()
            assert len(installed_triggers(engine)) == 1
            pgtrigger.sqla.uninstall(session, URI)
            session.commit()
        assert installed_triggers(engine) == []
        with Session(engine) as session:
            pgtrigger.sqla.install(session, metadata=metadata)
            session.commit()
        assert len(installed_triggers(engine)) == 1
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("driver", ["psycopg_async", "asyncpg"])
def test_async_session_binds(database: DatabaseDSN, driver: str) -> None:
    engine = engine_of(database)
    metadata.create_all(engine)

    async def main() -> list[Any]:
        async_engine = make_async_engine(database, driver)
        try:
            async with AsyncSession(async_engine) as session:
                await pgtrigger.sqla.disable(session, URI)
                await session.commit()
                rows = await pgtrigger.sqla.ls(session, metadata=metadata)
                await pgtrigger.sqla.enable(session, metadata=metadata)
                await session.commit()
                return list(rows)
        finally:
            await async_engine.dispose()

    try:
        rows = asyncio.run(main())
        assert [(r.uri, r.status, r.enabled) for r in rows] == [(URI, pgtrigger.INSTALLED, False)]
        assert [enabled for *_, enabled in installed_triggers(engine)] == [True]
    finally:
        metadata.drop_all(engine)
        engine.dispose()
