"""``pgtrigger.ignore`` in 20 concurrent threads and 20 concurrent asyncio tasks sharing a small
pool: half of the workers ignore the trigger, half do not, in turns that change every round.
Each worker must see exactly its own outcome: connections never carry another's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger
from tests.sqla.helpers import (
    ASYNC_DRIVERS,
    CANNOT_UPDATE,
    NO_IGNORE,
    SYNC_DRIVERS,
    created,
    error_text,
    make_async_engine,
    make_engine,
)

P = "sqla_conc_"
WORKERS = 20
ROUNDS = 4
POOL = {"pool_size": 4, "max_overflow": 0, "pool_timeout": 30}

#: The hooks must never have to log a failed reset.
pytestmark = pytest.mark.usefixtures("no_warnings_from_pgtrigger")


class Base(DeclarativeBase):
    metadata = MetaData()


class Counter(Base):
    __tablename__ = P + "counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    __table_args__ = (pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),)


URI = f"{P}counter:protect_updates"
SETTING = text("SELECT current_setting('pgtrigger.ignore', true)")


def ignores(worker: int, round_: int) -> bool:
    return (worker + round_) % 2 == 0


@pytest.fixture(scope="module")
def tables(module_database: Any) -> Iterator[Engine]:
    with created(module_database, Base.metadata) as engine:
        with engine.begin() as conn:
            conn.execute(Counter.__table__.insert(), [{"id": i} for i in range(WORKERS)])
        yield engine


@pytest.fixture
def reset(tables: Engine) -> Iterator[Engine]:
    yield tables
    with pgtrigger.ignore(URI), tables.begin() as conn:
        conn.execute(update(Counter).values(hits=0))


def _expected_hits() -> list[int]:
    return [sum(ignores(w, r) for r in range(ROUNDS)) for w in range(WORKERS)]


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
@pytest.mark.parametrize("isolation", ["READ COMMITTED", "AUTOCOMMIT"])
def test_threads(module_database: Any, reset: Engine, driver: str, isolation: str) -> None:
    engine = make_engine(module_database, driver, isolation_level=isolation, **POOL)
    barrier = threading.Barrier(WORKERS)
    seen: dict[tuple[int, int], tuple[Any, ...]] = {}

    def worker(n: int) -> None:
        for r in range(ROUNDS):
            barrier.wait()  # everyone starts the round together, outside any connection
            ignored = ignores(n, r)
            with pgtrigger.ignore(URI) if ignored else contextlib.nullcontext():
                with engine.connect() as conn:
                    time.sleep(0.001 * ((n * 7 + r) % 5))
                    setting = conn.execute(SETTING).scalar()
                    time.sleep(0.001 * ((n * 3 + r) % 4))
                    try:
                        conn.execute(
                            update(Counter).where(Counter.id == n).values(hits=Counter.hits + 1)
                        )
                        conn.commit()
                        error = None
                    except Exception as exc:
                        error = error_text(exc)
                        conn.rollback()
            seen[n, r] = (ignored, pgtrigger.is_ignored(URI), setting, error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        _check(seen)
        with engine.connect() as conn:
            assert (
                conn.execute(select(Counter.hits).order_by(Counter.id)).scalars().all()
                == _expected_hits()
            )
    finally:
        engine.dispose()


def _check(seen: dict[tuple[int, int], tuple[Any, ...]]) -> None:
    """Every (worker, round) saw its own state on the server and its own outcome."""
    assert len(seen) == WORKERS * ROUNDS
    ignored_value = f"{{{pgtrigger.registry.pgid_of(URI)}}}"
    refused = f"{CANNOT_UPDATE} {P}counter table"
    wrong = {
        key: observed
        for key, observed in seen.items()
        if not (
            observed[1] is False  # the context was left
            and (
                observed[2:] == (ignored_value, None)
                if observed[0]
                else observed[2] in NO_IGNORE and observed[3] == refused
            )
        )
    }
    assert wrong == {}


@pytest.mark.parametrize("driver", ASYNC_DRIVERS)
@pytest.mark.parametrize("isolation", ["READ COMMITTED", "AUTOCOMMIT"])
def test_asyncio_tasks(module_database: Any, reset: Engine, driver: str, isolation: str) -> None:
    seen: dict[tuple[int, int], tuple[Any, ...]] = {}

    async def main() -> None:
        engine = make_async_engine(module_database, driver, isolation_level=isolation, **POOL)
        barrier = asyncio.Barrier(WORKERS)

        async def worker(n: int) -> None:
            for r in range(ROUNDS):
                await barrier.wait()
                ignored = ignores(n, r)
                async with pgtrigger.ignore(URI) if ignored else contextlib.AsyncExitStack():
                    async with engine.connect() as conn:
                        await asyncio.sleep(0.001 * ((n * 7 + r) % 5))
                        setting = (await conn.execute(SETTING)).scalar()
                        await asyncio.sleep(0.001 * ((n * 3 + r) % 4))
                        try:
                            await conn.execute(
                                update(Counter).where(Counter.id == n).values(hits=Counter.hits + 1)
                            )
                            await conn.commit()
                            error = None
                        except Exception as exc:
                            error = error_text(exc)
                            await conn.rollback()
                seen[n, r] = (ignored, pgtrigger.is_ignored(URI), setting, error)

        try:
            await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(WORKERS))), 60)
            async with engine.connect() as conn:
                hits = (
                    (await conn.execute(select(Counter.hits).order_by(Counter.id))).scalars().all()
                )
            assert hits == _expected_hits()
        finally:
            await engine.dispose()

    asyncio.run(main())
    _check(seen)
