"""Concurrency soak: random nested ``ignore`` / ``schema`` blocks under real concurrency.

Per server, at the same time: 16 threads over a pooled psycopg 3 Engine (6 connections),
64 asyncio tasks over a pooled asyncpg AsyncEngine (8 connections), and a Django process
(subprocess of the same venv: Django is configured once per process, and the Django suite
owns this one) with threads on persistent connections and on a psycopg pool.

Each worker follows a seeded random plan: units of work on one checked-out connection, in
transactions or in autocommit; in each, 0-3 levels of ``ignore(random triggers)`` /
``schema(random tenant)``, random writes, savepoints (released or rolled back), exceptions
raised inside blocks and caught outside, and a statement that fails (unique violation) now and
then. Every write's outcome is predicted from the state its context asks for and compared
with what happened (which trigger refused it, or which schema's table took the row). After
every outermost block, whenever a connection is checked out, and for every pooled connection
at the end, the *same* DB-API connection is read through the driver itself (libpq for psycopg,
the asyncpg connection), so no pgtrigger hook runs: no ``pgtrigger.ignore`` value, the
original ``search_path``, no transaction left open. ``test_checks_fail_when_they_should``
makes sure those checks do catch leaks and wrong outcomes.

Size: ``PGTRIGGER_SOAK_OPS`` writes in all (default 20,000, split over the selected servers
and the drivers; ``full`` means 1,000,000), seed ``PGTRIGGER_SOAK_SEED`` (printed). Run it with
``pytest tests/reliability/test_soak.py -s`` to see the figures. The Django side runs as
``python -m tests.reliability.test_soak '<json config>'`` and prints its figures as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import pytest
from psycopg import pq, sql
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    false,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import pgtrigger
import pgtrigger.sqla
from tests.pgservers import pool_of

# -- size ---------------------------------------------------------------------------------------

T = TypeVar("T")
OPS_ENV, SEED_ENV = "PGTRIGGER_SOAK_OPS", "PGTRIGGER_SOAK_SEED"
DEFAULT_OPS, FULL_OPS = 20_000, 1_000_000
THREADS, THREAD_POOL = 16, 6
TASKS, TASK_POOL = 64, 8
DJANGO_THREADS = {"default": 3, "pooled": 3}  # "pooled": Django's psycopg pool, max 2
DJANGO_POOL = {"min_size": 1, "max_size": 2, "timeout": 60}
#: Share of a server's writes per driver (chosen so that the drivers finish together).
SHARES = {"psycopg": 0.35, "asyncpg": 0.25, "django": 0.4}


def total_ops() -> int:
    raw = os.environ.get(OPS_ENV, "").strip().lower()
    if raw == "full":
        return FULL_OPS
    return int(raw.replace("_", "")) if raw else DEFAULT_OPS


def seed() -> int:
    raw = os.environ.get(SEED_ENV, "").strip()
    return int(raw) if raw else random.SystemRandom().randrange(2**32)


# -- schema: the same tables in public and in two tenant schemas -------------------------------

TENANTS = ("tenant_a", "tenant_b")
SCHEMAS = ("public", *TENANTS)
metadata = MetaData()
ITEM = Table(
    "soak_item",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("worker", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("frozen", Boolean, nullable=False, server_default=false()),
)
LOG = Table(
    "soak_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("worker", Integer, nullable=False),
    Column("note", String(8), nullable=False),
)
pgtrigger.sqla.register(
    ITEM,
    pgtrigger.Protect(
        name="no_negative",
        operation=pgtrigger.Insert | pgtrigger.Update,
        condition=pgtrigger.Q(new__n__lt=0),
    ),
    # A second trigger on the same table, with its own message (naming the schema), so that a
    # write refused while the other one is ignored shows which trigger refused it.
    pgtrigger.Trigger(
        name="frozen_rows",
        when=pgtrigger.Before,
        operation=pgtrigger.Update | pgtrigger.Delete,
        condition=pgtrigger.Q(old__frozen=True),
        func="RAISE EXCEPTION 'soak: frozen_rows in %', TG_TABLE_SCHEMA;",
    ),
)
pgtrigger.sqla.register(
    LOG, pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)
)
URIS = {
    "no_negative": "soak_item:no_negative",
    "frozen_rows": "soak_item:frozen_rows",
    "append_only": "soak_log:append_only",
}
#: Row triggers fire in the order of their names (pgids): the first not ignored refuses.
FIRING_ORDER = sorted(URIS, key=lambda name: pgtrigger.registry.pgid_of(URIS[name]))
#: Which trigger a Protect message ("... rows from <table> table") comes from.
PROTECT_OF_TABLE = {"soak_item": "no_negative", "soak_log": "append_only"}

#: Seeded rows: each worker (key k) owns, in every schema, item rows BASE+10k (free) and
#: BASE+10k+1 (frozen) and log row BASE+10k; it never touches another worker's rows.
BASE = 1_000_000_000
WORKER_KEYS = {"psycopg": 0, "asyncpg": 100, "django": 200, "django-pool": 300}

STATEMENTS = {
    "ins_item": "INSERT INTO soak_item (worker, n) VALUES ({w}, {n}) RETURNING tableoid",
    "upd_item": "UPDATE soak_item SET n = {n} WHERE id = {id} RETURNING tableoid",
    "del_item": "DELETE FROM soak_item WHERE id = {id} RETURNING tableoid",
    "put_item": "INSERT INTO soak_item (id, worker, n, frozen) VALUES ({id}, {w}, 0, {frozen})"
    " RETURNING tableoid",
    "ins_log": "INSERT INTO soak_log (worker, note) VALUES ({w}, 'new') RETURNING tableoid",
    "upd_log": "UPDATE soak_log SET note = 'upd' WHERE id = {id} RETURNING tableoid",
    "del_log": "DELETE FROM soak_log WHERE id = {id} RETURNING tableoid",
    "put_log": "INSERT INTO soak_log (id, worker, note) VALUES ({id}, {w}, 'put') RETURNING tableoid",
    # The log row exists: a unique violation, whatever is ignored.
    "dup_log": "INSERT INTO soak_log (id, worker, note) VALUES ({id}, {w}, 'dup') RETURNING tableoid",
}
_PARAM = re.compile(r"\{(\w+)\}")
#: The statements in each driver's parameter style (SQLAlchemy text(), Django cursors).
NAMED = {k: _PARAM.sub(r":\1", v) for k, v in STATEMENTS.items()}
PYFORMAT = {k: _PARAM.sub(r"%(\1)s", v) for k, v in STATEMENTS.items()}
RESTORE = {"del_item": "put_item", "del_log": "put_log"}

#: Read with the driver's own cursor: what the connection carries, bypassing every hook.
RAW_SQL = "SELECT current_setting('pgtrigger.ignore', true), current_setting('search_path')"
NO_IGNORE = (None, "", "{}")


# -- plans --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    kind: str
    n: int = 0
    frozen: bool = False


@dataclass(frozen=True)
class Raise:
    """An application exception, caught outside the block (or by a savepoint/transaction)."""


@dataclass(frozen=True)
class Ctx:
    """``pgtrigger.ignore(*names)`` (no name: every trigger) or ``pgtrigger.schema(*names)``."""

    kind: str
    names: tuple[str, ...]
    catch: bool  # catch a Raise from inside, outside the block, and go on
    how: str  # "with", "async with" or "decorator" (of the coroutine that runs the children)
    children: tuple[Any, ...]


@dataclass(frozen=True)
class Savepoint:
    rollback: bool
    children: tuple[Any, ...]


@dataclass(frozen=True)
class Tx:
    rollback: bool
    propagate: bool  # re-raise a caught exception after the rollback
    children: tuple[Any, ...]


class Planned(Exception):
    """Raised by a plan's ``Raise`` (and re-raised by a ``Tx`` that propagates)."""


class WriteFailed(Exception):
    """A statement failed inside a transaction: the nearest savepoint or the transaction
    must roll back before anything else runs."""


@dataclass(frozen=True)
class Active:
    """The state the contexts around a write ask for."""

    ignored: frozenset[str] = frozenset()
    schemas: tuple[str, ...] = ()

    def enter(self, ctx: Ctx) -> Active:
        if ctx.kind == "ignore":
            return Active(self.ignored | frozenset(ctx.names or URIS), self.schemas)
        added = tuple(s for s in dict.fromkeys(ctx.names) if s not in self.schemas)
        return Active(self.ignored, self.schemas + added)

    @property
    def target(self) -> str:
        return self.schemas[0] if self.schemas else "public"


def blockers(write: Write) -> set[str]:
    """The triggers that refuse ``write`` unless ignored."""
    return {
        "ins_item": {"no_negative"} if write.n < 0 else set(),
        "upd_item": ({"no_negative"} if write.n < 0 else set())
        | ({"frozen_rows"} if write.frozen else set()),
        "del_item": {"frozen_rows"} if write.frozen else set(),
        "ins_log": set(),
        "upd_log": {"append_only"},
        "del_log": {"append_only"},
        "dup_log": set(),
    }[write.kind]


def expected(write: Write, active: Active) -> tuple[str, str]:
    """The outcome the contract promises: which trigger refuses, or which table takes it."""
    if write.kind == "dup_log":
        return ("unique", "")
    refusing = blockers(write)
    for name in FIRING_ORDER:
        if name in refusing and name not in active.ignored:
            where = f" in {active.target}" if name == "frozen_rows" else ""
            return ("blocked", name + where)
    table = "soak_item" if write.kind.endswith("_item") else "soak_log"
    return ("ok", f"{active.target}.{table}")


_FROZEN_MESSAGE = re.compile(r"soak: frozen_rows in (\w+)")
_PROTECT_MESSAGE = re.compile(r"pgtrigger: Cannot [\w ]+ rows from (\w+) table")


def observed(error: str | None, oid: Any, tables: dict[int, str]) -> tuple[str, str]:
    if error is None:
        return ("ok", tables.get(oid, f"no row (oid {oid})") if oid is not None else "no row")
    if match := _FROZEN_MESSAGE.match(error):
        return ("blocked", f"frozen_rows in {match[1]}")
    if match := _PROTECT_MESSAGE.match(error):
        return ("blocked", PROTECT_OF_TABLE.get(match[1], error))
    if error.startswith("duplicate key value violates unique constraint"):
        return ("unique", "")
    return ("error", error)


def error_text(exc: BaseException) -> str:
    """The server's message (first line), whatever the driver's exception looks like."""
    message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return re.sub(r"^<class '[\w.]+'>: ", "", message)  # asyncpg through SQLAlchemy


class Planner:
    """Random plans, reproducible from the worker's seed."""

    def __init__(self, rng: random.Random, key: int) -> None:
        self.rng = rng
        self.key = key
        self.budget = 0

    def segment(self, autocommit: bool) -> Any:
        """One outermost unit: a block (or plain writes), its transactions inside or around."""
        rng = self.rng
        self.budget = rng.randint(4, 12)
        depth = rng.choice((0, 1, 1, 2, 2, 3, 3))
        if autocommit:
            return self.ctx(depth, False) if depth else self.body(0, False)
        if depth and rng.random() < 0.4:  # the transaction(s) inside the outermost block
            txs = tuple(self.tx(depth - 1) for _ in range(rng.choice((1, 1, 2))))
            return self.ctx(depth, False, children=txs)
        return self.tx(depth)

    def tx(self, depth: int) -> Tx:
        r = self.rng.random()
        return Tx(rollback=r < 0.1, propagate=r > 0.8, children=self.body(depth, True))

    def ctx(self, depth: int, savepoints: bool, children: tuple[Any, ...] | None = None) -> Ctx:
        rng = self.rng
        if rng.random() < 0.55:
            names: tuple[str, ...] = ()
            if rng.random() > 0.1:  # else: ignore() with no URI, every trigger
                names = tuple(rng.sample(sorted(URIS), rng.randint(1, len(URIS))))
            kind = "ignore"
        else:
            kind = "schema"
            names = (rng.choice(("tenant_a", "tenant_b", "tenant_a", "tenant_b", "public")),)
            if rng.random() < 0.15:
                names += (rng.choice(TENANTS),)
        if children is None:
            children = self.body(depth - 1, savepoints)
        how = rng.choice(("with", "with", "async with", "decorator"))
        return Ctx(kind, names, rng.random() < 0.3, how, children)

    def body(self, depth: int, savepoints: bool) -> tuple[Any, ...]:
        rng = self.rng
        items: list[Any] = []
        for _ in range(rng.randint(2, 4)):
            if self.budget <= 0:
                break
            self.budget -= 1
            r = rng.random()
            if depth > 0 and r < 0.35:
                items.append(self.ctx(depth, savepoints))
            elif savepoints and r < 0.5:
                items.append(Savepoint(rng.random() < 0.3, self.body(depth, savepoints)))
            elif r < 0.54:
                items.append(Raise())
                break
            else:
                items.append(self.write())
        return tuple(items)

    def write(self) -> Write:
        rng = self.rng
        kind = rng.choices(
            ("ins_item", "upd_item", "del_item", "ins_log", "upd_log", "del_log", "dup_log"),
            weights=(3, 4, 2, 2, 2, 1, 1),
        )[0]
        return Write(kind, rng.randint(-3, 5), rng.random() < 0.5)

    def params(self, write: Write) -> dict[str, Any]:
        item_id = BASE + 10 * self.key + (1 if write.frozen else 0)
        row_id = item_id if write.kind.endswith("_item") else BASE + 10 * self.key
        return {"w": self.key, "n": write.n, "id": row_id, "frozen": write.frozen}


# -- running plans ------------------------------------------------------------------------------


@dataclass
class Figures:
    operations: int = 0  # writes attempted (a delete and its restore count once)
    blocked: int = 0  # writes a trigger refused
    bypassed: int = 0  # writes that succeeded because every trigger refusing them was ignored
    in_tenants: int = 0  # writes that landed in a tenant schema's table (pgtrigger.schema)
    failing: int = 0  # statements planned to fail (unique violation)
    autocommit_ops: int = 0
    units: int = 0  # connection checkouts
    transactions: int = 0
    blocks: int = 0  # outermost ignore/schema blocks
    nested: int = 0  # ignore/schema blocks inside another
    savepoints: int = 0
    raised: int = 0
    checks: int = 0  # raw reads of a connection's state
    leaks: int = 0
    wrong: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        for f in fields(self):
            if f.name == "examples":
                self.examples += other.examples[: max(0, 10 - len(self.examples))]
            elif f.name == "seconds":
                self.seconds = max(self.seconds, other.seconds)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        return cls(**data)

    def line(self, label: str) -> str:
        rate = self.operations / self.seconds if self.seconds else 0.0
        return (
            f"{label:<22} ops {self.operations:>7,}  blocked {self.blocked:>6,}"
            f"  bypassed {self.bypassed:>6,}  in tenants {self.in_tenants:>6,}"
            f"  failing {self.failing:>5,}  autocommit {self.autocommit_ops:>6,}"
            f"  units {self.units:>6,}  tx {self.transactions:>6,}  blocks {self.blocks:>6,}"
            f"  nested {self.nested:>6,}  savepoints {self.savepoints:>6,}"
            f"  raised {self.raised:>5,}  checks {self.checks:>6,}  leaks {self.leaks}"
            f"  wrong {self.wrong}  ({self.seconds:.1f} s, {rate:,.0f} ops/s)"
        )


async def aw(value: Any) -> Any:
    """Await what an async driver returned; pass a sync driver's result through."""
    return await value if inspect.isawaitable(value) else value


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (sync adapters only) without an event loop.

    Django refuses to run inside a running event loop; plain threads need none either.
    """
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("a sync adapter awaited something")


class Runner:
    """Runs one worker's plans through an adapter (one per driver, sync or async).

    An adapter has ``style`` ("named" or "pyformat") and ``write(sql, params)`` -> (error
    message or None, returned tableoid), ``begin/commit/rollback``, ``savepoint`` ->
    handle, ``release(h)``, ``rollback_to(h)``, and ``raw_state()`` -> (pgtrigger.ignore,
    search_path, transaction open?) read with the driver's own cursor. Sync adapters return
    values, async ones awaitables: the same code drives both.
    """

    def __init__(
        self, label: str, planner: Planner, quota: int, tables: dict[int, str], base_path: str
    ) -> None:
        self.label = label
        self.planner = planner
        self.quota = quota
        self.tables = tables
        self.base_path = base_path
        self.figures = Figures()
        self.autocommit = False

    @property
    def done(self) -> bool:
        return self.figures.operations >= self.quota

    async def unit(self, adapter: Any, autocommit: bool) -> None:
        """A checked-out connection: check it, run 1-3 outermost blocks, check after each."""
        self.autocommit = autocommit
        self.figures.units += 1
        await self.check(adapter, "at checkout")
        for _ in range(self.planner.rng.randint(1, 3)):
            plan = self.planner.segment(autocommit)
            with contextlib.suppress(Planned):  # raised inside, caught outside every block
                for node in plan if isinstance(plan, tuple) else (plan,):
                    await self.run(node, adapter, Active(), 0)
            assert pgtrigger.runtime.current() == pgtrigger.runtime.DEFAULT
            await self.check(adapter, f"after {plan!r}")
            if self.done:
                break

    async def check(self, adapter: Any, where: str) -> None:
        self.figures.checks += 1
        ignore, path, open_tx = await aw(adapter.raw_state())
        if ignore not in NO_IGNORE or path != self.base_path or open_tx:
            self.figures.leaks += 1
            self.note(
                f"LEAK {where}: pgtrigger.ignore={ignore!r} search_path={path!r}"
                f" (expected {self.base_path!r}) transaction open={open_tx}"
            )

    def note(self, message: str) -> None:
        if len(self.figures.examples) < 10:
            self.figures.examples.append(f"{self.label}: {message[:600]}")

    async def run(self, node: Any, adapter: Any, active: Active, depth: int) -> None:
        figures = self.figures
        if isinstance(node, Write):
            await self.write(node, adapter, active)
        elif isinstance(node, Raise):
            figures.raised += 1
            raise Planned()
        elif isinstance(node, Ctx):
            if depth:
                figures.nested += 1
            else:
                figures.blocks += 1
            inner = active.enter(node)
            if node.kind == "ignore":
                context = pgtrigger.ignore(*(URIS[name] for name in node.names))
            else:
                context = pgtrigger.schema(*node.names)

            async def children() -> None:
                for child in node.children:
                    await self.run(child, adapter, inner, depth + 1)

            try:
                if node.how == "decorator":
                    await context(children)()
                elif node.how == "async with":
                    async with context:
                        await children()
                else:
                    with context:
                        await children()
            except Planned:
                if not node.catch:
                    raise
        elif isinstance(node, Savepoint):
            figures.savepoints += 1
            handle = await aw(adapter.savepoint())
            try:
                for child in node.children:
                    await self.run(child, adapter, active, depth)
            except (Planned, WriteFailed):
                await aw(adapter.rollback_to(handle))
            else:
                await aw(adapter.rollback_to(handle) if node.rollback else adapter.release(handle))
        elif isinstance(node, Tx):
            figures.transactions += 1
            await aw(adapter.begin())
            try:
                for child in node.children:
                    await self.run(child, adapter, active, depth)
            except (Planned, WriteFailed) as exc:
                await aw(adapter.rollback())
                if node.propagate:
                    raise Planned() from exc
            else:
                await aw(adapter.rollback() if node.rollback else adapter.commit())
        else:
            raise TypeError(node)

    async def write(self, write: Write, adapter: Any, active: Active) -> None:
        figures = self.figures
        figures.operations += 1
        figures.autocommit_ops += self.autocommit
        figures.failing += write.kind == "dup_log"
        statements = NAMED if adapter.style == "named" else PYFORMAT
        params = self.planner.params(write)
        want = expected(write, active)
        error, oid = await aw(adapter.write(statements[write.kind], params))
        got = observed(error, oid, self.tables)
        figures.blocked += got[0] == "blocked"
        if got == want and got[0] == "ok" and write.kind in RESTORE:
            error, oid = await aw(adapter.write(statements[RESTORE[write.kind]], params))
            got = observed(error, oid, self.tables)
        figures.bypassed += got == want and got[0] == "ok" and bool(blockers(write))
        figures.in_tenants += got == want and got[0] == "ok" and not got[1].startswith("public.")
        if got != want:
            figures.wrong += 1
            self.note(f"WRONG {write} under {active}: expected {want}, got {got}")
        if got[0] != "ok" and not self.autocommit:
            raise WriteFailed()


# -- SQLAlchemy adapters ----------------------------------------------------------------------


class SqlaSync:
    """A psycopg 3 Engine's Connection (transactions begun explicitly or by autobegin, in turn)."""

    style = "named"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.explicit = False

    def write(self, statement: str, params: dict[str, Any]) -> tuple[str | None, Any]:
        try:
            row = self.conn.execute(text(statement), params).first()
        except DBAPIError as exc:
            return error_text(exc), None
        return None, row[0] if row else None

    def begin(self) -> None:
        self.explicit = not self.explicit
        if self.explicit:
            self.conn.begin()  # else the first statement begins it

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def savepoint(self) -> Any:
        return self.conn.begin_nested()

    def release(self, handle: Any) -> None:
        handle.commit()

    def rollback_to(self, handle: Any) -> None:
        handle.rollback()

    def raw_state(self) -> tuple[Any, Any, bool]:
        return psycopg_state(self.conn.connection.dbapi_connection)


def psycopg_state(dbapi: Any) -> tuple[Any, Any, bool]:
    """Read a psycopg 3 connection's settings through libpq itself (``pgconn.exec_``): no hook,
    no implicit BEGIN, one round trip."""
    pgconn = dbapi.pgconn
    open_tx = pgconn.transaction_status != pq.TransactionStatus.IDLE
    result = pgconn.exec_(RAW_SQL.encode())
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise RuntimeError(result.error_message.decode(errors="replace"))
    ignore, path = (result.get_value(0, i) for i in (0, 1))
    return (None if ignore is None else ignore.decode()), path.decode(), open_tx


class SqlaAsync:
    """An asyncpg AsyncEngine's AsyncConnection (explicit begin or autobegin, in turn)."""

    style = "named"

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.explicit = False

    async def write(self, statement: str, params: dict[str, Any]) -> tuple[str | None, Any]:
        try:
            row = (await self.conn.execute(text(statement), params)).first()
        except DBAPIError as exc:
            return error_text(exc), None
        return None, row[0] if row else None

    async def begin(self) -> None:
        self.explicit = not self.explicit
        if self.explicit:
            await self.conn.begin()

    async def commit(self) -> None:
        await self.conn.commit()

    async def rollback(self) -> None:
        await self.conn.rollback()

    async def savepoint(self) -> Any:
        return await self.conn.begin_nested()

    async def release(self, handle: Any) -> None:
        await handle.commit()

    async def rollback_to(self, handle: Any) -> None:
        await handle.rollback()

    async def raw_state(self) -> tuple[Any, Any, bool]:
        fairy = await self.conn.get_raw_connection()
        driver: Any = fairy.driver_connection  # the asyncpg connection itself
        open_tx = driver.is_in_transaction()
        row = await driver.fetchrow(RAW_SQL)
        return row[0], row[1], open_tx


async def sqla_sync_worker(engine: Engine, runner: Runner) -> None:
    while not runner.done:
        autocommit = runner.planner.rng.random() < 0.3
        with engine.connect() as conn:
            if autocommit:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            await runner.unit(SqlaSync(conn), autocommit)


async def sqla_async_worker(engine: AsyncEngine, runner: Runner) -> None:
    while not runner.done:
        autocommit = runner.planner.rng.random() < 0.3
        async with engine.connect() as conn:
            if autocommit:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            await runner.unit(SqlaAsync(conn), autocommit)


# -- Django (in a subprocess: python -m tests.reliability.test_soak '<json>') -------------------


class DjangoAdapter:
    """Django's connection of this thread: raw cursors, atomic blocks, savepoints."""

    style = "pyformat"

    def __init__(self, alias: str) -> None:
        from django.db import connections

        self.alias = alias
        self.connection = connections[alias]
        self.atomics: list[Any] = []

    def write(self, statement: str, params: dict[str, Any]) -> tuple[str | None, Any]:
        from django.db import DatabaseError

        try:
            with self.connection.cursor() as cursor:
                cursor.execute(statement, params)
                row = cursor.fetchone()
        except DatabaseError as exc:
            return error_text(exc), None
        return None, row[0] if row else None

    def begin(self) -> None:
        self.savepoint()

    def commit(self) -> None:
        self.release(self.atomics[-1])

    def rollback(self) -> None:
        self.rollback_to(self.atomics[-1])

    def savepoint(self) -> Any:
        from django.db import transaction

        atomic = transaction.atomic(using=self.alias)
        atomic.__enter__()
        self.atomics.append(atomic)
        return atomic

    def release(self, handle: Any) -> None:
        assert self.atomics.pop() is handle
        handle.__exit__(None, None, None)

    def rollback_to(self, handle: Any) -> None:
        from django.db import transaction

        transaction.set_rollback(True, using=self.alias)
        self.release(handle)

    def raw_state(self) -> tuple[Any, Any, bool]:
        self.connection.ensure_connection()
        return psycopg_state(self.connection.connection)


def django_worker(alias: str, runner: Runner, errors: list[str]) -> None:
    import traceback

    from django.db import connections

    async def work() -> None:
        while not runner.done:
            adapter = DjangoAdapter(alias)
            autocommit = runner.planner.rng.random() < 0.4
            await runner.unit(adapter, autocommit)
            if alias == "pooled" or runner.planner.rng.random() < 0.1:
                adapter.connection.close()  # back to the pool / a new connection next time

    try:
        run_sync(work())
    except BaseException:
        errors.append(traceback.format_exc())
    finally:
        connections.close_all()


def django_main(config: dict[str, Any]) -> dict[str, Any]:
    """Configure Django on the soak database, run its threads, return figures per alias."""
    import django
    from django.conf import settings
    from django.db import connections

    database = config["database"]
    options = dict(database.get("OPTIONS", {}))
    settings.configure(
        DATABASES={
            "default": database,
            "pooled": {**database, "OPTIONS": {**options, "pool": DJANGO_POOL}},
        },
        INSTALLED_APPS=["pgtrigger"],
        USE_TZ=True,
    )
    django.setup()
    tables = {int(k): v for k, v in config["tables"].items()}
    runners: dict[str, list[Runner]] = {}
    threads = []
    errors: list[str] = []
    started = time.monotonic()
    for alias, count in DJANGO_THREADS.items():
        driver = "django" if alias == "default" else "django-pool"
        runners[driver] = [
            make_runner(
                config["seed"], config["server"], driver, i, quota, tables, config["base_path"]
            )
            for i, quota in enumerate(quotas(config["quotas"][driver], count))
        ]
        threads += [
            threading.Thread(target=django_worker, args=(alias, runner, errors))
            for runner in runners[driver]
        ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connections["pooled"].close_pool()
    if errors:
        raise RuntimeError("a Django worker failed:\n" + "\n".join(errors))
    result = {}
    for driver, group in runners.items():
        total = Figures()
        for runner in group:
            total.add(runner.figures)
        total.seconds = time.monotonic() - started
        result[driver] = total.as_dict()
    return result


def make_runner(
    seed_: int,
    server: str,
    driver: str,
    index: int,
    quota: int,
    tables: dict[int, str],
    base_path: str,
) -> Runner:
    rng = random.Random(f"{seed_}/{server}/{driver}/{index}")
    planner = Planner(rng, WORKER_KEYS[driver] + index)
    return Runner(f"{server}/{driver}#{index}", planner, quota, tables, base_path)


def quotas(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


# -- the test -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def soak_database(module_database: Any) -> Iterator[Any]:
    """The tables and triggers in public, tenant_a and tenant_b, and each worker's rows."""
    engine = create_engine(module_database.sqlalchemy_url("psycopg"))
    try:
        metadata.create_all(engine)
        with module_database.connect(autocommit=True) as conn:
            # Durability is not under test: commits need not wait for the disk (the service
            # server flushes its WAL; the embedded one runs with fsync off anyway).
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                    sql.Identifier(module_database.name)
                )
            )
            for tenant in TENANTS:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(tenant)))
                for table in metadata.tables.values():
                    conn.execute(
                        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                            sql.Identifier(tenant, table.name), sql.Identifier("public", table.name)
                        )
                    )
        pgtrigger.sqla.install(engine, *URIS.values(), schema=list(TENANTS))
        statuses = {
            (s.uri, s.schema, s.status)
            for s in pgtrigger.sqla.ls(engine, *URIS.values(), schema=list(SCHEMAS))
        }
        assert statuses == {
            (uri, schema, "INSTALLED") for uri in URIS.values() for schema in SCHEMAS
        }
        keys = [base + i for base in WORKER_KEYS.values() for i in range(TASKS)]
        with module_database.connect() as conn:
            for schema in SCHEMAS:
                with conn.cursor() as cur:
                    item = sql.Identifier(schema, "soak_item")
                    log = sql.Identifier(schema, "soak_log")
                    cur.executemany(
                        sql.SQL(
                            "INSERT INTO {} (id, worker, n, frozen) VALUES (%s, %s, 0, %s)"
                        ).format(item),
                        [(BASE + 10 * k + f, k, bool(f)) for k in keys for f in (0, 1)],
                    )
                    cur.executemany(
                        sql.SQL("INSERT INTO {} (id, worker, note) VALUES (%s, %s, 'seed')").format(
                            log
                        ),
                        [(BASE + 10 * k, k) for k in keys],
                    )
            conn.commit()
        yield module_database
    finally:
        engine.dispose()


def tables_and_path(database: Any) -> tuple[dict[int, str], str]:
    with database.connect(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.oid::int8, n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname IN ('soak_item', 'soak_log') AND c.relkind = 'r'"
        ).fetchall()
        path = conn.execute("SHOW search_path").fetchone()
    assert len(rows) == 6 and path is not None
    return {int(oid): name for oid, name in rows}, str(path[0])


@pytest.mark.timeout(max(300, total_ops() // 40))
def test_soak(soak_database: Any, pytestconfig: pytest.Config) -> None:
    """Every write as promised, no state left on any connection: leaks and wrong are 0."""
    servers = len(pool_of(pytestconfig).settings.selected)
    per_server = max(1, total_ops() // servers)
    seed_ = seed()
    server = soak_database.server.name
    tables, base_path = tables_and_path(soak_database)
    split = {driver: int(per_server * share) for driver, share in SHARES.items()}
    config = {
        "database": soak_database.django_settings(),
        "seed": seed_,
        "server": server,
        "quotas": dict(zip(("django", "django-pool"), quotas(split["django"], 2))),
        "tables": {str(k): v for k, v in tables.items()},
        "base_path": base_path,
    }
    print(
        f"\nsoak on {soak_database.server.label} (PostgreSQL {soak_database.server.version}): seed {seed_}"
        f" ({SEED_ENV}={seed_} repeats the plans), {per_server:,} writes"
    )
    django_proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.test_soak", json.dumps(config)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    stack = contextlib.ExitStack()
    try:
        sync_runners = [
            make_runner(seed_, server, "psycopg", i, q, tables, base_path)
            for i, q in enumerate(quotas(split["psycopg"], THREADS))
        ]
        async_runners = [
            make_runner(seed_, server, "asyncpg", i, q, tables, base_path)
            for i, q in enumerate(quotas(split["asyncpg"], TASKS))
        ]
        engine = create_engine(
            soak_database.sqlalchemy_url("psycopg"),
            pool_size=THREAD_POOL,
            max_overflow=0,
            pool_timeout=120,
        )
        stack.callback(engine.dispose)
        errors: list[BaseException] = []
        seconds: dict[str, float] = {}

        def in_thread(runner: Runner) -> None:
            try:
                run_sync(sqla_sync_worker(engine, runner))
            except BaseException as exc:
                errors.append(exc)
                raise

        async def tasks() -> None:
            aengine = create_async_engine(
                soak_database.sqlalchemy_url("asyncpg"),
                pool_size=TASK_POOL,
                max_overflow=0,
                pool_timeout=120,
            )
            try:
                await asyncio.gather(*(sqla_async_worker(aengine, r) for r in async_runners))
                seconds["asyncpg"] = time.monotonic() - started
                await pool_check_async(aengine, async_runners[0])
            finally:
                await aengine.dispose()

        def loop_thread() -> None:
            try:
                asyncio.run(tasks())
            except BaseException as exc:
                errors.append(exc)
                raise

        threads = [threading.Thread(target=in_thread, args=(r,)) for r in sync_runners]
        threads.append(threading.Thread(target=loop_thread))
        for thread in threads:
            thread.start()
        for thread in threads[:-1]:
            thread.join()
        seconds["psycopg"] = time.monotonic() - started
        threads[-1].join()
        pool_check_sync(engine, sync_runners[0])
        out, err = django_proc.communicate(timeout=max(300, per_server / 20))
    finally:
        stack.close()
        if django_proc.poll() is None:
            django_proc.kill()
            django_proc.wait()
    assert not errors, errors
    assert django_proc.returncode == 0, err[-4000:]
    results: dict[str, Figures] = {}
    for label, group in (("psycopg", sync_runners), ("asyncpg", async_runners)):
        total = Figures()
        for runner in group:
            total.add(runner.figures)
        total.seconds = seconds[label]
        results[label] = total
    for driver, data in json.loads(out.strip().splitlines()[-1]).items():
        results[driver] = Figures.from_dict(data)
    everything = Figures()
    print(
        f"psycopg: {THREADS} threads, pool of {THREAD_POOL}; asyncpg: {TASKS} tasks, pool of"
        f" {TASK_POOL}; django: {DJANGO_THREADS['default']} threads, persistent connections;"
        f" django-pool: {DJANGO_THREADS['pooled']} threads, pool of {DJANGO_POOL['max_size']}"
    )
    for driver, figures in results.items():
        print(figures.line(f"{server}/{driver}"))
        everything.add(figures)
    everything.seconds = time.monotonic() - started
    print(everything.line(f"{server}/all"))
    for example in everything.examples:
        print("  " + example)
    assert everything.operations >= per_server * 0.9
    assert (everything.leaks, everything.wrong) == (0, 0), everything.examples


def test_checks_fail_when_they_should(soak_database: Any) -> None:
    """The soak's checks themselves: a leftover setting, search_path or transaction is a leak;
    a write whose outcome differs from the state's promise is a wrong outcome."""
    tables, base_path = tables_and_path(soak_database)
    runner = make_runner(0, "control", "psycopg", 0, 0, tables, base_path)
    runner.autocommit = True
    engine = create_engine(soak_database.sqlalchemy_url("psycopg"))
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            adapter = SqlaSync(conn)
            dbapi: Any = conn.connection.dbapi_connection
            pgconn = dbapi.pgconn
            for poke, undo in (
                ("SELECT set_config('pgtrigger.ignore', '{x}', false)", "RESET pgtrigger.ignore"),
                ("SET search_path = tenant_a", "RESET search_path"),
                ("BEGIN", "ROLLBACK"),
                ("SELECT 1", "SELECT 1"),  # nothing left: no leak
            ):
                pgconn.exec_(poke.encode())
                run_sync(runner.check(adapter, poke))
                pgconn.exec_(undo.encode())
            assert (runner.figures.checks, runner.figures.leaks) == (4, 3), runner.figures
            ignoring = Active(ignored=frozenset({"append_only"}))
            run_sync(runner.write(Write("upd_log"), adapter, ignoring))  # not ignored: refused
            run_sync(runner.write(Write("ins_log"), adapter, Active(schemas=TENANTS)))  # public
            with pgtrigger.ignore(URIS["append_only"]):
                run_sync(runner.write(Write("upd_log"), adapter, ignoring))  # as promised
            assert runner.figures.wrong == 2, runner.figures.examples
    finally:
        engine.dispose()


def pool_check_sync(engine: Engine, runner: Runner) -> None:
    """Every connection of the pool at once (the ones idle in it too): nothing carried."""
    with contextlib.ExitStack() as stack:
        conns = [stack.enter_context(engine.connect()) for _ in range(THREAD_POOL)]
        for conn in conns:
            run_sync(runner.check(SqlaSync(conn), "in the pool after the soak"))


async def pool_check_async(engine: AsyncEngine, runner: Runner) -> None:
    async with contextlib.AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(engine.connect()) for _ in range(TASK_POOL)]
        for conn in conns:
            await runner.check(SqlaAsync(conn), "in the pool after the soak")


if __name__ == "__main__":
    print(json.dumps(django_main(json.loads(sys.argv[1]))))
