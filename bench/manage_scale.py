"""Management at scale: install, ls, prune and uninstall of 1,000 triggers, three ways.

500 tables x 2 triggers (a conditional ``Protect`` and a BEFORE INSERT/UPDATE ``Trigger``),
generated in a temporary directory by ``scale_project.py`` both as a SQLAlchemy ``MetaData``
and as a Django app describing the same tables. Three tools act on them, each a subprocess
(what a user types, timed as a whole):

- ``cli``: our ``pgtrigger <command> --target scale_models:metadata --url URL``
  (SQLAlchemy + psycopg 3, install template v2);
- ``manage``: ``python manage.py pgtrigger <command>`` with this package in
  ``INSTALLED_APPS`` (Django + psycopg 3, template v1, django-pgtrigger's SQL);
- ``dpgt``: the same ``manage.py`` under django-pgtrigger 4.17 in its own virtualenv
  (``competitors.py``), run with ``-P`` and ``PYTHONPATH`` = the temporary directory only, so
  the checkout's ``pgtrigger`` is never importable there (checked before measuring).

Each round, each tool gets a fresh database with the 500 tables (plain SQL, no triggers) and
runs the phases in order: install (fresh), install (nothing changed), install forced (ours:
``--force``; our ``manage.py pgtrigger install`` has no such option, like django-pgtrigger's;
django-pgtrigger's install re-runs every trigger's install SQL anyway, so its "forced" is the
same command again), ``ls``, prune (after 500 ``pgtrigger_``-named orphan triggers, each with
its own function, are created by SQL), uninstall. After each phase the catalog is checked
(the expected number of ``pgtrigger_`` triggers), so a tool that silently did nothing cannot
look fast. Tools take turns within each round, in a rotating order; figures are medians over
rounds, ratios paired within rounds.

Every command talks to the server through ``wire.WireCounter`` (a counting proxy); a subclass
here also logs each message, so round trips and statements are split into: *work*; *driver*
transaction control sent as its own message (``BEGIN``, ``COMMIT``, ``ROLLBACK``,
``SAVEPOINT``/``RELEASE`` alone); and *connection set-up* (the dialect's or backend's first
queries on a new connection: server version, ``standard_conforming_strings``, time zone...).
The targets (1,000 triggers: ``ls`` and a no-change install in 1 round trip, a fresh install
in <= 5) are judged on *work* round trips; the rest is printed next to them.

"start-up" is the same tool's ``prune`` on an empty target (no tables, no models) against an
empty database: interpreter, imports, framework set-up, connecting and one catalog query
(not ``ls``: django-pgtrigger's ``ls`` fails with ``max() arg is an empty sequence`` when no
trigger is declared). "-start" is a phase's wall time minus that (paired per round): what the
500 tables cost, registry included (``registry_startup.py`` measures the registry alone).
"wire" is the time from the command's first message on the wire to its last: the database
phase as the server sees it. Subprocesses share a bytecode cache in the temporary directory
(``PYTHONPYCACHEPREFIX``, filled by a warm-up), so none recompiles its modules per command.

    .venv/bin/python bench/manage_scale.py                # embedded PostgreSQL 18, 500 tables, 3 rounds
    .venv/bin/python bench/manage_scale.py --quick        # 50 tables, 1 round (smoke run)
    .venv/bin/python bench/manage_scale.py --url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/manage_scale.py --tables 500 --rounds 1 --json out.json --trace
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
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import scale_project
from competitors import DJANGO_PGTRIGGER, ensure_env, version_of
from psycopg import sql
from servers import embedded_server, scratch_databases, with_database
from wire import WireCounter, _statements_in

OUR_PYTHON = Path(sys.executable)
TOOLS = ("cli", "manage", "dpgt")
LABELS = {"cli": "ours CLI", "manage": "ours manage.py", "dpgt": "django-pgtrigger"}
PHASES = ("install_fresh", "install_unchanged", "install_forced", "ls", "prune", "uninstall")
PHASE_LABELS = {
    "install_fresh": "install (fresh)",
    "install_unchanged": "install (no change)",
    "install_forced": "install (forced)",
    "ls": "ls",
    "prune": "prune (orphans)",
    "uninstall": "uninstall",
}
#: Work round trips allowed per database at 1,000 triggers (the issue's targets).
TARGETS = {"ls": 1, "install_unchanged": 1, "install_fresh": 5}
CATEGORIES = ("work", "driver", "setup")

_TX = re.compile(
    r"^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT\s+\S+"
    r"|RELEASE(\s+SAVEPOINT)?\s+\S+|ROLLBACK\s+TO(\s+SAVEPOINT)?\s+\S+)"
    r"(\s+(WORK|TRANSACTION))?(\s+ISOLATION\s+LEVEL\s+[A-Z]+(\s+[A-Z]+)?)?\s*;?\s*$",
    re.IGNORECASE,
)
#: What SQLAlchemy's psycopg dialect and Django's backend send on a new connection.
_SETUP = re.compile(
    r"^\s*(select\s+pg_catalog\.version\(\)|select\s+current_schema\(\)"
    r"|show\s+standard_conforming_strings|show\s+transaction\s+isolation\s+level"
    r"|set\s+time\s+zone|select\s+set_config\('timezone'"
    # psycopg's TypeInfo.fetch: SQLAlchemy's dialect looks up hstore on first connect
    r"|select\s+typname\s+as\s+name,\s+oid,\s+typarray\s+as\s+array_oid)",
    re.IGNORECASE,
)
_ENDS = re.compile(r"^\s*(COMMIT|ROLLBACK|END)\s*;?\s*$", re.IGNORECASE)


def classify(text: str) -> str:
    """``driver``, ``setup`` or ``work`` for one message's SQL."""
    if _TX.match(text):
        return "driver"
    if _SETUP.match(text):
        return "setup"
    return "work"


# -------------------------------------------------------------------------------------------
# Counting on the wire, message by message
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One frontend message that counts: a Query, an Execute or a Sync."""

    at: float
    round_trips: int
    statements: int
    category: str
    text: str


class TracingCounter(WireCounter):
    """``WireCounter`` that also keeps each counted message, its time and its SQL, so round
    trips and statements can be told apart (work, driver transaction control, set-up).

    Prepared-statement names are tracked per proxy, not per connection: fine for commands
    that use one connection at a time, as these do.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.events: list[Event] = []
        self._log_lock = threading.Lock()
        self._prepared: dict[bytes, str] = {}
        self._portals: dict[bytes, str] = {}
        self._since_sync: list[str] = []

    def _count(self, kind: bytes, body: bytes) -> None:
        super()._count(kind, body)
        now = time.perf_counter()
        with self._log_lock:
            if kind == b"Q":
                text = body.rstrip(b"\x00").decode("utf-8", "replace")
                self.events.append(Event(now, 1, _statements_in(body), classify(text), text))
            elif kind == b"P":
                name, _, rest = body.partition(b"\x00")
                self._prepared[name] = rest.partition(b"\x00")[0].decode("utf-8", "replace")
            elif kind == b"B":
                portal, _, rest = body.partition(b"\x00")
                self._portals[portal] = self._prepared.get(rest.partition(b"\x00")[0], "?")
            elif kind == b"E":
                text = self._portals.get(body.partition(b"\x00")[0], "?")
                category = classify(text)
                self._since_sync.append(category)
                self.events.append(Event(now, 0, 1, category, text))
            elif kind == b"S":
                seen, self._since_sync = self._since_sync, []
                category = next((c for c in CATEGORIES if c in seen), "driver")
                self.events.append(Event(now, 1, 0, category, "<Sync>"))

    def __enter__(self) -> TracingCounter:
        super().__enter__()
        return self

    def mark(self) -> int:
        with self._log_lock:
            return len(self.events)

    def since(self, mark: int) -> list[Event]:
        time.sleep(0.01)  # the proxy counts right after forwarding: let its thread finish
        with self._log_lock:
            return self.events[mark:]


@dataclass
class Run:
    """One command: wall time, time on the wire, and counts per category."""

    wall_ms: float
    wire_ms: float
    #: From the first message to the first one after connection set-up.
    setup_ms: float
    round_trips: dict[str, int]
    statements: dict[str, int]
    connections: int
    trace: list[str] = field(default_factory=list)
    #: ``pgtrigger_`` functions left in the database after the command.
    functions: int = 0


def with_setup(events: list[Event]) -> list[Event]:
    """Count as set-up the transaction a dialect wraps its first queries in: before the first
    work message, every message up to the last COMMIT/ROLLBACK that follows a set-up query
    (SQLAlchemy: ``BEGIN``, four queries, a savepointed hstore lookup, ``ROLLBACK``)."""
    first_work = next((i for i, e in enumerate(events) if e.category == "work"), len(events))
    seen, end = False, -1
    for i, event in enumerate(events[:first_work]):
        if event.category == "setup":
            seen = True
        elif seen and _ENDS.match(event.text):
            end = i
    return [
        dataclasses.replace(e, category="setup") if i <= end and e.category == "driver" else e
        for i, e in enumerate(events)
    ]


def summarize(wall_ms: float, events: list[Event], connections: int, trace: bool) -> Run:
    events = with_setup(events)
    trips = dict.fromkeys(CATEGORIES, 0)
    stmts = dict.fromkeys(CATEGORIES, 0)
    for event in events:
        trips[event.category] += event.round_trips
        stmts[event.category] += event.statements
    wire_ms = (events[-1].at - events[0].at) * 1e3 if events else 0.0
    last_setup = max((i for i, e in enumerate(events) if e.category == "setup"), default=-1)
    after = events[min(last_setup + 1, len(events) - 1)] if events else None
    setup_ms = (after.at - events[0].at) * 1e3 if after and last_setup >= 0 else 0.0
    lines = [
        f"{e.category:<6} rt={e.round_trips} st={e.statements:<5} " + " ".join(e.text.split())[:100]
        for e in events
    ]
    return Run(wall_ms, wire_ms, setup_ms, trips, stmts, connections, lines if trace else [])


# -------------------------------------------------------------------------------------------
# Servers, databases, commands
# -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(admin_url: str, ddl: sql.Composed | None) -> Iterator[str]:
    """A new database (with ``ddl`` run in it); yields its URL; dropped afterwards."""
    with scratch_databases(admin_url) as (name,):
        url = with_database(admin_url, name)
        if ddl is not None:
            with psycopg.connect(url) as conn:
                conn.execute(ddl)
        yield url


def run_sql(url: str, statement: sql.Composed) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement)


def pgtrigger_objects(url: str) -> tuple[int, int]:
    """(``pgtrigger_`` triggers, ``pgtrigger_`` functions) in the database."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_trigger"
            "         WHERE tgname LIKE 'pgtrigger\\_%' AND NOT tgisinternal),"
            "       (SELECT count(*) FROM pg_proc WHERE proname LIKE 'pgtrigger\\_%')"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


@dataclass(frozen=True)
class Tools:
    """How to run each tool: its interpreter and the project directory."""

    root: Path
    competitor: Path

    def argv(self, tool: str, phase: str, *, empty: bool = False) -> list[str] | None:
        words = {
            "install_fresh": ["install"],
            "install_unchanged": ["install"],
            "install_forced": ["install", "--force"],
            "ls": ["ls"],
            "prune": ["prune"],
            "uninstall": ["uninstall"],
        }[phase]
        if tool == "cli":
            target = scale_project.SQLA_EMPTY_TARGET if empty else scale_project.SQLA_TARGET
            return [str(OUR_PYTHON), "-m", "pgtrigger.cli", *words, "--target", target]
        if phase == "install_forced":
            if tool == "manage":
                return None  # manage.py pgtrigger install has no --force (nor has theirs)
            words = ["install"]  # django-pgtrigger re-installs every trigger on each install
        python = [str(OUR_PYTHON)] if tool == "manage" else [str(self.competitor), "-P"]
        return [*python, "manage.py", "pgtrigger", *words]

    def env(self, tool: str, url: str, *, empty: bool = False) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONHOME")
        }
        env["NO_COLOR"] = "1"
        # Every tool reads and writes bytecode in one cache of its own (PYTHONDONTWRITEBYTECODE
        # would make ours recompile the checkout's modules on every command, not theirs).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.root / "pycache")
        if tool == "cli":
            env["DATABASE_URL"] = url
        else:
            settings = scale_project.SETTINGS_EMPTY if empty else scale_project.SETTINGS
            env["DJANGO_SETTINGS_MODULE"] = settings
            env[scale_project.DATABASE_ENV] = url
            env["PYTHONPATH"] = str(self.root)
        return env

    def run(self, argv: list[str], env: dict[str, str]) -> float:
        """Run one command in the project directory; return its wall time in ms."""
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True)
        elapsed = (time.perf_counter() - start) * 1e3
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return elapsed

    def check_isolation(self) -> str:
        """The competitor imports its own pgtrigger from its venv, never the checkout's."""
        code = "import pgtrigger, sys; print(pgtrigger.__file__)"
        env = self.env("dpgt", "postgresql://unused/unused")
        where = subprocess.run(
            [str(self.competitor), "-P", "-c", code],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        venv = self.competitor.parent.parent.resolve()
        if not Path(where).resolve().is_relative_to(venv):
            raise RuntimeError(f"django-pgtrigger's process imports pgtrigger from {where}")
        return where


# -------------------------------------------------------------------------------------------
# One round
# -------------------------------------------------------------------------------------------


def measure_startup(tools: Tools, tool: str, empty_url: str, trace: bool) -> Run:
    with TracingCounter(empty_url) as wire:
        argv = tools.argv(tool, "prune", empty=True)
        assert argv is not None
        if tool == "cli":
            argv = [*argv, "--url", wire.url]
        wall = tools.run(argv, tools.env(tool, wire.url, empty=True))
        return summarize(wall, wire.since(0), wire.counts().connections, trace)


def measure_tool(
    tools: Tools, tool: str, admin_url: str, project: scale_project.Project, trace: bool
) -> dict[str, Run | None]:
    """Every phase of one tool on a fresh database."""
    runs: dict[str, Run | None] = {}
    with (
        database(admin_url, scale_project.table_ddl(project.tables)) as url,
        TracingCounter(url) as wire,
    ):
        for phase in PHASES:
            argv = tools.argv(tool, phase)
            if argv is None:
                runs[phase] = None
                continue
            if phase == "prune":
                run_sql(url, scale_project.orphan_sql(project.tables))
                found, _ = pgtrigger_objects(url)
                if found != project.triggers + len(project.tables):
                    raise RuntimeError(f"{found} pgtrigger_ triggers before prune")
            if tool == "cli":
                argv = [*argv, "--url", wire.url]
            mark, connections = wire.mark(), wire.counts().connections
            wall = tools.run(argv, tools.env(tool, wire.url))
            events = wire.since(mark)
            run = runs[phase] = summarize(
                wall, events, wire.counts().connections - connections, trace
            )
            found, functions = pgtrigger_objects(url)
            run.functions = functions
            want = 0 if phase == "uninstall" else project.triggers
            if found != want:
                raise RuntimeError(
                    f"{LABELS[tool]} {phase}: {found} pgtrigger_ triggers, expected {want}"
                )
    return runs


# -------------------------------------------------------------------------------------------
# Summaries and output
# -------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One (phase, tool): medians over rounds."""

    wall_ms: float
    minus_start_ms: float
    wire_ms: float
    setup_ms: float
    round_trips: dict[str, int]
    statements: dict[str, int]
    varied: bool
    ratio_vs_dpgt: float | None = None
    functions: int = 0
    #: Median absolute deviation of the wall time over rounds, % of the median.
    noise_pct: float = 0.0


def _noise(values: list[float]) -> float:
    middle = statistics.median(values)
    return 100 * statistics.median(abs(v - middle) for v in values) / middle if middle else 0.0


def _median_counts(runs: list[Run], attr: str) -> dict[str, int]:
    return {c: int(statistics.median(getattr(run, attr)[c] for run in runs)) for c in CATEGORIES}


def summarize_cells(
    rounds: list[dict[str, Any]],
) -> tuple[dict[str, Cell], dict[str, dict[str, Cell | None]]]:
    """(start-up cell per tool, cells[phase][tool])."""
    startup: dict[str, Cell] = {}
    for tool in TOOLS:
        runs = [r["startup"][tool] for r in rounds]
        startup[tool] = Cell(
            statistics.median(x.wall_ms for x in runs),
            0.0,
            statistics.median(x.wire_ms for x in runs),
            statistics.median(x.setup_ms for x in runs),
            _median_counts(runs, "round_trips"),
            _median_counts(runs, "statements"),
            len({json.dumps(x.round_trips) for x in runs}) > 1,
        )
    cells: dict[str, dict[str, Cell | None]] = {}
    for phase in PHASES:
        cells[phase] = {}
        for tool in TOOLS:
            pairs = [(r["phases"][tool][phase], r["startup"][tool]) for r in rounds]
            if any(run is None for run, _ in pairs):
                cells[phase][tool] = None
                continue
            runs = [run for run, _ in pairs if run is not None]
            ratio = None
            if tool != "dpgt":
                theirs = [r["phases"]["dpgt"][phase] for r in rounds]
                ratio = statistics.median(
                    ours.wall_ms / other.wall_ms for ours, other in zip(runs, theirs)
                )
            cells[phase][tool] = Cell(
                statistics.median(x.wall_ms for x in runs),
                statistics.median(run.wall_ms - start.wall_ms for run, start in pairs if run),
                statistics.median(x.wire_ms for x in runs),
                statistics.median(x.setup_ms for x in runs),
                _median_counts(runs, "round_trips"),
                _median_counts(runs, "statements"),
                len({json.dumps(x.round_trips) for x in runs}) > 1,
                ratio,
                max(x.functions for x in runs),
                _noise([x.wall_ms for x in runs]),
            )
    return startup, cells


def _counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return f"{total} ({counts['work']}+{counts['driver']}+{counts['setup']})"


def print_report(
    startup: dict[str, Cell], cells: dict[str, dict[str, Cell | None]], n_triggers: int
) -> list[str]:
    """Print the tables; return the missed targets."""
    print("Start-up: prune on an empty target and an empty database (whole command; on the wire)")
    for t in TOOLS:
        start = startup[t]
        print(
            f"  {LABELS[t]:<17} {start.wall_ms:>6.0f} ms; {_counts(start.round_trips)} round trips,"
            f" connection set-up {start.setup_ms:.1f} ms on the wire"
        )
    print()
    print("Wall time, ms: whole command | minus start-up | on the wire (first to last message)")
    head = f"{'phase':<20}" + "".join(f"| {LABELS[t]:^24} " for t in TOOLS)
    head += "| CLI/dpgt mgmt/dpgt"
    print(head)
    print(f"{'':<20}" + "| {:>7} {:>7} {:>7}  ".format("wall", "-start", "wire") * len(TOOLS))
    print("-" * len(head))
    for phase in PHASES:
        line = f"{PHASE_LABELS[phase]:<20}"
        for tool in TOOLS:
            cell = cells[phase][tool]
            if cell is None:
                line += f"| {'n/a':>7} {'':>7} {'':>7}  "
            else:
                line += f"| {cell.wall_ms:>7.0f} {cell.minus_start_ms:>7.0f} {cell.wire_ms:>7.0f}  "
        ratios = []
        for tool in ("cli", "manage"):
            cell = cells[phase][tool]
            ratios.append(
                f"{cell.ratio_vs_dpgt:>8.2f}" if cell and cell.ratio_vs_dpgt else "     n/a"
            )
        print(line + "| " + " ".join(ratios))
    noisiest = max(
        ((c.noise_pct, phase, t) for phase, by in cells.items() for t, c in by.items() if c),
        default=(0.0, "", ""),
    )
    print(
        f"noise: largest wall-time deviation over rounds {noisiest[0]:.0f} % of the median"
        f" ({LABELS.get(noisiest[2], '-')}, {PHASE_LABELS.get(noisiest[1], '-')})"
        + ("  NOISY: other load on the machine, rerun" if noisiest[0] > 10 else "")
    )
    print()
    print(
        "On the wire: total (work + driver BEGIN/COMMIT/SAVEPOINT sent alone + connection set-up)"
    )
    head = f"{'phase':<20}" + "".join(f"| {LABELS[t]:^35} " for t in TOOLS)
    print(head)
    print(f"{'':<20}" + "| {:<16} {:<18} ".format("round trips", "statements") * len(TOOLS))
    print("-" * len(head))
    for phase in PHASES:
        line = f"{PHASE_LABELS[phase]:<20}"
        for tool in TOOLS:
            cell = cells[phase][tool]
            if cell is None:
                line += f"| {'n/a':<16} {'':<18} "
            else:
                mark = "*" if cell.varied else ""
                line += f"| {_counts(cell.round_trips) + mark:<16} {_counts(cell.statements):<18} "
        print(line)
    if any(c and c.varied for by_tool in cells.values() for c in by_tool.values()):
        print("(* round trips varied between rounds: median shown)")
    left = [
        f"{LABELS[t]} {pruned.functions} / {uninstalled.functions}"
        for t in TOOLS
        if (pruned := cells["prune"][t]) and (uninstalled := cells["uninstall"][t])
    ]
    print("pgtrigger_ functions left after prune / uninstall: " + ", ".join(left))
    print()
    print(
        f"Targets at {n_triggers:,} triggers (issue: 1,000), work round trips per database;"
        " driver and set-up round trips in brackets:"
    )
    missed = []
    for phase, limit in TARGETS.items():
        for tool in ("cli", "manage"):
            cell = cells[phase][tool]
            if cell is None:
                continue
            work = cell.round_trips["work"]
            ok = work <= limit
            if not ok:
                missed.append(f"{LABELS[tool]} {PHASE_LABELS[phase]}: {work} > {limit}")
            print(
                f"  {PHASE_LABELS[phase]:<20} <= {limit}: {LABELS[tool]:<15} {work:>3}"
                f" (+{cell.round_trips['driver']} driver, +{cell.round_trips['setup']} set-up)"
                f"  {'ok' if ok else 'MISSED'}"
            )
    return missed


def versions(competitor: Path) -> dict[str, str]:
    import django
    import sqlalchemy

    from pgtrigger.version import __version__

    return {
        "pgtrigger": __version__,
        "sqlalchemy": sqlalchemy.__version__,
        "django": django.__version__,
        "psycopg": psycopg.__version__,
        "django-pgtrigger": version_of(competitor, "django-pgtrigger"),
        "competitor django": version_of(competitor, "Django"),
        "competitor psycopg": version_of(competitor, "psycopg"),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", help="maintenance database of the server to use (default: embedded PG 18)"
    )
    parser.add_argument("--tables", type=int, help="tables (x2 triggers); default 500")
    parser.add_argument("--rounds", type=int, help="rounds; default 3")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 tables, 1 round")
    parser.add_argument("--json", metavar="PATH", help="write every run and the summary")
    parser.add_argument("--trace", action="store_true", help="keep each message's SQL (JSON)")
    args = parser.parse_args()
    n_tables = args.tables or (50 if args.quick else 500)
    rounds = args.rounds or (1 if args.quick else 3)

    competitor = ensure_env(DJANGO_PGTRIGGER)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        admin_url = args.url or stack.enter_context(embedded_server())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgtrigger-scale-")))
        project = scale_project.write_project(root, n_tables)
        tools = Tools(root, competitor)
        where = tools.check_isolation()
        with psycopg.connect(admin_url) as conn:
            server = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        facts = versions(competitor)
        print(
            f"PostgreSQL {server}{'' if args.url else ' (embedded)'}; {n_tables} tables x 2"
            f" = {project.triggers:,} triggers; {rounds} round(s), medians;"
            f" {os.cpu_count()} CPUs, load {load_before[0]:.2f}"
        )
        print(
            f"ours: pgtrigger {facts['pgtrigger']} (CLI: SQLAlchemy {facts['sqlalchemy']},"
            f" template v2; manage.py: Django {facts['django']}, template v1), psycopg"
            f" {facts['psycopg']}; django-pgtrigger {facts['django-pgtrigger']} (Django"
            f" {facts['competitor django']}, psycopg {facts['competitor psycopg']}, from {where})"
        )
        empty_url = stack.enter_context(database(admin_url, None))
        for tool in TOOLS:  # warm-up: file caches, and .pyc files of everything imported
            measure_startup(tools, tool, empty_url, False)
            argv = tools.argv(tool, "prune")
            assert argv is not None
            env = tools.env(tool, empty_url)
            tools.run([*argv, "--url", empty_url] if tool == "cli" else argv, env)
        results: list[dict[str, Any]] = []
        for r in range(rounds):
            order = TOOLS[r % 3 :] + TOOLS[: r % 3]
            record: dict[str, Any] = {"order": list(order), "startup": {}, "phases": {}}
            for tool in order:
                record["startup"][tool] = measure_startup(tools, tool, empty_url, args.trace)
                record["phases"][tool] = measure_tool(tools, tool, admin_url, project, args.trace)
            results.append(record)
            print(
                f"round {r + 1}/{rounds} done ({time.perf_counter() - started:.0f} s)", flush=True
            )
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    startup, cells = summarize_cells(results)
    missed = print_report(startup, cells, project.triggers)
    print("\nAll targets met." if not missed else "\nMISSED: " + "; ".join(missed))
    if args.json:
        payload = {
            "server": server,
            "tables": n_tables,
            "triggers": project.triggers,
            "rounds": rounds,
            "versions": facts,
            "load": [load_before[0], load_after[0]],
            "startup": {t: asdict(c) for t, c in startup.items()},
            "cells": {
                p: {t: asdict(c) if c else None for t, c in by_tool.items()}
                for p, by_tool in cells.items()
            },
            "missed": missed,
            "runs": [
                {
                    "order": rec["order"],
                    "startup": {t: asdict(x) for t, x in rec["startup"].items()},
                    "phases": {
                        t: {p: asdict(x) if x else None for p, x in by_phase.items()}
                        for t, by_phase in rec["phases"].items()
                    },
                }
                for rec in results
            ],
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
