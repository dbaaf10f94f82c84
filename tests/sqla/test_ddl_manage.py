"""``create_all`` / ``drop_all`` and the management API (``ls``, ``install``, ``uninstall``,
``enable``, ``disable``, ``prune``, ``prunable``) with sync and async binds."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    DDL,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy.exc import ProgrammingError

import pgtrigger
import pgtrigger.sqla
from tests.sqla.helpers import (
    ASYNC_DRIVERS,
    CANNOT_DELETE,
    DRIVERS,
    attempt,
    installed_triggers,
    make_async_engine,
    make_engine,
    pgtrigger_functions,
)

P = "sqla_ddl_"
SCHEMA = "sqla_ddl_other"
metadata = MetaData()
event.listen(metadata, "before_create", DDL(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
event.listen(metadata, "after_drop", DDL(f"DROP SCHEMA IF EXISTS {SCHEMA}"))

post = Table(
    P + "post",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(20), default="draft"),
    pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
    # "%", ":name", "::", "$$" and ";" inside the body: every driver must receive it intact.
    pgtrigger.Trigger(
        name="check_status",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update,
        func=(
            "IF NEW.status = 'bad' THEN RAISE EXCEPTION '100%% bad: % (:status; $$)', "
            "NEW.id::text; END IF; RETURN NEW;"
        ),
    ),
)
item = Table(
    P + "item",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("qty", Integer, default=0),
    pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),
    schema=SCHEMA,
)
PROTECT = f"{P}post:protect_deletes"
CHECK = f"{P}post:check_status"
ITEM = f"{SCHEMA}.{P}item:protect_updates"
ALL_URIS = (PROTECT, CHECK, ITEM)

# Another MetaData (say another declarative Base) sharing the database.
side_metadata = MetaData()
side = Table(
    P + "side",
    side_metadata,
    Column("id", Integer, primary_key=True),
    pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
)
SIDE = f"{P}side:protect_deletes"


def pgid(uri: str) -> str:
    return pgtrigger.registry.pgid_of(uri)


def summary(rows: list[Any]) -> set[tuple[Any, ...]]:
    return {(r.uri or r.pgid, r.schema, r.status, r.enabled) for r in rows}


def declared(rows: list[Any]) -> set[tuple[Any, ...]]:
    """The summary of the declared triggers only (not the orphans)."""
    return summary([r for r in rows if r.uri is not None])


def installed_summary(*uris: str, enabled: bool = True) -> set[tuple[Any, ...]]:
    schemas = {PROTECT: "public", CHECK: "public", ITEM: SCHEMA, SIDE: "public"}
    return {(uri, schemas[uri], pgtrigger.INSTALLED, enabled) for uri in uris}


@pytest.fixture(scope="module")
def engine(module_database: str) -> Iterator[Engine]:
    engine = make_engine(module_database)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def tables(engine: Engine) -> Iterator[Engine]:
    """The module's tables, created for one test, dropped after it."""
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        metadata.drop_all(engine)
        side_metadata.drop_all(engine)
        assert pgtrigger_functions(engine) == []


def _raw_tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'sqla\\_ddl\\_%' AND relkind = 'r'"
        ).fetchall()
    return sorted(r[0] for r in rows)


def _check_ddl_order(statements: list[str]) -> None:
    """Each table's triggers are installed right after its CREATE TABLE, before the next one."""
    creates = {
        table.name: next(
            i
            for i, s in enumerate(statements)
            if s.lstrip().startswith("CREATE TABLE") and table.name in s.split("(")[0]
        )
        for table in (post, item)
    }
    for uri in ALL_URIS:
        table = uri.split(":")[0].rsplit(".", 1)[-1]
        installed_at = next(i for i, s in enumerate(statements) if pgid(uri) in s)
        later = [i for i in creates.values() if i > creates[table]]
        assert creates[table] < installed_at < min(later, default=len(statements)), uri


def _trigger_body_ok(conn: Connection) -> None:
    source = conn.execute(
        text("SELECT prosrc FROM pg_proc WHERE proname = :name"), {"name": pgid(CHECK)}
    ).scalar_one()
    assert "'100%% bad: % (:status; $$)', NEW.id::text;" in source


@pytest.mark.parametrize("driver", DRIVERS)
def test_create_all_installs_triggers_in_the_tables_transaction(
    module_database: Any, engine: Engine, driver: str
) -> None:
    statements: list[str] = []

    def run(conn: Connection) -> None:
        event.listen(conn, "before_cursor_execute", lambda c, cur, s, *a: statements.append(s))
        metadata.create_all(conn)
        # Inside the transaction: tables and triggers exist; nothing is visible outside it.
        assert {(s, t) for s, t, _, _ in installed_triggers(conn)} == {
            ("public", P + "post"),
            (SCHEMA, P + "item"),
        }
        assert _raw_tables(module_database) == []
        _trigger_body_ok(conn)
        conn.rollback()

    _on_connection(module_database, driver, run)
    assert _raw_tables(module_database) == []
    assert pgtrigger_functions(engine) == []
    _check_ddl_order(statements)

    # Committed this time; behaviour through the driver that installed it; then drop_all.
    def create_and_use(conn: Connection) -> None:
        metadata.create_all(conn)
        conn.commit()
        conn.execute(insert(post).values(id=1))
        conn.commit()
        assert attempt(conn, delete(post)) == f"{CANNOT_DELETE} {P}post table"
        error = attempt(conn, update(post).values(status="bad"))
        assert error == "100% bad: 1 (:status; $$)"
        conn.commit()

    _on_connection(module_database, driver, create_and_use)
    assert declared(pgtrigger.sqla.ls(engine, *ALL_URIS)) == installed_summary(*ALL_URIS)
    _on_connection(module_database, driver, lambda conn: (metadata.drop_all(conn), conn.commit()))
    assert pgtrigger_functions(engine) == []
    assert _raw_tables(module_database) == []


def _on_connection(database: Any, driver: str, work: Any) -> None:
    """Run ``work(sync_connection)`` on a connection of ``driver`` (async ones via run_sync)."""
    if driver in ASYNC_DRIVERS:

        async def main() -> None:
            engine = make_async_engine(database, driver)
            try:
                async with engine.connect() as conn:
                    await conn.run_sync(work)
            finally:
                await engine.dispose()

        asyncio.run(main())
        return
    engine = make_engine(database, driver)
    try:
        with engine.connect() as conn:
            work(conn)
    finally:
        engine.dispose()


def test_checkfirst(engine: Engine) -> None:
    metadata.create_all(engine)
    try:
        before = installed_triggers(engine)
        metadata.create_all(engine)  # checkfirst: nothing to do, no error
        assert installed_triggers(engine) == before
        with pytest.raises(ProgrammingError, match="already exists"):
            metadata.create_all(engine, checkfirst=False)
        assert installed_triggers(engine) == before
    finally:
        metadata.drop_all(engine)
    metadata.drop_all(engine)  # checkfirst: nothing to drop, no error
    assert pgtrigger_functions(engine) == []
    assert installed_triggers(engine) == []


def test_existing_table_gets_triggers_from_install(engine: Engine) -> None:
    """create_all skips a table that exists, so its triggers too; install() adds them."""
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {P}side (id int PRIMARY KEY)"))
    try:
        side_metadata.create_all(engine)
        assert declared(pgtrigger.sqla.ls(engine, SIDE)) == {
            (SIDE, "public", pgtrigger.UNINSTALLED, None)
        }
        pgtrigger.sqla.install(engine, SIDE)
        assert declared(pgtrigger.sqla.ls(engine, SIDE)) == installed_summary(SIDE)
    finally:
        side_metadata.drop_all(engine)
    assert pgtrigger_functions(engine) == []


def test_management_round_trip(tables: Engine) -> None:
    engine = tables
    with engine.begin() as conn:
        conn.execute(insert(post).values(id=1))
        conn.execute(insert(item).values(id=1))
    assert summary(pgtrigger.sqla.ls(engine, metadata=metadata)) == installed_summary(*ALL_URIS)

    # disable / enable
    pgtrigger.sqla.disable(engine, PROTECT, ITEM)
    assert summary(pgtrigger.sqla.ls(engine, metadata=metadata)) == installed_summary(
        CHECK
    ) | installed_summary(PROTECT, ITEM, enabled=False)
    with engine.connect() as conn:
        assert attempt(conn, update(item).values(qty=2)) is None
        assert attempt(conn, delete(post)) is None
    pgtrigger.sqla.enable(engine)  # every trigger
    with engine.connect() as conn:
        assert attempt(conn, delete(post)) == f"{CANNOT_DELETE} {P}post table"

    # uninstall / install, one and all
    pgtrigger.sqla.uninstall(engine, PROTECT)
    assert pgid(PROTECT) not in {f.split(".")[1] for f in pgtrigger_functions(engine)}
    assert (PROTECT, "public", pgtrigger.UNINSTALLED, None) in summary(
        pgtrigger.sqla.ls(engine, metadata=metadata)
    )
    pgtrigger.sqla.install(engine, PROTECT)
    pgtrigger.sqla.uninstall(engine, metadata=metadata)
    assert installed_triggers(engine) == []
    assert pgtrigger_functions(engine) == []
    pgtrigger.sqla.install(engine, metadata=metadata)
    assert summary(pgtrigger.sqla.ls(engine, metadata=metadata)) == installed_summary(*ALL_URIS)

    # OUTDATED: the stored hash differs
    with engine.begin() as conn:
        conn.execute(text(f"COMMENT ON TRIGGER \"{pgid(PROTECT)}\" ON {P}post IS 'old'"))
    assert (PROTECT, "public", pgtrigger.OUTDATED, True) in summary(
        pgtrigger.sqla.ls(engine, metadata=metadata)
    )
    pgtrigger.sqla.install(engine, PROTECT)
    assert summary(pgtrigger.sqla.ls(engine, metadata=metadata)) == installed_summary(*ALL_URIS)


def test_orphan_is_listed_and_pruned(tables: Engine) -> None:
    engine = tables
    orphan = pgtrigger.Protect(name="orphan", operation=pgtrigger.Update)
    described = pgtrigger.sqla.describe_table(post)
    assert described is not None
    compiled = orphan.compile(described)  # compiled, never registered
    with engine.begin() as conn:
        conn.exec_driver_sql(compiled.install_sql, execution_options={"no_parameters": True})
    rows = pgtrigger.sqla.ls(engine, metadata=metadata)
    assert (compiled.pgid, "public", pgtrigger.PRUNE, True) in summary(rows)
    assert [(r.pgid, r.table) for r in pgtrigger.sqla.prunable(engine, metadata=metadata)] == [
        (compiled.pgid, P + "post")
    ]
    # install() of named URIs, or with prune=False, keeps it
    pgtrigger.sqla.install(engine, PROTECT)
    pgtrigger.sqla.install(engine, metadata=metadata, prune=False)
    assert len(pgtrigger.sqla.prunable(engine, metadata=metadata)) == 1
    pruned = pgtrigger.sqla.prune(engine, metadata=metadata)
    assert [r.pgid for r in pruned] == [compiled.pgid]
    assert pgtrigger.sqla.prunable(engine, metadata=metadata) == []
    assert compiled.pgid not in {f.split(".")[1] for f in pgtrigger_functions(engine)}
    assert summary(pgtrigger.sqla.ls(engine, metadata=metadata)) == installed_summary(*ALL_URIS)
    # install() with no URI prunes as well
    with engine.begin() as conn:
        conn.exec_driver_sql(compiled.install_sql, execution_options={"no_parameters": True})
    pgtrigger.sqla.install(engine, metadata=metadata)
    assert pgtrigger.sqla.prunable(engine, metadata=metadata) == []


def test_connection_bind_joins_the_callers_transaction(tables: Engine) -> None:
    with tables.connect() as conn:
        conn.begin()
        pgtrigger.sqla.uninstall(conn, PROTECT)
        assert declared(pgtrigger.sqla.ls(conn, PROTECT)) == {
            (PROTECT, "public", pgtrigger.UNINSTALLED, None)
        }
        conn.rollback()
        assert declared(pgtrigger.sqla.ls(conn, PROTECT)) == installed_summary(PROTECT)
        conn.rollback()
    # Outside a transaction, a Connection bind commits its own.
    with tables.connect() as conn:
        pgtrigger.sqla.disable(conn, PROTECT)
        assert not conn.in_transaction()
    assert declared(pgtrigger.sqla.ls(tables, PROTECT)) == installed_summary(PROTECT, enabled=False)
    pgtrigger.sqla.enable(tables, PROTECT)


@pytest.mark.parametrize("driver", ASYNC_DRIVERS)
def test_async_management(module_database: Any, tables: Engine, driver: str) -> None:
    async def main() -> None:
        engine = make_async_engine(module_database, driver)
        try:
            rows = await pgtrigger.sqla.ls(engine, metadata=metadata)
            assert summary(rows) == installed_summary(*ALL_URIS)
            await pgtrigger.sqla.disable(engine, ITEM)
            await pgtrigger.sqla.uninstall(engine, PROTECT)
            async with engine.connect() as conn:
                rows = await pgtrigger.sqla.ls(conn, metadata=metadata)
                assert summary(rows) == installed_summary(CHECK) | installed_summary(
                    ITEM, enabled=False
                ) | {(PROTECT, "public", pgtrigger.UNINSTALLED, None)}
                await pgtrigger.sqla.install(conn, PROTECT)
                await pgtrigger.sqla.enable(conn, metadata=metadata)
            assert summary(await pgtrigger.sqla.ls(engine, metadata=metadata)) == installed_summary(
                *ALL_URIS
            )
            orphan = pgtrigger.Protect(name="async_orphan", operation=pgtrigger.Update)
            compiled = orphan.compile(pgtrigger.sqla.describe_table(post))
            async with engine.begin() as conn:
                await conn.run_sync(
                    lambda sync: pgtrigger.sqla.executor.ConnectionExecutor(sync).execute(
                        compiled.install_sql
                    )
                )
            prunable = await pgtrigger.sqla.prunable(engine, metadata=metadata)
            assert [r.pgid for r in prunable] == [compiled.pgid]
            await pgtrigger.sqla.prune(engine, metadata=metadata)
            assert await pgtrigger.sqla.prunable(engine, metadata=metadata) == []
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert summary(pgtrigger.sqla.ls(tables, metadata=metadata)) == installed_summary(*ALL_URIS)


def test_bind_must_be_an_engine_connection_or_session() -> None:
    expected = "bind must be an Engine, Connection, Session, AsyncEngine, AsyncConnection or"
    with pytest.raises(TypeError, match=expected) as info:
        pgtrigger.sqla.ls(object())
    assert "a-prefixed" not in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda e: pgtrigger.sqla.install(e, f"{P}post:protect_deletez"),
        lambda e: pgtrigger.sqla.uninstall(e, f"{P}post:protect_deletez"),
        lambda e: pgtrigger.sqla.enable(e, f"{P}post:protect_deletez"),
        lambda e: pgtrigger.sqla.disable(e, f"{P}post:protect_deletez"),
        lambda e: pgtrigger.sqla.ls(e, f"{P}post:protect_deletez"),
        lambda e: pgtrigger.ignore(f"{P}post:protect_deletez").__enter__(),
        lambda e: pgtrigger.is_ignored(f"{P}post:protect_deletez"),
    ],
    ids=["install", "uninstall", "enable", "disable", "ls", "ignore", "is_ignored"],
)
def test_unknown_uri_names_the_closest(engine: Engine, call: Any) -> None:
    with pytest.raises(LookupError, match=re.escape(f"did you mean {PROTECT}")) as info:
        call(engine)
    assert isinstance(info.value, pgtrigger.UnknownTriggerError)
    assert f"{P}post:protect_deletez" in str(info.value)


def test_ls_of_named_uris_lists_only_those(tables: Engine) -> None:
    """``ls(bind, uri)`` reports that trigger; declared triggers are never PRUNE."""
    rows = pgtrigger.sqla.ls(tables, PROTECT)
    assert summary(rows) == installed_summary(PROTECT)


def test_triggers_of_another_metadata_are_not_pruned(tables: Engine) -> None:
    """Triggers that code declares (on another MetaData's tables) are not orphans."""
    side_metadata.create_all(tables)
    assert declared(pgtrigger.sqla.ls(tables, SIDE)) == installed_summary(SIDE)
    try:
        pgtrigger.sqla.install(tables, metadata=metadata)  # no URI: install and prune
        assert declared(pgtrigger.sqla.ls(tables, SIDE)) == installed_summary(SIDE)
        assert pgtrigger.sqla.prunable(tables, metadata=metadata) == []
    finally:
        side_metadata.drop_all(tables)


def test_drop_all_removes_functions_of_every_schema(engine: Engine) -> None:
    metadata.create_all(engine)
    assert sorted(pgtrigger_functions(engine)) == sorted(
        [f"public.{pgid(PROTECT)}", f"public.{pgid(CHECK)}", f"{SCHEMA}.{pgid(ITEM)}"]
    )
    metadata.drop_all(engine)
    assert pgtrigger_functions(engine) == []
    assert not inspect(engine).has_schema(SCHEMA)


def test_ls_is_one_statement_without_a_transaction(tables: Engine) -> None:
    """ls reads the catalog with one query in autocommit: no BEGIN/COMMIT, one round trip."""
    seen: list[tuple[str, bool]] = []

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement, conn.connection.dbapi_connection.autocommit))

    event.listen(tables, "before_cursor_execute", on_statement)
    try:
        rows = pgtrigger.sqla.ls(tables)
    finally:
        event.remove(tables, "before_cursor_execute", on_statement)
    assert rows and len(seen) == 1 and seen[0][1] is True, seen
