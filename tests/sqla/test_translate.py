"""``schema_translate_map``: one model, one table per tenant schema, each with its triggers.

DDL (``create_all`` / ``drop_all``), management and runtime URIs follow the map: the triggers
live on the translated table, under the code's URI and pgid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, String, delete, insert, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import pgtrigger
import pgtrigger.sqla
from tests.pgservers import DatabaseDSN
from tests.sqla.helpers import (
    CANNOT_DELETE,
    attempt,
    installed_triggers,
    make_async_engine,
    make_engine,
    pgtrigger_functions,
)


class Base(DeclarativeBase):
    metadata = MetaData()


class Post(Base):
    __tablename__ = "tr_post"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    __table_args__ = (pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),)


URI = "tr_post:protect_deletes"
TENANTS = ("tenant_a", "tenant_b")


def pgid() -> str:
    return pgtrigger.registry.pgid_of(URI)


def for_tenant(engine: Engine, schema: str) -> Engine:
    return engine.execution_options(schema_translate_map={None: schema})


@pytest.fixture
def engine(database: DatabaseDSN) -> Iterator[Engine]:
    engine = make_engine(database)
    with engine.begin() as conn:
        for schema in (*TENANTS, "tenant_c"):
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    for schema in TENANTS:
        Base.metadata.create_all(for_tenant(engine, schema))
    try:
        yield engine
    finally:
        engine.dispose()


def summary(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.uri, r.schema, r.status, r.table_missing) for r in rows if r.uri == URI]


def test_create_all_installs_on_each_tenants_table(engine: Engine) -> None:
    assert installed_triggers(engine) == [(schema, "tr_post", pgid(), True) for schema in TENANTS]
    assert pgtrigger_functions(engine) == [f"{schema}.{pgid()}" for schema in TENANTS]
    tenant = for_tenant(engine, "tenant_a")
    with tenant.connect() as conn:
        conn.execute(insert(Post).values(id=1))
        conn.commit()
        assert attempt(conn, delete(Post)) == f"{CANNOT_DELETE} tr_post table"
        with pgtrigger.ignore(URI):  # the code's URI skips the tenant's trigger
            assert attempt(conn, delete(Post)) is None
    with Session(tenant) as session, pgtrigger.ignore(URI):
        session.execute(delete(Post))
        session.commit()

    Base.metadata.drop_all(tenant)  # the tenant's table and trigger function only
    assert installed_triggers(engine) == [("tenant_b", "tr_post", pgid(), True)]
    assert pgtrigger_functions(engine) == [f"tenant_b.{pgid()}"]


def test_management_follows_the_map(engine: Engine) -> None:
    tenant_a, tenant_b = (for_tenant(engine, schema) for schema in TENANTS)
    assert summary(pgtrigger.sqla.ls(tenant_a)) == [(URI, "tenant_a", pgtrigger.INSTALLED, False)]
    # Untranslated, the table is nowhere on the search path: reported, not installed.
    assert summary(pgtrigger.sqla.ls(engine, metadata=Base.metadata)) == [
        (URI, None, pgtrigger.UNINSTALLED, True)
    ]
    with pytest.raises(pgtrigger.InstallationError, match='"tr_post" does not exist'):
        pgtrigger.sqla.install(engine, metadata=Base.metadata)

    pgtrigger.sqla.uninstall(tenant_a, metadata=Base.metadata)
    assert installed_triggers(engine) == [("tenant_b", "tr_post", pgid(), True)]
    pgtrigger.sqla.install(tenant_a, metadata=Base.metadata)
    pgtrigger.sqla.disable(tenant_b, URI)
    assert installed_triggers(engine) == [
        ("tenant_a", "tr_post", pgid(), True),
        ("tenant_b", "tr_post", pgid(), False),
    ]
    with Session(tenant_b) as session:
        assert summary(pgtrigger.sqla.ls(session, URI)) == [
            (URI, "tenant_b", pgtrigger.INSTALLED, False)
        ]
        pgtrigger.sqla.enable(session, URI)
        session.commit()
    assert {enabled for *_, enabled in installed_triggers(engine)} == {True}


def test_prune_stays_in_the_translated_schema(engine: Engine) -> None:
    stale = pgtrigger.Protect(name="stale", operation=pgtrigger.Update)
    for schema in TENANTS:
        with pgtrigger.sqla.declare.translated({None: schema}):
            compiled = stale.compile(Post.__table__)
        with engine.begin() as conn:
            conn.exec_driver_sql(compiled.install_sql, execution_options={"no_parameters": True})
    pruned = pgtrigger.sqla.prune(for_tenant(engine, "tenant_a"), metadata=Base.metadata)
    assert [(r.schema, r.pgid) for r in pruned] == [("tenant_a", compiled.pgid)]
    assert {(s, name) for s, _, name, _ in installed_triggers(engine)} == {
        ("tenant_a", pgid()),
        ("tenant_b", compiled.pgid),
        ("tenant_b", pgid()),
    }


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg_async"])
def test_async_create_all_with_a_map(database: DatabaseDSN, engine: Engine, driver: str) -> None:
    """asyncpg takes one statement per call: that path compiles with the map too."""

    async def main() -> None:
        async_engine = make_async_engine(database, driver).execution_options(
            schema_translate_map={None: "tenant_c"}
        )
        try:
            async with async_engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            rows = await pgtrigger.sqla.ls(async_engine, URI)
            assert summary(rows) == [(URI, "tenant_c", pgtrigger.INSTALLED, False)]
            async with async_engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
        finally:
            await async_engine.dispose()

    asyncio.run(main())
    assert [s for s, *_ in installed_triggers(engine)] == list(TENANTS)
    assert pgtrigger_functions(engine) == [f"{schema}.{pgid()}" for schema in TENANTS]
