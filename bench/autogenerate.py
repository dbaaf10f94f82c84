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
        [--competitor-rounds 3] [--competitor-budget 100] [--no-alembic-utils] [--quick]

Without ``--url`` an embedded PostgreSQL 18 is started; a scratch database per scenario is
created and dropped either way.

Against alembic_utils (``--no-alembic-utils`` leaves it out): the same tables get, in a
second scratch database, one ``PGFunction`` and one ``PGTrigger`` per declared trigger, built
from the SQL our v2 template compiles to and registered with ``register_entities``.
alembic_utils runs in its own virtualenv (``competitors.ensure_env(ALEMBIC_UTILS)``) through
``bench/alembic_utils_worker.py``, one process for the whole run (its import time is printed
once, not counted). Its runs take part in the same interleaved rounds, each next to a plain
Alembic run in its own interpreter (its extra time is paired with that one); "1 changed" gives
one function another body in its database. For every entity alembic_utils simulates it in a
savepoint and reads back, three times, every entity of its kind from the catalog, parsing each
definition: its time grows close to the square of the trigger count (about 30 s per run at 200
triggers on 2 CPUs, several minutes at 1,000). So it gets at most ``--competitor-rounds`` timed
runs per scenario and starts no new one once ``--competitor-budget`` seconds are spent (at least
one run); and, except at 200 triggers (the targets' size, always measured), a scenario whose
single run is predicted over the budget (from the smaller sizes, as a power law) is skipped, its
time printed as an estimate marked ``~``.

    .venv/bin/python bench/autogenerate.py --quick        # smoke run, under a minute
    .venv/bin/python bench/autogenerate.py --tables 500 --competitor-rounds 1 \\
        --competitor-budget 1200                             # alembic_utils measured at 1,000

Targets: the statements pgtrigger adds do not depend on the trigger count; autogenerate with
200 triggers stays well under 1 s and at least 25x faster than alembic_utils.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.runtime.migration import MigrationContext
from competitors import ALEMBIC_UTILS, ensure_env
from servers import scratch_databases, server, with_database

import pgtrigger
import pgtrigger.sqla
from pgtrigger import sqltext

PLAIN = ["alembic.autogenerate.*"]
WITH_PGTRIGGER = ["alembic.autogenerate.*", "pgtrigger"]
TRIGGER_NAMES = ("protect_status", "touch")
TARGET_200_SECONDS = 1.0
#: The size both targets are set at: alembic_utils always gets at least one run there.
TARGET_TRIGGERS = 200
#: Autogenerate with 200 triggers at least this many times faster than alembic_utils.
TARGET_200_FASTER = 25.0
WORKER = Path(__file__).with_name("alembic_utils_worker.py")
#: alembic_utils gets a warm-up run in a scenario only when a run is predicted shorter than
#: this; longer runs dwarf what a warm-up would save (its code paths are warmed once anyway).
WARM_UP_BELOW_SECONDS = 5.0
#: The four variants of a round: plain Alembic and pgtrigger here, plain Alembic and
#: alembic_utils in the worker (which names them "plain" and "alembic_utils").
OURS_PLAIN, OURS, AU_PLAIN, AU = "alembic", "pgtrigger", "plain", "alembic_utils"


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[sa.Engine]:
    with scratch_databases(url) as (name,):
        engine = sa.create_engine(
            sa.make_url(with_database(url, name)).set(drivername="postgresql+psycopg"),
            pool_size=1,
        )
        try:
            yield engine
        finally:
            engine.dispose()


def build_metadata(n_tables: int) -> sa.MetaData:
    """``n_tables`` tables with two triggers each."""
    metadata = sa.MetaData()
    prefix = f"ag{n_tables}"
    for i in range(n_tables):
        name = f"{prefix}_t{i:04d}"
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


def alembic_utils_entities(metadata: sa.MetaData) -> list[dict[str, str]]:
    """Per declared trigger, what alembic_utils' ``PGFunction`` and ``PGTrigger`` take, cut
    from the SQL our v2 template compiles to: both sides manage the same database objects
    (ours also stores its hash comment)."""
    entities = []
    for table in metadata.sorted_tables:
        for trigger in pgtrigger.sqla.triggers_of(table):
            compiled = trigger.compile(table)
            function_sql, trigger_sql, _comment = sqltext.split_statements(compiled.install_sql)
            function_head = f"CREATE OR REPLACE FUNCTION {compiled.function}()"
            trigger_head = f"CREATE OR REPLACE TRIGGER {sqltext.ident(compiled.pgid)}"
            if not (
                function_sql.startswith(function_head) and trigger_sql.startswith(trigger_head)
            ):
                raise RuntimeError(f"unexpected install SQL:\n{compiled.install_sql}")
            entities.append(
                {
                    "table": table.name,
                    "function": compiled.pgid,
                    "function_definition": function_sql.removeprefix(function_head)
                    .strip()
                    .removesuffix(";"),
                    "trigger": compiled.pgid,
                    "trigger_definition": trigger_sql.removeprefix(trigger_head)
                    .strip()
                    .removesuffix(";"),
                }
            )
    return entities


class AlembicUtils:
    """alembic_utils in its own virtualenv: one worker process kept for the whole run, so its
    import is paid once (reported, not counted)."""

    def __init__(self) -> None:
        python = ensure_env(ALEMBIC_UTILS)
        self.process = subprocess.Popen(
            [str(python), "-P", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.hello = self.ask("hello")

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"alembic_utils worker exited (code {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"alembic_utils worker failed on {cmd!r}:\n{answer['error']}")
        return answer

    def setup(self, engine: sa.Engine, metadata: sa.MetaData) -> None:
        """Tables and entities in ``engine``'s (empty) database, entities registered."""
        self.ask(
            "setup",
            url=engine.url.render_as_string(hide_password=False),
            tables=[table.name for table in metadata.sorted_tables],
            entities=alembic_utils_entities(metadata),
        )

    def run(self, variant: str) -> tuple[float, int, list[str]]:
        """One autogenerate run in the worker: (seconds, statements sent, op class names)."""
        answer = self.ask("run", variant=variant)
        return answer["seconds"], answer["statements"], answer["ops"]

    def warm_up(self, url: str) -> None:
        """Run every code path once, on two tables, before anything is timed."""
        with scratch_database(url) as engine:
            self.setup(engine, build_metadata(2))
            self.run(AU_PLAIN)
            self.run(AU)
            self.ask("teardown")

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.ask("quit")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
class Rival:
    """alembic_utils' share of one scenario: how many runs it may get, and what it did."""

    worker: AlembicUtils
    max_rounds: int
    budget: float
    #: Seconds one run is expected to take (None: nothing to predict from yet).
    predicted: float | None
    #: Measure at least once whatever the prediction (the size a target is set for).
    required: bool = False
    runs: list[float] = field(default_factory=list)
    #: Plain Alembic in alembic_utils' interpreter, in the same rounds as ``runs``.
    plain: list[float] = field(default_factory=list)
    statements: set[int] = field(default_factory=set)
    plain_statements: set[int] = field(default_factory=set)
    ops: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> bool:
        return not self.required and self.predicted is not None and self.predicted > self.budget

    def wants_round(self) -> bool:
        """Another timed round, if rounds and budget allow (the next run as long as the last)."""
        if self.skipped or len(self.runs) >= self.max_rounds:
            return False
        return not self.runs or sum(self.runs) + self.runs[-1] <= self.budget


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
    #: alembic_utils, when measured or estimated (``au_runs == 0``: estimated, never run).
    au_ms: float | None = None
    au_plain_ms: float | None = None
    au_runs: int = 0
    #: alembic_utils run minus the plain run in its interpreter, same round, median.
    au_extra_ms: float | None = None
    #: Paired per round: alembic_utils over pgtrigger, on the extra time and on the total.
    x_extra: float | None = None
    x_total: float | None = None
    au_statements: int | None = None
    au_plain_statements: int | None = None
    au_ops: str = ""


def measure(
    engine: sa.Engine,
    counter: StatementCounter,
    metadata: sa.MetaData,
    rounds: int,
    diff: str,
    triggers: int,
    rival: Rival | None,
) -> Row:
    autogenerate(engine, counter, metadata, PLAIN)  # warm up
    autogenerate(engine, counter, metadata, WITH_PGTRIGGER)
    if rival and not rival.skipped:
        rival.worker.run(AU_PLAIN)
        if rival.predicted is not None and rival.predicted < WARM_UP_BELOW_SECONDS:
            rival.worker.run(AU)
    plain, ours, plain_sent, ours_sent = [], [], set(), set()
    compile_s, catalog_s, comparator_s = [], [], []
    diffs: list[tuple[Any, ...]] = []
    for r in range(rounds):
        order = [OURS_PLAIN, OURS]
        if rival and rival.wants_round():
            order += [AU_PLAIN, AU]
        if r % 2:
            order.reverse()
        for variant in order:
            if variant in (AU_PLAIN, AU):
                assert rival is not None
                seconds, sent, names = rival.worker.run(variant)
                if variant == AU:
                    rival.runs.append(seconds)
                    rival.statements.add(sent)
                    rival.ops = names
                    if seconds > WARM_UP_BELOW_SECONDS:
                        print(
                            f"  alembic_utils, {triggers} triggers, {diff}:"
                            f" run {len(rival.runs)} took {seconds:.1f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                else:
                    rival.plain.append(seconds)
                    rival.plain_statements.add(sent)
                continue
            plugins = PLAIN if variant == OURS_PLAIN else WITH_PGTRIGGER
            inside = COMPARATOR.seconds
            seconds, sent, found = autogenerate(engine, counter, metadata, plugins)
            if plugins is WITH_PGTRIGGER:
                comparator_s.append(COMPARATOR.seconds - inside)
                ours.append(seconds)
                ours_sent.add(sent)
                diffs = found
            else:
                plain.append(seconds)
                plain_sent.add(sent)
        compiled, catalog = breakdown(engine, metadata)
        compile_s.append(compiled)
        catalog_s.append(catalog)
    assert len(plain_sent) == 1 and len(ours_sent) == 1, "statement counts varied"
    kinds = sorted({d[0] for d in diffs})
    row = Row(
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
    if rival:
        compare_rival(row, rival, plain, ours)
    return row


def compare_rival(row: Row, rival: Rival, plain: list[float], ours: list[float]) -> None:
    """alembic_utils' columns of ``row``: paired with our runs of the same rounds (the first
    ones), or estimated from ``rival.predicted`` when it was skipped."""
    if not rival.runs:
        assert rival.predicted is not None
        row.au_ms = rival.predicted * 1e3
        row.x_total = rival.predicted / statistics.median(ours)
        row.au_extra_ms = row.au_ms - row.plain_ms
        row.x_extra = row.au_extra_ms / row.extra_ms if row.extra_ms > 0 else math.nan
        row.au_ops = "skipped (estimate)"
        return
    n = len(rival.runs)
    row.au_runs = n
    row.au_ms = statistics.median(rival.runs) * 1e3
    row.au_plain_ms = statistics.median(rival.plain) * 1e3
    extra = [a - p for a, p in zip(rival.runs, rival.plain)]
    row.au_extra_ms = statistics.median(extra) * 1e3
    row.x_total = statistics.median(a / o for a, o in zip(rival.runs, ours[:n]))
    ours_extra = [o - p for o, p in zip(ours[:n], plain[:n])]
    paired = [a / o for a, o in zip(extra, ours_extra) if o > 0]
    row.x_extra = statistics.median(paired) if paired else math.nan
    row.au_statements = max(rival.statements)
    row.au_plain_statements = max(rival.plain_statements)
    varied = len(rival.statements) > 1 or len(rival.plain_statements) > 1
    row.au_ops = (",".join(rival.ops) or "-") + (" (statement counts varied)" if varied else "")


def predict(measured: dict[int, float], triggers: int) -> float | None:
    """Seconds of one alembic_utils run at ``triggers``: as measured at that size, else a
    power law through the two largest smaller sizes (squared from a single one)."""
    if triggers in measured:
        return measured[triggers]
    smaller = sorted(n for n in measured if n < triggers)
    if not smaller:
        return None
    n2 = smaller[-1]
    exponent = 2.0
    if len(smaller) > 1:
        n1 = smaller[-2]
        exponent = math.log(measured[n2] / measured[n1]) / math.log(n2 / n1)
        exponent = min(max(exponent, 1.0), 2.0)
    return float(measured[n2] * (triggers / n2) ** exponent)


def scenario(
    url: str,
    n_tables: int,
    rounds: int,
    worker: AlembicUtils | None,
    competitor_rounds: int,
    budget: float,
    measured: dict[int, float],
) -> list[Row]:
    """Both diffs at one size; ``measured`` (triggers -> seconds per alembic_utils run) is
    read for predictions and updated."""
    metadata = build_metadata(n_tables)
    triggers = sum(len(pgtrigger.sqla.triggers_of(t)) for t in metadata.tables.values())
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(scratch_database(url))
        metadata.create_all(engine)
        if worker:
            worker.setup(stack.enter_context(scratch_database(url)), metadata)
            stack.callback(worker.ask, "teardown")
        counter = StatementCounter(engine)

        def rival() -> Rival | None:
            if worker is None:
                return None
            predicted = predict(measured, triggers)
            return Rival(worker, competitor_rounds, budget, predicted, triggers == TARGET_TRIGGERS)

        first = rival()
        rows = [measure(engine, counter, metadata, rounds, "none", triggers, first)]
        if first and first.runs:
            measured[triggers] = statistics.median(first.runs)
        table = next(iter(metadata.tables.values()))
        compiled = pgtrigger.sqla.triggers_of(table)[0].compile(table)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"COMMENT ON TRIGGER {sqltext.ident(compiled.pgid)} ON {compiled.quoted_table}"
                f" IS {sqltext.string('changed')}"
            )
        if worker:
            worker.ask("outdate")
        rows.append(measure(engine, counter, metadata, rounds, "1 changed", triggers, rival()))
    return rows


def print_header() -> None:
    header = (
        f"{'triggers':>8} {'tables':>6}  {'diff':<9} {'alembic ms':>10} {'+pgtrigger ms':>13}"
        f" {'extra ms':>8} {'ratio':>6} {'comparator':>10} {'compile':>8} {'catalog':>8}"
        f"  {'stmts':>5} {'+pgtrigger':>10}  {'ops':>3}  kinds"
    )
    print(header)
    print("-" * len(header))


def print_row(row: Row) -> None:
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


def _num(value: float | None, spec: str, estimated: bool) -> str:
    if value is None or math.isnan(value):
        return "-"
    return ("~" if estimated else "") + format(value, spec)


def print_rival_rows(rows: list[Row]) -> None:
    header = (
        f"{'triggers':>8} {'tables':>6}  {'diff':<9} {'alembic ms':>10} {'a_u venv':>8}"
        f" {'+pgtrigger ms':>13} {'alembic_utils ms':>16} {'runs':>4} {'extra ms':>8}"
        f" {'a_u extra ms':>12} {'x extra':>8} {'x total':>8}"
        f"  {'stmts':>5} {'+pgtrigger':>10} {'+alembic_utils':>14}  alembic_utils ops"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        est = row.au_runs == 0
        au_added = (
            row.au_statements - row.au_plain_statements
            if row.au_statements is not None and row.au_plain_statements is not None
            else None
        )
        print(
            f"{row.triggers:>8} {row.tables:>6}  {row.diff:<9} {row.plain_ms:>10.1f}"
            f" {_num(row.au_plain_ms, '.1f', est):>8} {row.ours_ms:>13.1f}"
            f" {_num(row.au_ms, '.0f', est):>16} {row.au_runs:>4} {row.extra_ms:>8.1f}"
            f" {_num(row.au_extra_ms, '.0f', est):>12} {_num(row.x_extra, '.0f', est):>8}"
            f" {_num(row.x_total, '.0f', est):>8}  {row.plain_statements:>5}"
            f" {row.ours_statements - row.plain_statements:>+10}"
            f" {'-' if au_added is None else format(au_added, '+'):>14}  {row.au_ops}",
            flush=True,
        )


def summarize(rows: list[Row], rivals: bool) -> None:
    added = {row.ours_statements - row.plain_statements for row in rows}
    constant = len(added) == 1
    at_200 = [row for row in rows if row.triggers == TARGET_TRIGGERS]
    print(
        f"\nStatements added by pgtrigger: {sorted(added)}"
        f" ({'independent of the trigger count: ok' if constant else 'VARIES: MISSED'})"
    )
    if at_200:
        worst = max(row.ours_ms for row in at_200) / 1e3
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
    if not rivals:
        return
    grown = {
        row.triggers: row.au_statements - row.au_plain_statements
        for row in rows
        if row.diff == "none" and row.au_statements is not None and row.au_plain_statements
    }
    if grown:
        print(
            "Statements added by alembic_utils (no diff): "
            + ", ".join(f"{n} triggers: {s:,}" for n, s in sorted(grown.items()))
        )
    apart = [
        row
        for row in rows
        if row.au_plain_statements is not None and row.au_plain_statements != row.plain_statements
    ]
    print(
        "Plain Alembic in alembic_utils' interpreter: "
        + ("same statements as here" if not apart else f"DIFFERENT statements in {apart}")
    )
    measured_200 = [row for row in at_200 if row.au_runs and row.x_total is not None]
    if measured_200:
        worst_x = min(row.x_total for row in measured_200 if row.x_total is not None)
        worst_extra = min(row.x_extra for row in measured_200 if row.x_extra is not None)
        flag = "ok" if worst_x >= TARGET_200_FASTER else "MISSED"
        print(
            f"Faster than alembic_utils at 200 triggers: {worst_x:.0f}x in total time,"
            f" {worst_extra:.0f}x in extra time over plain Alembic"
            f" (target >= {TARGET_200_FASTER:g}x): {flag}"
        )
    elif at_200:
        print("Faster than alembic_utils at 200 triggers: not measured (over the budget)")
    bad = [
        row
        for row in rows
        if row.au_runs and row.au_ops != {"none": "-", "1 changed": "ReplaceOp"}[row.diff]
    ]
    print(
        "alembic_utils ops: "
        + ("as expected (none: -, 1 changed: ReplaceOp)" if not bad else f"UNEXPECTED in {bad}")
    )
    if any(row.au_ms is not None and not row.au_runs for row in rows):
        print(
            "~ estimated: one alembic_utils run was predicted over --competitor-budget,"
            " from the smaller sizes (power law); not measured"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tables", default="25,100,500", help="tables per scenario (x2 triggers)")
    parser.add_argument(
        "--competitor-rounds",
        type=int,
        default=3,
        help="at most this many timed alembic_utils runs per scenario (default 3)",
    )
    parser.add_argument(
        "--competitor-budget",
        type=float,
        default=100.0,
        help="seconds of alembic_utils runs per scenario (default 100; at least one run,"
        " unless one is predicted longer than this)",
    )
    parser.add_argument(
        "--no-alembic-utils",
        action="store_true",
        help="measure pgtrigger against plain Alembic only",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20 and 50 triggers, 3 rounds, 2 for alembic_utils",
    )
    args = parser.parse_args()
    if args.quick:
        args.tables, args.rounds, args.competitor_rounds = "10,25", 3, 2
    sizes = [int(n) for n in args.tables.split(",")]

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(server(args.url))
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
        import alembic

        print(
            f"PostgreSQL {version}, SQLAlchemy {sa.__version__}, Alembic {alembic.__version__},"
            f" psycopg 3, Python {platform.python_version()}, {os.cpu_count()} CPUs"
            f" ({platform.machine()}), load average {os.getloadavg()[0]:.2f};"
            f" median of {args.rounds} rounds"
        )
        worker = None
        if not args.no_alembic_utils:
            worker = AlembicUtils()
            stack.callback(worker.close)
            hello = worker.hello
            versions = hello["versions"]
            print(
                f"alembic_utils {versions['alembic_utils']} in its own venv (Alembic"
                f" {versions['alembic']}, SQLAlchemy {versions['SQLAlchemy']}, psycopg"
                f" {versions['psycopg']}, Python {hello['python']}); its import took"
                f" {hello['import_seconds']:.2f} s once, not counted; at most"
                f" {args.competitor_rounds} runs and {args.competitor_budget:g} s per scenario"
            )
            worker.warm_up(url)
        print()
        print_header()
        rows: list[Row] = []
        measured: dict[int, float] = {}
        for n_tables in sizes:
            for row in scenario(
                url,
                n_tables,
                args.rounds,
                worker,
                args.competitor_rounds,
                args.competitor_budget,
                measured,
            ):
                rows.append(row)
                print_row(row)
    if worker:
        print("\npgtrigger against alembic_utils (x: alembic_utils / pgtrigger, paired per round)")
        print_rival_rows(rows)
    summarize(rows, rivals=worker is not None)


if __name__ == "__main__":
    main()
