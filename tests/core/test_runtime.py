"""Runtime state: contextvars, nesting, decorators, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading

import pytest

import pgtrigger
from pgtrigger import runtime

from .conftest import make_table

A = pgtrigger.Protect(name="a", operation=pgtrigger.Delete)
B = pgtrigger.Protect(name="b", operation=pgtrigger.Delete)
DEFERRED = pgtrigger.Trigger(
    name="d",
    when=pgtrigger.After,
    operation=pgtrigger.Insert,
    timing=pgtrigger.Deferred,
    func="RETURN NULL;",
)


@pytest.fixture(autouse=True)
def registered():
    table = make_table()
    with A.register(table), B.register(table), DEFERRED.register(table):
        yield


def test_nesting_and_restore() -> None:
    assert runtime.current().is_default
    with pgtrigger.ignore("post:a"):
        assert pgtrigger.is_ignored("post:a") and not pgtrigger.is_ignored("post:b")
        with pgtrigger.ignore("post:b"), pgtrigger.schema("s1"):
            assert pgtrigger.is_ignored("post:a") and pgtrigger.is_ignored("post:b")
            with pgtrigger.schema("s2", "s1"):
                assert runtime.current().schemas == ("s1", "s2")
        assert not pgtrigger.is_ignored("post:b") and runtime.current().schemas == ()
    assert runtime.current().is_default


def test_ignore_all_and_sql() -> None:
    with pgtrigger.ignore():
        state = runtime.current()
        assert state.ignored >= {  # other modules may register more
            A.get_pgid(make_table()),
            B.get_pgid(make_table()),
            DEFERRED.get_pgid(make_table()),
        }
        sql = runtime.apply_sql(state)
        assert sql.startswith("SELECT set_config('pgtrigger.ignore', '{pgtrigger_")
    assert runtime.apply_sql(runtime.State()) == "SELECT set_config('pgtrigger.ignore', '{}', true)"
    with pgtrigger.schema('we"ird'):
        assert "set_config('search_path', '\"we\"\"ird\"', true)" in runtime.apply_sql(
            runtime.current()
        )


def test_decorators_sync_and_async() -> None:
    @pgtrigger.ignore("post:a")
    def sync() -> bool:
        return pgtrigger.is_ignored("post:a")

    @pgtrigger.ignore("post:a")
    async def coro() -> bool:
        await asyncio.sleep(0)
        return pgtrigger.is_ignored("post:a")

    assert sync() and asyncio.run(coro())
    assert not pgtrigger.is_ignored("post:a")


def test_unknown_uri_fails_on_entry() -> None:
    ctx = pgtrigger.ignore("post:nope")
    with pytest.raises(pgtrigger.UnknownTriggerError, match="post:nope"):
        ctx.__enter__()


def test_threads_do_not_share_state() -> None:
    barrier = threading.Barrier(20)
    seen: list[bool] = []

    def work(i: int) -> None:
        if i % 2:
            with pgtrigger.ignore("post:a"):
                barrier.wait()
                seen.append(pgtrigger.is_ignored("post:a"))
        else:
            barrier.wait()
            seen.append(not pgtrigger.is_ignored("post:a"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 20


def test_tasks_do_not_share_state() -> None:
    async def task(i: int) -> bool:
        if i % 2:
            async with pgtrigger.ignore("post:b"):
                await asyncio.sleep(0.01)
                return pgtrigger.is_ignored("post:b")
        await asyncio.sleep(0.01)
        return not pgtrigger.is_ignored("post:b")

    async def main() -> list[bool]:
        return await asyncio.gather(*(task(i) for i in range(20)))

    assert asyncio.run(main()) == [True] * 20


def test_constraints_sql() -> None:
    pgids = runtime.deferrable_pgids("post:d")
    assert pgids == [DEFERRED.get_pgid(make_table())]
    assert DEFERRED.get_pgid(make_table()) in runtime.deferrable_pgids()
    assert (
        runtime.constraints_sql(pgtrigger.Immediate, pgids)
        == f'SET CONSTRAINTS "{pgids[0]}" IMMEDIATE'
    )
    with pytest.raises(pgtrigger.DefinitionError, match="not deferrable"):
        runtime.deferrable_pgids("post:a")
