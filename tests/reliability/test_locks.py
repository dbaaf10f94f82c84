"""Locks: installing on a table another transaction holds, and replacing a trigger under writes.

- With a lock timeout set, an install that meets a table held by another transaction fails
  fast, names the trigger and table, and leaves nothing behind (no trigger, no function, no
  setting), through every way of installing that ``tests/cli`` does not already cover: the
  SQLAlchemy API (sync psycopg 3 and asyncpg; an Engine, and a Connection inside the caller's
  transaction), Django (``pgtrigger.install(lock_timeout=...)`` and ``manage.py pgtrigger
  install`` with a ``lock_timeout`` in the database's OPTIONS) and Alembic's ops.
- On PostgreSQL 14+, replacing a trigger never leaves a window without it: a writer thread
  hammers an update the trigger must block while the main thread replaces the trigger (same
  name, changed definition) again and again; not one write may slip through.

Each test prints its figures (``-s`` shows them). ``PGTRIGGER_LOCKS_REPLACES`` sets the number
of replaces per method (default 30).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from django.core.management import call_command
from django.db import connections
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger
import pgtrigger.sqla
from alembic_ext.ops import CreatePgTriggerOp, ReplacePgTriggerOp
from pgtrigger import compiler, engine, registry
from pgtrigger.sqla.executor import ConnectionExecutor
from tests.django.conftest import django_registry
from tests.pgservers import DatabaseDSN
from tests.sqla.helpers import aw, connection, created, engine_for, make_engine

P = "rel_lock_"
REPLACES = int(os.environ.get("PGTRIGGER_LOCKS_REPLACES", "30"))
LOCK_TIMEOUT = "100ms"
#: An install that waits on a lock must give up well before this (seconds).
FAST = 5.0


class Base(DeclarativeBase):
    metadata = MetaData()


def published(status: str = "published") -> pgtrigger.Q:
    return pgtrigger.Q(old__status=status)


class Item(Base):
    """Published rows cannot be updated: the trigger the writer hammers."""

    __tablename__ = P + "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(default="published")
    qty: Mapped[int] = mapped_column(default=0)
    __table_args__ = (
        pgtrigger.Protect(
            name="protect_published", operation=pgtrigger.Update, condition=published()
        ),
    )


class Other(Base):
    """The table another transaction holds; its trigger comes second in every install."""

    __tablename__ = P + "other"
    id: Mapped[int] = mapped_column(primary_key=True)
    __table_args__ = (pgtrigger.Protect(name="no_deletes", operation=pgtrigger.Delete),)


URIS = (f"{P}item:protect_published", f"{P}other:no_deletes")
HELD = f"{P}other"
#: The write the trigger must block (every row is published).
WRITE = f"UPDATE {P}item SET qty = qty + 1"

DJANGO_URIS = ("testapp.ProtectedRow:protect_delete", "testapp.ReadOnlyFields:frozen_read_only")
DJANGO_HELD = "testapp_readonlyfields"
DJANGO_TABLES = """
CREATE TABLE testapp_protectedrow (id bigserial PRIMARY KEY, name varchar(32) NOT NULL);
CREATE TABLE testapp_readonlyfields (
    id bigserial PRIMARY KEY, frozen varchar(32) NOT NULL, free varchar(32) NOT NULL
);
"""


def report(line: str) -> None:
    print(f"[locks] {line}")


@pytest.fixture(scope="module")
def tables(module_database: DatabaseDSN) -> Iterator[Engine]:
    """The module's tables (their triggers uninstalled: each test installs), Django's two."""
    with created(module_database, Base.metadata) as setup:
        with setup.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {P}item (id, status, qty) SELECT generate_series(1, 10), 'published', 0"
                )
            )
            conn.exec_driver_sql(DJANGO_TABLES)
        pgtrigger.sqla.uninstall(setup, *URIS)
        yield setup


def footprint(database: DatabaseDSN) -> tuple[list[str], list[str]]:
    """Every trigger (not internal) and every function whose name mentions pgtrigger."""
    with database.connect(autocommit=True) as conn:
        triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
        ).fetchall()
        functions = conn.execute(
            "SELECT proname FROM pg_proc WHERE proname LIKE '%pgtrigger%' ORDER BY 1"
        ).fetchall()
    return [t for (t,) in triggers], [f for (f,) in functions]


class Holder:
    """Another transaction that wrote to a table and keeps it (ROW EXCLUSIVE: CREATE TRIGGER's
    SHARE ROW EXCLUSIVE lock must wait for it)."""

    def __init__(self, database: DatabaseDSN, table: str) -> None:
        self.conn = database.connect(autocommit=False)
        self.conn.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def check_lock_error(message: str, uri: str, table: str, seconds: float) -> None:
    assert "lock timeout" in message, message
    assert f'"{uri}"' in message and table in message, message
    assert seconds < FAST, seconds


# -- lock timeout ------------------------------------------------------------------------------


@pytest.mark.parametrize("bind", ["engine", "connection"])
@pytest.mark.parametrize("client", ["psycopg", "asyncpg"])
def test_sqlalchemy_install_gives_up_on_a_held_table(
    module_database: DatabaseDSN, tables: Engine, client: str, bind: str
) -> None:
    """``pgtrigger.sqla.install(bind, lock_timeout=...)``: fails fast, naming the trigger and
    table; nothing installed (not even the first table's trigger), the caller's transaction
    and connection unharmed; once the lock is gone the same call installs both."""

    async def main() -> dict[str, Any]:
        async with engine_for(module_database, client, pool_size=1) as eng:
            holder = Holder(module_database, HELD)
            try:
                started = time.perf_counter()
                async with connection(eng) as conn:
                    target = conn if bind == "connection" else eng
                    if bind == "connection":  # the caller's own transaction is open
                        await aw(conn.execute(text(f"UPDATE {P}item SET id = id WHERE false")))
                    with pytest.raises(pgtrigger.InstallationError) as caught:
                        await aw(pgtrigger.sqla.install(target, *URIS, lock_timeout=LOCK_TIMEOUT))
                    seconds = time.perf_counter() - started
                    # The caller's transaction goes on, without the install's lock timeout.
                    timeout = (await aw(conn.execute(text("SHOW lock_timeout")))).scalar()
                    await aw(conn.rollback())
                check_lock_error(str(caught.value), URIS[1], HELD, seconds)
                assert footprint(module_database) == ([], [])
                assert timeout == "0", timeout
            finally:
                holder.release()
            async with connection(eng) as conn:
                target = conn if bind == "connection" else eng
                if bind == "connection":  # the caller's own transaction is open
                    await aw(conn.execute(text("SELECT 1")))
                await aw(pgtrigger.sqla.install(target, *URIS, lock_timeout=LOCK_TIMEOUT))
                after_success = (await aw(conn.execute(text("SHOW lock_timeout")))).scalar()
                await aw(conn.commit())
            assert len(footprint(module_database)[0]) == len(URIS)
            await aw(pgtrigger.sqla.uninstall(eng, *URIS))
            return {"seconds": seconds, "error": str(caught.value), "after": after_success}

    figures = asyncio.run(main())
    report(
        f"sqlalchemy/{client}/{bind}: held table -> InstallationError in"
        f" {figures['seconds']:.2f} s (lock_timeout {LOCK_TIMEOUT}): {figures['error']!r};"
        " left behind: 0 triggers, 0 functions, lock_timeout 0; installs once released"
        f" (lock_timeout in the caller's transaction after a successful install:"
        f" {figures['after']})"
    )
    # Nothing behind on success either: the caller's transaction keeps its own setting.
    assert figures["after"] == "0", figures


@pytest.fixture
def django_alias(module_database: DatabaseDSN, tables: Engine) -> Iterator[str]:
    """A Django alias on the module's database whose sessions start with a lock timeout (how
    a Django project sets one for ``manage.py``), with Django's registry in place."""
    alias = "rel_locks"
    entry = module_database.django_settings()
    entry["OPTIONS"] = {**entry["OPTIONS"], "options": f"-c lock_timeout={LOCK_TIMEOUT}"}
    connections.settings[alias] = entry
    connections.configure_settings(connections.settings)
    try:
        with django_registry():
            yield alias
    finally:
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


@pytest.mark.parametrize("how", ["api", "manage.py"])
def test_django_install_gives_up_on_a_held_table(
    module_database: DatabaseDSN, django_alias: str, how: str
) -> None:
    """``pgtrigger.install(lock_timeout=...)`` and ``manage.py pgtrigger install``: the same."""
    holder = Holder(module_database, DJANGO_HELD)
    try:
        started = time.perf_counter()
        with pytest.raises(pgtrigger.InstallationError) as caught:
            if how == "api":
                pgtrigger.install(*DJANGO_URIS, database=django_alias, lock_timeout="50ms")
            else:
                call_command("pgtrigger", "install", *DJANGO_URIS, "-d", django_alias)
        seconds = time.perf_counter() - started
    finally:
        holder.release()
    check_lock_error(str(caught.value), DJANGO_URIS[1], DJANGO_HELD, seconds)
    # v1 (Django's default template) also creates _pgtrigger_should_ignore: gone too.
    assert footprint(module_database) == ([], [])
    with connections[django_alias].cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == (LOCK_TIMEOUT,)  # the alias's own setting, untouched
    pgtrigger.install(*DJANGO_URIS, database=django_alias)
    assert len(footprint(module_database)[0]) == len(DJANGO_URIS)
    pgtrigger.uninstall(*DJANGO_URIS, database=django_alias)
    with connections[django_alias].cursor() as cursor:
        cursor.execute("DROP FUNCTION IF EXISTS _pgtrigger_should_ignore(name)")
    report(
        f"django/{how}: held table -> InstallationError in {seconds:.2f} s: "
        f"{str(caught.value)!r}; left behind: 0 triggers, 0 functions"
    )


def test_alembic_ops_give_up_on_a_held_table(module_database: DatabaseDSN, tables: Engine) -> None:
    """A migration with ``op.create_pgtrigger`` for both tables and ``SET LOCAL lock_timeout``:
    the migration fails fast and its transaction leaves nothing behind."""
    compiled = [trigger.compile(table) for table, trigger in registry.registered(*URIS)]
    holder = Holder(module_database, HELD)
    try:
        started = time.perf_counter()
        with pytest.raises(DBAPIError) as caught, tables.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            op = Operations(MigrationContext.configure(conn))
            for uri, trigger in zip(URIS, compiled, strict=True):
                CreatePgTriggerOp.create_pgtrigger(op, uri, trigger)
        seconds = time.perf_counter() - started
    finally:
        holder.release()
    message = str(caught.value.orig).splitlines()[0]
    assert "lock timeout" in message and seconds < FAST, (message, seconds)
    assert footprint(module_database) == ([], [])
    report(
        f"alembic op.create_pgtrigger: held table -> {type(caught.value.orig).__name__} in"
        f" {seconds:.2f} s: {message!r}; left behind: 0 triggers, 0 functions"
    )


# -- replacing under writes --------------------------------------------------------------------


@dataclass
class Writer:
    """A thread hammering a write the trigger must block, on a connection of its own."""

    dsn: str
    attempts: int = 0
    blocked: int = 0
    slipped: int = 0
    errors: list[str] = field(default_factory=list)
    slowest: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    rows = conn.execute(WRITE).rowcount
                except psycopg.errors.RaiseException as exc:
                    assert "pgtrigger: Cannot update rows" in str(exc), exc
                    self.blocked += 1
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                else:
                    self.slipped += int(rows > 0)
                self.attempts += 1
                self.slowest = max(self.slowest, time.perf_counter() - started)


def versions(template: str) -> list[compiler.Trigger]:
    """Two definitions of the same trigger (same name and pgid), both blocking the write."""
    table = Item.__table__
    return [
        pgtrigger.Protect(
            name="protect_published", operation=pgtrigger.Update, condition=condition
        ).compile(table, template)
        for condition in (published(), published() | published("archived"))
    ]


def replace_with_install(eng: Engine, old: compiler.Trigger, new: compiler.Trigger) -> None:
    """What ``pgtrigger.sqla.install`` does for an OUTDATED trigger (one transaction)."""
    with eng.begin() as conn:
        found = engine.install(ConnectionExecutor(conn), [target(new)])
        assert [row.status for row in found] == [engine.OUTDATED]


def replace_with_alembic(eng: Engine, old: compiler.Trigger, new: compiler.Trigger) -> None:
    """One migration holding ``op.replace_pgtrigger``."""
    with eng.begin() as conn:
        ReplacePgTriggerOp.replace_pgtrigger(
            Operations(MigrationContext.configure(conn)), URIS[0], new, old
        )


def target(compiled: compiler.Trigger) -> engine.Target:
    return engine.Target(URIS[0], compiled)


def replace_with_a_gap(eng: Engine, old: compiler.Trigger, new: compiler.Trigger) -> None:
    """The control: drop, wait 20 ms, create, each on its own (what a careless tool does)."""
    with eng.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(
            f"DROP TRIGGER {new.pgid} ON {P}item", execution_options={"no_parameters": True}
        )
        time.sleep(0.02)
        conn.exec_driver_sql(new.install_sql, execution_options={"no_parameters": True})


METHODS: dict[str, tuple[str, Callable[[Engine, Any, Any], None]]] = {
    "install v2": ("v2", replace_with_install),
    "alembic replace v2": ("v2", replace_with_alembic),
    "install v1": ("v1", replace_with_install),
    "control: a gap": ("v2", replace_with_a_gap),
}


@pytest.mark.pg_min_version(14)
@pytest.mark.parametrize("method", list(METHODS))
def test_replace_never_leaves_a_window(
    module_database: DatabaseDSN, tables: Engine, method: str
) -> None:
    """v2 replaces in place (``CREATE OR REPLACE TRIGGER``); v1 drops and creates in one
    transaction, which the writer cannot see into either. Every write must be blocked."""
    template, replace = METHODS[method]
    first, second = versions(template)
    eng = make_engine(module_database)
    with eng.begin() as conn:
        engine.install(ConnectionExecutor(conn), [target(first)])
    writer = Writer(module_database)
    thread = threading.Thread(target=writer.run, name="writer")
    thread.start()
    try:
        while writer.attempts < 5:  # the writer is under way before the first replace
            time.sleep(0.005)
        started = time.perf_counter()
        before = writer.attempts
        replaces = 0
        current = first
        # The control's 20 ms gaps: a few are plenty to show that a gap is seen.
        for _ in range(max(5, REPLACES // 3) if method.startswith("control") else REPLACES):
            new = second if current is first else first
            replace(eng, current, new)
            current = new
            replaces += 1
        during = writer.attempts - before
        seconds = time.perf_counter() - started
    finally:
        writer.stop.set()
        thread.join(30)
    with eng.connect() as conn:
        status = engine.ls(ConnectionExecutor(conn), [target(current)])
        assert [row.status for row in status] == [engine.INSTALLED]
        conn.rollback()
    with eng.begin() as conn:
        engine.uninstall(ConnectionExecutor(conn), [target(current)])
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS _pgtrigger_should_ignore(name)")  # v1's
    eng.dispose()
    report(
        f"replace under writes ({method}): {replaces} replaces in {seconds:.2f} s;"
        f" writes attempted {writer.attempts} ({during} during the replaces), blocked"
        f" {writer.blocked}, slipped through {writer.slipped}, other errors"
        f" {len(writer.errors)}; slowest write {writer.slowest * 1000:.0f} ms"
    )
    assert not thread.is_alive()
    assert writer.errors == []
    assert during > 0
    if method.startswith("control"):  # the writer does see a window when there is one
        assert writer.slipped > 0
        return
    assert writer.slipped == 0
    assert writer.blocked == writer.attempts
