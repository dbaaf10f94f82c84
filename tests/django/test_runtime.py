"""Runtime helpers: ``ignore``, ``is_ignored``, ``schema``, ``constraints``; sync and async."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext

import pgtrigger
import pgtrigger.sending
from tests.django.helpers import blocked, ignore_setting, run_async, scalar
from tests.django.testapp import models

ROWS = "testapp.ProtectedRow:protect_delete"
DECORATED = "testapp.Decorated:protect_decorated_delete"
REGISTERED = "testapp.Registered:protect_registered_update"


def pgid(uri: str) -> str:
    model, trigger = pgtrigger.registered(uri)[0]
    return str(trigger.get_pgid(model))


def rows(count: int) -> list[int]:
    return [models.ProtectedRow.objects.create(name=str(i)).pk for i in range(count)]


def delete_row(pk: int) -> int:
    return models.ProtectedRow.objects.filter(pk=pk).delete()[0]


@pytest.fixture
def dbapi_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements pgtrigger sends on its own (set_config goes through a raw DB-API cursor,
    which Django's query log does not see)."""
    sent: list[str] = []
    original = pgtrigger.sending.run_dbapi

    def run_dbapi(dbapi: Any, paramstyle: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
        sent.append(sql)
        return original(dbapi, paramstyle, sql, params)

    original_script = pgtrigger.sending.run_script

    def run_script(dbapi: Any, sql: str) -> None:
        sent.append(sql)
        original_script(dbapi, sql)

    original_on_libpq = pgtrigger.sending._exec_on_libpq

    def on_libpq(dbapi: Any, sql: str) -> None:  # psycopg 3: the state rides with BEGIN
        sent.append(sql)
        original_on_libpq(dbapi, sql)

    monkeypatch.setattr(pgtrigger.sending, "run_dbapi", run_dbapi)
    monkeypatch.setattr(pgtrigger.sending, "run_script", run_script)
    monkeypatch.setattr(pgtrigger.sending, "_exec_on_libpq", on_libpq)
    return sent


# -- ignore, sync -------------------------------------------------------------------------------


def test_ignore_in_autocommit(live_db: object) -> None:
    first, second = rows(2)
    assert not pgtrigger.is_ignored(ROWS)
    with pgtrigger.ignore(ROWS):
        assert pgtrigger.is_ignored(ROWS) and not pgtrigger.is_ignored(DECORATED)
        assert delete_row(first) == 1
        # A text[]: the pgid, and "db_table:pgid" for django-pgtrigger's pre-4.0 ignore function.
        assert ignore_setting() == f"{{{pgid(ROWS)},testapp_protectedrow:{pgid(ROWS)}}}"
    # The setting does not outlive the context.
    assert ignore_setting() in ("", "{}", None)
    with blocked("Cannot delete rows"):
        delete_row(second)
    assert list(models.ProtectedRow.objects.values_list("pk", flat=True)) == [second]


def test_ignore_as_decorator(db: object) -> None:
    (pk,) = rows(1)

    @pgtrigger.ignore(ROWS)
    def delete() -> int:
        assert pgtrigger.is_ignored(ROWS)
        return delete_row(pk)

    assert delete() == 1
    assert not pgtrigger.is_ignored(ROWS)


def test_ignore_everything(db: object) -> None:
    (pk,) = rows(1)
    decorated = models.Decorated.objects.create()
    with pgtrigger.ignore():
        assert pgtrigger.is_ignored(ROWS) and pgtrigger.is_ignored(DECORATED)
        delete_row(pk)
        decorated.delete()
    assert not models.ProtectedRow.objects.exists() and not models.Decorated.objects.exists()


def test_ignore_nested_in_atomic_blocks(live_db: object) -> None:
    a1, a2, a3, a4 = rows(4)
    d1, d2 = (models.Decorated.objects.create().pk for _ in range(2))
    with transaction.atomic():
        with pgtrigger.ignore(ROWS):
            with transaction.atomic():  # a savepoint
                assert delete_row(a1) == 1
                with pgtrigger.ignore(DECORATED):
                    assert pgtrigger.is_ignored(ROWS) and pgtrigger.is_ignored(DECORATED)
                    assert models.Decorated.objects.filter(pk=d1).delete()[0] == 1
                with blocked("Cannot delete rows from testapp_decorated"):
                    models.Decorated.objects.filter(pk=d2).delete()
            assert delete_row(a2) == 1  # the savepoint was released: still ignored
        with blocked("Cannot delete rows from testapp_protectedrow"):
            delete_row(a3)
    # Settings made inside a savepoint that is rolled back vanish with it; pgtrigger resends.
    with transaction.atomic(), pgtrigger.ignore(ROWS):
        with contextlib.suppress(IntegrityError), transaction.atomic():
            assert delete_row(a3) == 1
            models.ProtectedRow.objects.create(pk=a4)  # duplicate key: rolls back to savepoint
        assert delete_row(a3) == 1  # a3 is back (rolled back) and still deletable
    assert list(models.ProtectedRow.objects.values_list("pk", flat=True)) == [a4]
    assert list(models.Decorated.objects.values_list("pk", flat=True)) == [d2]


def test_failed_transaction_inside_ignore(live_db: object) -> None:
    """django-pgtrigger's docs warn that leaving ``ignore`` in a failed transaction raised;
    here nothing is sent on exit, so it does not."""
    first, second = rows(2)
    with transaction.atomic():
        with pgtrigger.ignore(ROWS):
            delete_row(first)
            with contextlib.suppress(IntegrityError):
                models.ProtectedRow.objects.create(pk=second)
            # The transaction has failed, and we leave ignore() in it.
        assert connection.needs_rollback
        transaction.set_rollback(True)
    assert sorted(models.ProtectedRow.objects.values_list("pk", flat=True)) == [first, second]
    # In autocommit a failed statement ends its own transaction; ignore goes on working.
    with pgtrigger.ignore(ROWS):
        with pytest.raises(IntegrityError):
            models.ProtectedRow.objects.create(pk=second)
        assert delete_row(first) == 1
    with blocked("Cannot delete rows"):
        delete_row(second)
    # An exception leaving ignore() inside atomic rolls everything back, state included.
    with pytest.raises(ZeroDivisionError), transaction.atomic(), pgtrigger.ignore(ROWS):
        delete_row(second)
        _ = 1 / 0
    assert not pgtrigger.is_ignored(ROWS)
    with blocked("Cannot delete rows"):
        delete_row(second)


def test_ignore_is_per_thread(live_db: object) -> None:
    first, second = rows(2)
    entered, checked = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            with pgtrigger.ignore(ROWS):
                entered.set()
                checked.wait(10)
                outcome["deleted"] = delete_row(first)
        except Exception as exc:  # reported below
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(10)
    try:
        assert not pgtrigger.is_ignored(ROWS)
        with blocked("Cannot delete rows"):
            delete_row(second)
    finally:
        checked.set()
        thread.join(10)
    assert outcome == {"deleted": 1}


def test_ignore_on_every_database(db: object) -> None:
    """``ignore`` applies to all databases; the router sends OtherItem to "other"."""
    from tests.django.otherapp.models import OtherItem

    item = OtherItem.objects.create()
    with blocked("Cannot delete rows from otherapp_otheritem", using="other"):
        item.delete()
    with pgtrigger.ignore("otherapp.OtherItem:protect_other_delete"):
        OtherItem.objects.all().delete()
    assert not OtherItem.objects.exists()


# -- statement count -----------------------------------------------------------------------------


def test_one_statement_per_transaction(
    live_db: object, dbapi_statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pks = rows(100)
    with transaction.atomic(), pgtrigger.ignore(ROWS):
        with CaptureQueriesContext(connection) as queries:
            for pk in pks:
                models.ProtectedRow.objects.filter(pk=pk).update(name="x")
        assert len(queries) == 100
        assert len(dbapi_statements) <= 1
        delete_row(pks[0])  # and it is in force
    assert len(dbapi_statements) == 1
    # Outside any transaction block (autocommit) nothing is session-level (a transaction
    # pooler would hand it to another client): Django's cursors bind parameters on the client
    # and send one simple query, so each query inside the context carries the state itself,
    # "SELECT set_config(...); <query>", one implicit transaction, no statement of ours.
    dbapi_statements.clear()
    sent: list[str] = []
    execute = CursorWrapper._execute

    def capture(self: Any, sql: str, *args: Any) -> Any:
        sent.append(sql)  # past every execute wrapper: the query as sent
        return execute(self, sql, *args)

    monkeypatch.setattr(CursorWrapper, "_execute", capture)
    with pgtrigger.ignore(ROWS):
        for pk in pks[1:]:
            models.ProtectedRow.objects.filter(pk=pk).update(name="y")
        delete_row(pks[1])
    prefix = "SELECT set_config('pgtrigger.ignore', "
    assert [q.startswith(prefix) for q in sent[:99]] == [True] * 99
    # The delete runs in Django's own atomic block: one statement of ours (with its BEGIN).
    assert len(dbapi_statements) == 1
    assert models.ProtectedRow.objects.count() == 98
    assert len(dbapi_statements) == 1
    # No state, no statement.
    dbapi_statements.clear()
    for pk in pks[2:12]:
        models.ProtectedRow.objects.filter(pk=pk).update(name="z")
    assert dbapi_statements == []


def test_savepoints_add_no_statement(db: object, dbapi_statements: list[str]) -> None:
    pks = rows(20)
    with pgtrigger.ignore(ROWS):
        for pk in pks:
            with transaction.atomic():
                models.ProtectedRow.objects.filter(pk=pk).update(name="x")
    assert len(dbapi_statements) == 1


# -- schema ---------------------------------------------------------------------------------------


def search_path() -> list[str]:
    return [part.strip().strip('"') for part in scalar("SHOW search_path").split(",")]


def test_schema_in_autocommit(live_db: object) -> None:
    """As in django-pgtrigger, the search path *is* the schemas given (nesting appends)."""
    base = search_path()
    with pgtrigger.schema("tenant_x"):
        assert search_path() == ["tenant_x"]
        with pgtrigger.schema("tenant_y", "tenant_x"):
            assert search_path() == ["tenant_x", "tenant_y"]
        assert search_path() == ["tenant_x"]
    assert search_path() == base


def test_schema_in_atomic(db: object) -> None:
    base = search_path()
    with pgtrigger.schema("tenant_x", "public"):
        assert search_path() == ["tenant_x", "public"]
        assert models.ProtectedRow.objects.count() == 0  # public tables still resolve
    assert search_path() == base


# -- constraints ------------------------------------------------------------------------------------


def test_constraints_needs_a_transaction_and_deferrable_triggers(live_db: object) -> None:
    with pytest.raises(RuntimeError, match='"default" is not in a transaction'):
        pgtrigger.constraints(pgtrigger.Immediate, "testapp.Budget:non_negative")
    with transaction.atomic(), pytest.raises(ValueError, match="not deferrable"):
        pgtrigger.constraints(pgtrigger.Immediate, ROWS)


# -- async ------------------------------------------------------------------------------------------


def test_async_ignore(live_db: object) -> None:
    async def main() -> None:
        row = await models.ProtectedRow.objects.acreate()
        async with pgtrigger.ignore(ROWS):
            assert pgtrigger.is_ignored(ROWS)
            await row.adelete()
        assert not pgtrigger.is_ignored(ROWS)
        kept = await models.ProtectedRow.objects.acreate()
        with pytest.raises(DatabaseError, match="Cannot delete rows"):
            await kept.adelete()

        @pgtrigger.ignore(REGISTERED)
        async def bump(obj: models.Registered) -> None:
            assert pgtrigger.is_ignored(REGISTERED)
            obj.value += 1
            await obj.asave()

        registered = await models.Registered.objects.acreate()
        await bump(registered)
        registered.value += 1
        with pytest.raises(DatabaseError, match="Cannot update rows"):
            await registered.asave()
        assert (await models.Registered.objects.aget()).value == 1

    run_async(main())
    assert list(models.ProtectedRow.objects.values_list("name", flat=True)) == [""]


def test_async_tasks_do_not_share_state(live_db: object) -> None:
    first, second = rows(2)

    async def ignoring(entered: asyncio.Event, done: asyncio.Event) -> int:
        async with pgtrigger.ignore(ROWS):
            entered.set()
            await done.wait()
            return (await models.ProtectedRow.objects.filter(pk=first).adelete())[0]

    async def not_ignoring(entered: asyncio.Event, done: asyncio.Event) -> str:
        await entered.wait()
        try:
            assert not pgtrigger.is_ignored(ROWS)
            await models.ProtectedRow.objects.filter(pk=second).adelete()
        except DatabaseError as exc:
            return str(exc)
        finally:
            done.set()
        return "deleted"

    async def main() -> list[Any]:
        entered, done = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(ignoring(entered, done), not_ignoring(entered, done)))

    deleted, error = run_async(main())
    assert deleted == 1
    assert error.startswith("pgtrigger: Cannot delete rows")
    assert list(models.ProtectedRow.objects.values_list("pk", flat=True)) == [second]


def test_async_schema_and_constraints(live_db: object) -> None:
    from asgiref.sync import sync_to_async

    @sync_to_async
    def in_transaction() -> str:
        with transaction.atomic():
            pgtrigger.constraints(
                pgtrigger.Immediate, "testapp.Budget:non_negative", databases=["default"]
            )
            with blocked("negative budget"):
                models.Budget.objects.create(amount=-1)
            return str(scalar("SHOW search_path"))

    async def main() -> str:
        async with pgtrigger.schema("tenant_async", "public"):
            return await in_transaction()

    assert run_async(main()).replace('"', "").startswith("tenant_async")


# -- pooled connections -------------------------------------------------------------------------


@contextlib.contextmanager
def extra_alias(project: Any, alias: str, **options: Any) -> Iterator[str]:
    """Another alias on the project's "default" database, with these OPTIONS."""
    entry = project.databases["default"].django_settings()
    entry["OPTIONS"] = {**entry["OPTIONS"], **options}
    connections.settings[alias] = entry
    connections.configure_settings(connections.settings)
    try:
        yield alias
    finally:
        if "pool" in options:
            connections[alias].close_pool()  # shared by every thread's connection
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


@pytest.fixture
def pooled(live_db: Any) -> Iterator[str]:
    """Django's psycopg pool (Django 5.1+) with one connection: every checkout gets the same
    server session."""
    import django

    if django.VERSION < (5, 1):
        pytest.skip("Django's connection pool arrived in Django 5.1")
    pytest.importorskip("psycopg_pool")
    with extra_alias(live_db, "pooled", pool={"min_size": 1, "max_size": 1}) as alias:
        yield alias


def in_thread(work: Any) -> Any:
    """Run ``work()`` in a new thread (a new Django connection), like a request would."""
    from django.core.signals import request_finished

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            request_finished.send(sender=None)  # what Django sends when a response is done
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(20)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def test_pooled_connection_does_not_carry_ignore(pooled: str) -> None:
    """A request whose last query ran inside ``ignore`` in autocommit returns its connection
    to the pool; the next request that gets that connection
    must not skip the trigger."""
    registered = models.Registered.objects.create()
    updates = models.Registered.objects.using(pooled).filter(pk=registered.pk)

    def ignoring() -> int:
        with pgtrigger.ignore(REGISTERED):
            return updates.update(value=1)  # autocommit: no atomic block around an update()

    def not_ignoring() -> Any:
        with contextlib.suppress(DatabaseError):
            updates.update(value=2)
        return scalar("SELECT current_setting('pgtrigger.ignore', true)", using=pooled)

    assert in_thread(ignoring) == 1
    leftover = in_thread(not_ignoring)
    assert models.Registered.objects.get().value == 1
    assert leftover in ("", "{}", None)


# -- named cursors, server-side binding -----------------------------------------------------------


def test_named_cursor_inside_ignore(live_db: object) -> None:
    """Django's .iterator() declares a named (server-side) cursor: it must see the state."""
    rows(5)
    with transaction.atomic(), pgtrigger.ignore(ROWS):
        seen = [row.pk for row in models.ProtectedRow.objects.order_by("pk").iterator(chunk_size=2)]
        assert models.ProtectedRow.objects.filter(pk__in=seen[:3]).delete()[0] == 3
        names = [r.name for r in models.ProtectedRow.objects.order_by("pk").iterator(chunk_size=1)]
    assert names == ["3", "4"]


def test_psycopg_server_side_binding(live_db: Any) -> None:
    if connection.Database.__name__ != "psycopg":
        pytest.skip("server-side binding is a psycopg 3 option")
    first, second = rows(2)
    registered = models.Registered.objects.create()
    with extra_alias(live_db, "ssb", server_side_binding=True) as ssb:
        with transaction.atomic(using=ssb), pgtrigger.ignore(ROWS):
            assert models.ProtectedRow.objects.using(ssb).filter(pk=first).delete()[0] == 1
        with pgtrigger.ignore(REGISTERED):  # autocommit
            models.Registered.objects.using(ssb).filter(pk=registered.pk).update(value=7)
        with blocked("Cannot delete rows", using=ssb):
            models.ProtectedRow.objects.using(ssb).filter(pk=second).delete()
        with blocked("Cannot update rows", using=ssb):
            models.Registered.objects.using(ssb).update(value=8)
    assert models.Registered.objects.get().value == 7


# -- django-pgtrigger's spellings ------------------------------------------------------------------


def test_django_pgtrigger_call_forms(db: object) -> None:
    """``databases=`` arguments and the ``.session()`` helpers of django-pgtrigger 4.x."""
    (pk,) = rows(1)
    with (
        pgtrigger.ignore.session(databases=["default"]),
        pgtrigger.ignore(ROWS, databases=["default"]),
    ):
        assert delete_row(pk) == 1
    with pgtrigger.schema("public", databases=["default"]):
        assert search_path() == ["public"]


def test_schema_session_helper(db: object) -> None:
    """django-pgtrigger 4.x also has ``pgtrigger.schema.session()`` (like ``ignore.session``)."""
    with pgtrigger.schema.session(databases=["default"]), pgtrigger.schema("public"):
        assert search_path() == ["public"]
