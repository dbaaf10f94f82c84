"""What ``pgtrigger.ignore`` costs per query: ours (SQLAlchemy, Django) vs django-pgtrigger.

    .venv/bin/python bench/ignore_cost.py                 # embedded PostgreSQL 18, 2,000 updates, 5 rounds
    .venv/bin/python bench/ignore_cost.py --url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/ignore_cost.py --quick         # smoke run: 200 updates, 2 rounds
    .venv/bin/python bench/ignore_cost.py --json out.json # every timing and count, too

Variants, each on its own scratch database of one server (created, and dropped at the end):

``sqla``
    our SQLAlchemy integration, in this process: ``session.execute(update(Item)...)``.
``ours`` / ``theirs``
    the Django ORM with our package / with django-pgtrigger 4.17, each in a long-lived worker
    process (``bench/ignore_cost_django/worker.py``, one file for both: the same app, model and
    ``Meta.triggers``) run with our virtualenv's python / with the python of
    ``competitors.ensure_env(DJANGO_PGTRIGGER)``; statement kinds ``update``
    (``filter(pk=..).update(counter=F(..) + 1)``) and ``save`` (``obj.save(update_fields=..)``).

Every variant updates one of 100 rows of a table behind a conditional ``Protect`` (installed in
the database by the package itself; a blocked write is checked to fail, and to pass inside
``ignore``). Modes: ``autocommit`` (Django's default outside ``atomic``; for SQLAlchemy both
``commit each``, a ``session.commit()`` after every update, and ``AUTOCOMMIT``, an engine with
``isolation_level="AUTOCOMMIT"`` and no commits) and ``one transaction`` (``transaction.atomic()``
around the whole batch; one ``session.commit()``).

Method: per variant x mode, ``--updates`` single-row updates plain and inside
``pgtrigger.ignore(uri)`` (the ``ignore`` and transaction blocks are inside the timed span);
wall time (``perf_counter``) and client CPU time (``process_time`` of the process running the
queries: what the integration's hook itself costs, immune to server noise). Rounds interleave
everything: in each round every cell runs plain and ignored, which of the two goes first
alternating from round to round (ABBA), and the cells run in reverse order every other round.
Results are medians over rounds; extra µs/query and ours/theirs ratios are paired (computed
within a round, then the median). After the timed rounds, one untimed pass per cell runs
through ``bench/wire.py``'s counting proxy (a second connection of the same client) and counts
statements and round trips on the wire: plain batch, ignored batch, and a plain probe update
after each (whatever ``ignore`` leaves to undo on a connection goes out with the next
statement: charged to the ignored batch). Per transaction = per update in autocommit modes
(counted on 200 updates: every one is a transaction, so that is exact), per batch of
``--updates`` in one transaction.

Connections set ``synchronous_commit=off`` (``--sync-commit`` keeps the server's setting): the
WAL flush of each autocommit transaction is the same with and without ``ignore`` and would
only add noise. Targets (flagged): ``ignore`` costs at most 10 µs/query (wall and client CPU)
and at most 1 extra statement per transaction; django-pgtrigger prefixes every query (~45 µs).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import pgtrigger
import pgtrigger.sqla
from pgtrigger.version import __version__ as OUR_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parent))
from competitors import DJANGO_PGTRIGGER, ensure_env
from servers import embedded_server, load_average, scratch_databases, with_database
from wire import Counts, WireCounter

TARGET_US = 10.0
TARGET_STATEMENTS = 1.0
WORKER = Path(__file__).resolve().parent / "ignore_cost_django" / "worker.py"
SQLA_URI = "bench_item:protect_negative"
ROWS = 100


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


@dataclass(frozen=True)
class Cell:
    """One measured combination: variant (sqla/ours/theirs), statement kind, mode."""

    variant: str
    kind: str
    mode: str

    @property
    def label(self) -> str:
        return f"{self.variant} {self.kind}"

    @property
    def autocommit(self) -> bool:
        """Is every update its own transaction?"""
        return self.mode != "one transaction"

    @property
    def django_mode(self) -> str:
        return "autocommit" if self.autocommit else "atomic"


CELLS = (
    Cell("sqla", "update", "one transaction"),
    Cell("sqla", "update", "commit each"),
    Cell("sqla", "update", "AUTOCOMMIT"),
    *(
        Cell(variant, kind, mode)
        for mode in ("autocommit", "one transaction")
        for kind in ("update", "save")
        for variant in ("ours", "theirs")
    ),
)


# -- servers and databases ------------------------------------------------------------------

# -- the runners -----------------------------------------------------------------------------


class SqlaRunner:
    """Our SQLAlchemy integration, in this process (direct and proxied engines)."""

    def __init__(self, url: str, wire_url: str) -> None:
        def engine(target: str, autocommit: bool) -> sa.Engine:
            extra: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
            return sa.create_engine(
                sa.make_url(target).set(drivername="postgresql+psycopg"), pool_size=1, **extra
            )

        self.engines = {
            (wire, autocommit): engine(wire_url if wire else url, autocommit)
            for wire in (False, True)
            for autocommit in (False, True)
        }

    def setup(self) -> dict[str, Any]:
        engine = self.engines[False, False]
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all(Item(id=i, counter=0) for i in range(1, ROWS + 1))
            session.commit()
        blocked = sa.update(Item).where(Item.id == 1).values(counter=-1)
        with Session(engine) as session:
            try:
                session.execute(blocked)
                session.commit()
            except sa.exc.DBAPIError:
                session.rollback()
            else:
                raise AssertionError("the Protect trigger did not block a write: not installed?")
        with Session(engine) as session, pgtrigger.ignore(SQLA_URI):
            session.execute(blocked)
            session.execute(sa.update(Item).where(Item.id == 1).values(counter=0))
            session.commit()
        return {"package": "pgtrigger", "version": OUR_VERSION, "sqlalchemy": sa.__version__}

    def batch(self, cell: Cell, ignored: bool, updates: int, wire: bool) -> dict[str, float]:
        engine = self.engines[wire, cell.mode == "AUTOCOMMIT"]
        commit_each = cell.mode == "commit each"
        block = pgtrigger.ignore(SQLA_URI) if ignored else contextlib.nullcontext()
        start, cpu = time.perf_counter(), time.process_time()
        with block, Session(engine) as session:
            for i in range(updates):
                session.execute(
                    sa.update(Item).where(Item.id == i % ROWS + 1).values(counter=Item.counter + 1)
                )
                if commit_each:
                    session.commit()
            session.commit()
        return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}

    def probe(self, cell: Cell) -> None:
        with Session(self.engines[True, cell.mode == "AUTOCOMMIT"]) as session:
            session.execute(sa.update(Item).where(Item.id == 1).values(counter=Item.counter + 1))
            session.commit()

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


class DjangoWorker:
    """A long-lived ``worker.py`` process with one virtualenv's Django and ``pgtrigger``."""

    def __init__(self, python: Path, url: str, wire_url: str) -> None:
        self.process = subprocess.Popen(
            [str(python), "-P", str(WORKER), "--url", url, "--wire-url", wire_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tempfile.gettempdir(),  # nowhere near the checkout's pgtrigger
        )

    def request(self, **message: Any) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the Django worker exited (code {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Django worker failed:\n{answer['error']}")
        return answer

    def setup(self) -> dict[str, Any]:
        return self.request(op="setup")

    def batch(self, cell: Cell, ignored: bool, updates: int, wire: bool) -> dict[str, float]:
        return self.request(
            op="batch",
            alias="wire" if wire else "default",
            kind=cell.kind,
            mode=cell.django_mode,
            ignored=ignored,
            updates=updates,
        )

    def probe(self, cell: Cell) -> None:
        self.request(op="probe", alias="wire")

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.request_quit()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request_quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.process.stdin.close()


Runner = SqlaRunner | DjangoWorker


# -- measuring -------------------------------------------------------------------------------


def settled(wire: WireCounter) -> Counts:
    """The proxy's counts once its threads have caught up with the last reply."""
    last = wire.counts()
    for _ in range(50):
        time.sleep(0.005)
        now = wire.counts()
        if now == last:
            return now
        last = now
    return last


def count_cell(runner: Runner, wire: WireCounter, cell: Cell, updates: int) -> dict[str, Any]:
    """Statements and round trips of a plain and an ignored batch, counted on the wire."""
    runner.batch(cell, False, min(updates, 20), True)  # connect, warm up
    runner.probe(cell)
    marks = [settled(wire)]
    for step in (
        lambda: runner.batch(cell, False, updates, True),
        lambda: runner.probe(cell),
        lambda: runner.batch(cell, True, updates, True),
        lambda: runner.probe(cell),
    ):
        step()
        marks.append(settled(wire))
    plain, probe_after_plain, ignored, probe_after_ignored = (
        b - a for a, b in itertools.pairwise(marks)
    )
    leftover = probe_after_ignored - probe_after_plain  # what ignore left for the next query
    total = Counts(
        ignored.statements + leftover.statements,
        ignored.round_trips + leftover.round_trips,
        ignored.connections + leftover.connections,
    )
    transactions = updates if cell.autocommit else 1
    return {
        "transactions": transactions,
        "plain": asdict(plain),
        "ignored": asdict(total),
        "stmts_per_txn": (plain.statements / transactions, total.statements / transactions),
        "trips_per_txn": (plain.round_trips / transactions, total.round_trips / transactions),
        "extra_stmts_per_txn": (total.statements - plain.statements) / transactions,
        "extra_trips_per_txn": (total.round_trips - plain.round_trips) / transactions,
        "extra_stmts_per_query": (total.statements - plain.statements) / updates,
        "extra_trips_per_query": (total.round_trips - plain.round_trips) / updates,
    }


def measure(
    runners: dict[str, Runner], cells: tuple[Cell, ...], updates: int, rounds: int, warmup: int
) -> dict[Cell, list[dict[str, dict[str, float]]]]:
    """Timed rounds: per cell and round, {"plain": {...}, "ignored": {...}} (wall, cpu)."""
    for cell in cells:
        for flag in (False, True):
            runners[cell.variant].batch(cell, flag, warmup, False)
    results: dict[Cell, list[dict[str, dict[str, float]]]] = {cell: [] for cell in cells}
    for r in range(rounds):
        for cell in cells if r % 2 == 0 else tuple(reversed(cells)):
            order = (False, True) if r % 2 == 0 else (True, False)
            pair = {
                ("ignored" if flag else "plain"): runners[cell.variant].batch(
                    cell, flag, updates, False
                )
                for flag in order
            }
            results[cell].append(pair)
        print(f"  round {r + 1}/{rounds} done (load {load_average()})", file=sys.stderr)
    return results


# -- summaries -------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def extra_us(pair: dict[str, dict[str, float]], key: str, updates: int) -> float:
    return (pair["ignored"][key] - pair["plain"][key]) / updates * 1e6


def summarize(rounds: list[dict[str, dict[str, float]]], updates: int) -> dict[str, float]:
    walls = [extra_us(p, "wall", updates) for p in rounds]
    centre = med(walls)
    return {
        "plain_ms": med([p["plain"]["wall"] * 1e3 for p in rounds]),
        "ignored_ms": med([p["ignored"]["wall"] * 1e3 for p in rounds]),
        "wall_us": centre,
        "wall_us_mad": med([abs(w - centre) for w in walls]),
        "cpu_us": med([extra_us(p, "cpu", updates) for p in rounds]),
    }


def paired_ratio(
    ours: list[dict[str, dict[str, float]]],
    theirs: list[dict[str, dict[str, float]]],
    key: str,
    updates: int,
) -> float:
    """Median over rounds of ours' extra / theirs' extra (rounds where theirs' is positive)."""
    ratios = [
        extra_us(o, key, updates) / extra_us(t, key, updates)
        for o, t in zip(ours, theirs)
        if extra_us(t, key, updates) > 0
    ]
    return med(ratios)


def verdict(summary: dict[str, float], counts: dict[str, Any]) -> str:
    missed = [
        what
        for what, bad in (
            ("wall", summary["wall_us"] > TARGET_US),
            ("CPU", summary["cpu_us"] > TARGET_US),
            ("stmts", counts["extra_stmts_per_txn"] > TARGET_STATEMENTS),
        )
        if bad
    ]
    return "ok" if not missed else "MISSED " + ",".join(missed)


def report(
    cells: tuple[Cell, ...],
    results: dict[Cell, list[dict[str, dict[str, float]]]],
    counts: dict[Cell, dict[str, Any]],
    updates: int,
) -> None:
    summaries = {cell: summarize(results[cell], updates) for cell in cells}
    print(
        f"{'variant':<14}{'mode':<17}{'plain ms':>9}{'ignore ms':>10}{'wall µs/q':>10}"
        f"{'±':>8}{'CPU µs/q':>9}{'stmts/txn':>16}{'+/txn':>7}{'+/q':>6}"
        f"{'trips/txn':>16}{'+/txn':>7}{'+/q':>6}"
    )
    for cell in cells:
        s, c = summaries[cell], counts[cell]
        stmts = "{:.2f}→{:.2f}".format(*c["stmts_per_txn"])
        trips = "{:.2f}→{:.2f}".format(*c["trips_per_txn"])
        flag = "" if cell.variant == "theirs" else "  " + verdict(s, c)
        print(
            f"{cell.label:<14}{cell.mode:<17}{s['plain_ms']:>9.1f}{s['ignored_ms']:>10.1f}"
            f"{s['wall_us']:>10.1f}{s['wall_us_mad']:>8.1f}{s['cpu_us']:>9.1f}"
            f"{stmts:>16}{c['extra_stmts_per_txn']:>7.2f}{c['extra_stmts_per_query']:>6.2f}"
            f"{trips:>16}{c['extra_trips_per_txn']:>7.2f}{c['extra_trips_per_query']:>6.2f}{flag}"
        )

    print(
        "\nSide by side: extra per query of `ignore`, ours vs django-pgtrigger (same Django ORM"
        " call and mode;\nsqla rows against django-pgtrigger's `update` in the matching mode);"
        " ratio = ours/theirs, paired per round"
    )
    print(
        f"{'ours':<14}{'mode':<17}{'wall ours':>10}{'theirs':>8}{'ratio':>7}"
        f"{'CPU ours':>10}{'theirs':>8}{'ratio':>7}{'+stmts/txn ours':>17}{'theirs':>8}"
        f"{'+trips/txn ours':>17}{'theirs':>8}"
    )
    by_key = {(c.variant, c.kind, c.autocommit): c for c in cells}
    for cell in cells:
        if cell.variant == "theirs":
            continue
        rival = by_key.get(("theirs", cell.kind, cell.autocommit))
        if rival is None:
            continue
        s, t = summaries[cell], summaries[rival]
        o_c, t_c = counts[cell], counts[rival]
        wall_ratio = paired_ratio(results[cell], results[rival], "wall", updates)
        cpu_ratio = paired_ratio(results[cell], results[rival], "cpu", updates)
        print(
            f"{cell.label:<14}{cell.mode:<17}{s['wall_us']:>10.1f}{t['wall_us']:>8.1f}"
            f"{wall_ratio:>7.2f}{s['cpu_us']:>10.1f}{t['cpu_us']:>8.1f}{cpu_ratio:>7.2f}"
            f"{o_c['extra_stmts_per_txn']:>17.2f}{t_c['extra_stmts_per_txn']:>8.2f}"
            f"{o_c['extra_trips_per_txn']:>17.2f}{t_c['extra_trips_per_txn']:>8.2f}"
        )
    print(
        f"\nTargets: `ignore` <= {TARGET_US:g} µs/query extra (wall and client CPU; "
        f"django-pgtrigger ~45), <= {TARGET_STATEMENTS:g} extra statement per transaction. "
        "Columns: medians over rounds; ± = median absolute deviation of the paired wall "
        "extra; stmts and trips per transaction plain→ignored, counted on the wire."
    )


# -- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", help="maintenance database URL (default: embedded PostgreSQL 18)")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 updates, 2 rounds")
    parser.add_argument(
        "--sync-commit", action="store_true", help="keep the server's synchronous_commit"
    )
    parser.add_argument("--json", type=Path, help="write every timing and count to this file")
    args = parser.parse_args()
    if args.quick:
        args.updates, args.rounds = 200, 2
    return args


def main() -> None:
    args = parse_args()
    theirs_python = ensure_env(DJANGO_PGTRIGGER)
    options = (
        {} if args.sync_commit else {"options": "-csynchronous_commit=off"}
    )  # no space: wire.py re-encodes it as "+"
    load_before, started = load_average(), time.monotonic()
    with contextlib.ExitStack() as stack:
        admin_url = args.url or stack.enter_context(embedded_server())
        names = stack.enter_context(scratch_databases(admin_url, 3))
        urls = {
            variant: with_database(admin_url, name, **options)
            for variant, name in zip(("sqla", "ours", "theirs"), names)
        }
        wires = {v: stack.enter_context(WireCounter(u)) for v, u in urls.items()}
        runners: dict[str, Runner] = {}
        runners["sqla"] = SqlaRunner(urls["sqla"], wires["sqla"].url)
        stack.callback(runners["sqla"].close)
        for variant, python in (("ours", Path(sys.executable)), ("theirs", theirs_python)):
            worker = DjangoWorker(python, urls[variant], wires[variant].url)
            stack.callback(worker.close)
            runners[variant] = worker
        facts = {variant: runner.setup() for variant, runner in runners.items()}
        with psycopg.connect(urls["sqla"]) as conn:
            server, sync = conn.execute(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
            ).fetchone() or ("?", "?")
        print(
            f"PostgreSQL {server} (synchronous_commit={sync}), Python {platform.python_version()},"
            f" psycopg {psycopg.__version__}, {os.cpu_count()} CPUs, load {load_before}\n"
            f"ours: pgtrigger {OUR_VERSION} (SQLAlchemy {sa.__version__}; Django "
            f"{facts['ours']['django']}); theirs: {facts['theirs']['package']} "
            f"{facts['theirs']['version']} (Django {facts['theirs']['django']})\n"
            f"{args.updates} single-row updates per batch x {args.rounds} rounds\n"
        )
        results = measure(runners, CELLS, args.updates, args.rounds, warmup=min(200, args.updates))
        counts = {
            # Autocommit: every update is a transaction, so 200 of them give exact figures.
            cell: count_cell(
                runners[cell.variant],
                wires[cell.variant],
                cell,
                min(args.updates, 200) if cell.autocommit else args.updates,
            )
            for cell in CELLS
        }
        report(CELLS, results, counts, args.updates)
        print(
            f"\nLoad average before: {load_before}; after: {load_average()};"
            f" {time.monotonic() - started:.0f} s"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "facts": facts,
                        "server": server,
                        "updates": args.updates,
                        "rounds": args.rounds,
                        "cells": [
                            {
                                **asdict(cell),
                                "timings": results[cell],
                                "summary": summarize(results[cell], args.updates),
                                "counts": counts[cell],
                            }
                            for cell in CELLS
                        ],
                    },
                    indent=1,
                )
            )


if __name__ == "__main__":
    main()
