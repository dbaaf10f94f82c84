"""Helpers of the Citus tests: one runner for the three drivers, and the shards' view."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import pgtrigger
import pgtrigger.sqla

DRIVERS = ("psycopg", "psycopg2", "asyncpg")


class Db:
    """Runs ``fn(connection)`` on a SQLAlchemy connection of one driver (asyncpg through an
    AsyncEngine and ``run_sync``, so the same test body serves the three)."""

    def __init__(self, url: str, driver: str) -> None:
        self.driver = driver
        self.is_async = driver == "asyncpg"
        self.engine: Any = (
            create_async_engine(url, poolclass=NullPool)
            if self.is_async
            else sa.create_engine(url, poolclass=NullPool)
        )

    def run(self, fn: Callable[[Connection], Any], autocommit: bool = False) -> Any:
        if not self.is_async:
            if autocommit:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    return fn(c)
            with self.engine.begin() as c:
                return fn(c)

        async def go() -> Any:
            if autocommit:
                async with self.engine.connect() as c:
                    c = await c.execution_options(isolation_level="AUTOCOMMIT")
                    return await c.run_sync(fn)
            async with self.engine.begin() as c:
                return await c.run_sync(fn)

        return asyncio.run(go())

    def sql(self, *statements: str, autocommit: bool = False) -> list[Any]:
        """Run statements (one per call), returning the last one's rows (if any)."""

        def go(c: Connection) -> list[Any]:
            rows: list[Any] = []
            for statement in statements:
                result = c.exec_driver_sql(statement)
                rows = list(result.fetchall()) if result.returns_rows else []
            return rows

        return self.run(go, autocommit=autocommit)  # type: ignore[no-any-return]

    def statuses(self, md: sa.MetaData) -> dict[str, tuple[str, bool | None, str | None]]:
        rows = self.run(lambda c: pgtrigger.sqla.ls(c, metadata=md))
        return {r.uri: (r.status, r.enabled, r.drift) for r in rows}


def distribute(db: Db, schema: str, table: str, kind: str) -> None:
    """Distribute ``schema.table`` (hash on ``id``) or make it a reference table."""
    name = f'"{schema}"."{table}"'
    if kind == "hash":
        db.sql(f"SELECT create_distributed_table('{name}', 'id')")
    else:
        db.sql(f"SELECT create_reference_table('{name}')")


_NODE_QUERY = (
    "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname, t.tgname,"
    " t.tgenabled <> 'D')), '[]') FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname LIKE 'pgtrigger\\_%'"
    " AND NOT t.tgisinternal"
)


def shard_triggers(dsn: str, schema: str, table: str) -> dict[str, list[bool]]:
    """pgid -> enabled state of each shard placement's copy of it, over every node (shard
    copies are named ``<pgid>_<shardid>`` on tables ``<table>_<shardid>``)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        shards = {
            int(r[0])
            for r in conn.execute(
                "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = %s::regclass",
                (f'"{schema}"."{table}"',),
            )
        }
        found: dict[str, list[bool]] = {}
        for (result,) in conn.execute(
            "SELECT result FROM run_command_on_all_nodes(%s)", (_NODE_QUERY,)
        ):
            for nsp, rel, name, enabled in json.loads(result):
                base, _, shard = name.rpartition("_")
                ours = nsp == schema and shard.isdigit() and int(shard) in shards
                if ours and rel == f"{table}_{shard}":
                    found.setdefault(base, []).append(bool(enabled))
    return found


def placements(dsn: str, schema: str, table: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)"
            " WHERE s.logicalrelid = %s::regclass",
            (f'"{schema}"."{table}"',),
        ).fetchone()
    assert row is not None
    return int(row[0])


def functions_on_nodes(dsn: str, schema: str) -> int:
    """pgtrigger functions in ``schema`` over every node."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT result FROM run_command_on_all_nodes(%s)",
            (
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                f" WHERE n.nspname = '{schema}' AND p.proname LIKE 'pgtrigger\\_%'",
            ),
        ).fetchall()
    return sum(int(r[0]) for r in rows)


def refused(fn: Callable[[], Any]) -> str:
    """The message of the error ``fn`` raises (it must raise)."""
    try:
        fn()
    except Exception as exc:  # any driver's error
        return str(exc)
    raise AssertionError("expected an error")
