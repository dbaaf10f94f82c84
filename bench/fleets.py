"""Fleets: many tenant schemas in one database, and many databases in one command.

(a) ``--tenants`` schemas (default 1,000) each holding one table with 5 triggers, in one
database: our ``pgtrigger <command> --schema 'tenant_*'`` against ``psql -1 -f`` of the same
install SQL (each trigger's ``install_sql_for`` its schema: what a migration would run).
Every command goes through ``wire.TracingCounter``, so its round trips are split into *work*,
*driver* transaction control and connection *set-up* (see ``manage_scale.py``): ``ls`` and
``check`` must do their work in 1 round trip however many schemas match.

(b) ``--databases`` databases (default 20) each holding 20 tables x 5 triggers: one fleet
command (``--url`` repeated, ``--jobs`` at a time) against the same command run one database
at a time, one process each (what a shell loop does), and a fleet with ``--jobs 1`` (one
process, one database at a time: the start-up saved, without concurrency).

Every command is a subprocess (what a user types), timed as a whole; the catalog is checked
after each (the expected number of ``pgtrigger_`` triggers). Variants take turns within each
round; figures are medians over rounds, ratios paired within rounds.

    .venv/bin/python bench/fleets.py                  # embedded PostgreSQL 18, 2 rounds
    .venv/bin/python bench/fleets.py --quick          # 100 tenants, 5 databases, 1 round
    .venv/bin/python bench/fleets.py --url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from manage_scale import Run, TracingCounter, pgtrigger_objects, summarize
from psycopg import sql
from servers import load_average, scratch_databases, server, with_database

OUR_PYTHON = Path(sys.executable)
TRIGGERS = """
    pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
    pgtrigger.ReadOnly(name="frozen_name", fields=["name"]),
    pgtrigger.FSM(name="status_fsm", field="status", transitions=[("new", "done")]),
    pgtrigger.Protect(
        name="done_is_final", operation=pgtrigger.Update, condition=pgtrigger.Q(old__status="done")
    ),
    pgtrigger.Protect(
        name="no_big_amounts", operation=pgtrigger.Insert, condition=pgtrigger.Q(new__amount__gt=10**6)
    ),
"""
MODELS = f'''\
"""Benchmark models: a tenant table (one per tenant schema), and fleet tables."""

import sqlalchemy as sa

import pgtrigger

tenant = sa.MetaData()
fleet = sa.MetaData()


def columns():
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("amount", sa.Integer),
    ]


sa.Table("tenant_item", tenant, *columns(), {TRIGGERS})
for i in range(20):
    sa.Table(f"fleet_t{{i}}", fleet, *columns(), {TRIGGERS})
'''
TABLE_DDL = "CREATE TABLE {} (id int PRIMARY KEY, name text, status text, amount int)"
FLEET_TABLES = 20
PER_TABLE = 5


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a command; its wall time in ms (a failure stops the benchmark)."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1e3
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return elapsed


def expect(url: str, count: int, what: str) -> None:
    found, _ = pgtrigger_objects(url)
    if found != count:
        raise RuntimeError(f"{what}: {found} pgtrigger_ triggers, expected {count}")


def cli(*words: str) -> list[str]:
    return [str(OUR_PYTHON), "-m", "pgtrigger.cli", *words]


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env["NO_COLOR"] = "1"
    return env


def tenant_install_sql(root: Path, schemas: list[str], version: int) -> str:
    """The install SQL of the tenant table's triggers in every schema, as psql would run it."""
    sys.path.insert(0, str(root))
    import bench_models

    import pgtrigger.sqla

    targets = pgtrigger.sqla.targets(metadata=bench_models.tenant)
    parts = [t.compiled.install_sql_for(version, schema=s) for s in schemas for t in targets]
    return "\n".join(parts)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired(a: list[float], b: list[float]) -> float:
    """Median over rounds of a / b."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def work(runs: list[Run]) -> str:
    """Round trips of a command (medians): work + driver + set-up."""
    parts = [int(median([r.round_trips[c] for r in runs])) for c in ("work", "driver", "setup")]
    return f"{sum(parts)} ({parts[0]}+{parts[1]}+{parts[2]})"


def tenants(admin_url: str, root: Path, count: int, rounds: int, trace: bool = False) -> None:
    env = environment(root)
    schemas = [f"tenant_{i:05d}" for i in range(count)]
    total = count * PER_TABLE
    with scratch_databases(admin_url) as (name,):
        url = with_database(admin_url, name)
        with psycopg.connect(url) as conn:
            for schema in schemas:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                table = sql.Identifier(schema, "tenant_item")
                conn.execute(sql.SQL(TABLE_DDL).format(table))
            version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        script = root / "tenants.sql"
        script.write_text(tenant_install_sql(root, schemas, version))
        psql = ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(script), "-d", url]
        base = ("--target", "bench_models:tenant", "--schema", "tenant_*")
        times: dict[str, list[float]] = {}
        traced: dict[str, list[Run]] = {}
        with TracingCounter(url) as wire:
            commands: dict[str, tuple[list[str], int]] = {
                "install (fresh)": (cli("install", *base, "--url", wire.url), total),
                "install (no change)": (cli("install", *base, "--url", wire.url), total),
                "ls": (cli("ls", *base, "--url", wire.url), total),
                "check": (cli("check", *base, "--url", wire.url), total),
                "uninstall": (cli("uninstall", *base, "--url", wire.url), 0),
            }
            for r in range(rounds):
                times.setdefault("psql -1 -f", []).append(run(psql, root, env))
                expect(url, total, "psql")
                run(cli("uninstall", *base, "--url", url), root, env)
                expect(url, 0, "uninstall after psql")
                for label, (argv, want) in commands.items():
                    mark = wire.mark()
                    wall = run(argv, root, env)
                    summary = summarize(wall, wire.since(mark), 1, trace)
                    traced.setdefault(label, []).append(summary)
                    if trace and r == 0:
                        print(f"-- {label}", *summary.trace, sep="\n", file=sys.stderr)
                    times.setdefault(label, []).append(wall)
                    expect(url, want, label)
                print(f"  tenants round {r + 1}/{rounds} done", file=sys.stderr)
    psql_ms = times["psql -1 -f"]
    print(
        f"\n(a) {count:,} tenant schemas x {PER_TABLE} triggers = {total:,} triggers, one database"
    )
    print(f"{'command':<22}{'wall ms':>10}{'vs psql':>9}  round trips (work+driver+set-up)")
    print(f"{'psql -1 -f':<22}{median(psql_ms):>10.0f}{1.0:>8.2f}x  -")
    for label, walls in times.items():
        if label == "psql -1 -f":
            continue
        ratio = paired(walls, psql_ms)
        print(f"{label:<22}{median(walls):>10.0f}{ratio:>8.2f}x  {work(traced[label])}")


def fleet(admin_url: str, root: Path, count: int, rounds: int, jobs: int) -> None:
    env = environment(root)
    total = FLEET_TABLES * PER_TABLE
    with scratch_databases(admin_url, count) as names:
        urls = [with_database(admin_url, name) for name in names]
        for url in urls:
            with psycopg.connect(url) as conn:
                for i in range(FLEET_TABLES):
                    conn.execute(sql.SQL(TABLE_DDL).format(sql.Identifier(f"fleet_t{i}")))
        target = ("--target", "bench_models:fleet")
        every = [arg for url in urls for arg in ("--url", url)]

        def fleet_cmd(command: str, n: int) -> Callable[[], float]:
            return lambda: run(cli(command, *target, *every, "--jobs", str(n)), root, env)

        def one_by_one(command: str) -> Callable[[], float]:
            return lambda: sum(run(cli(command, *target, "--url", u), root, env) for u in urls)

        def uninstall() -> None:
            fleet_cmd("uninstall", jobs)()
            for url in urls:
                expect(url, 0, "uninstall")

        variants = {
            f"fleet --jobs {jobs}": lambda c: fleet_cmd(c, jobs),
            "fleet --jobs 1": lambda c: fleet_cmd(c, 1),
            "one database at a time": one_by_one,
        }
        times: dict[tuple[str, str], list[float]] = {}
        order = list(variants)
        for r in range(rounds):
            for variant in order[r % len(order) :] + order[: r % len(order)]:
                for command in ("install", "check"):
                    times.setdefault((command, variant), []).append(variants[variant](command)())
                    for url in urls:
                        expect(url, total, f"{variant} {command}")
                uninstall()
            print(f"  fleet round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"\n(b) {count} databases x {total} triggers ({count * total:,} triggers)")
    base = "one database at a time"
    print(f"{'command':<10}{'variant':<26}{'wall ms':>10}{'speed-up':>10}")
    for command in ("install", "check"):
        for variant in variants:
            walls = times[(command, variant)]
            speedup = paired(times[(command, base)], walls)
            print(f"{command:<10}{variant:<26}{median(walls):>10.0f}{speedup:>9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a maintenance database (default: embedded PG 18)")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="100 tenants, 5 databases, 1 round")
    parser.add_argument("--only", choices=("tenants", "fleet"))
    parser.add_argument("--trace", action="store_true", help="print each message (tenants)")
    args = parser.parse_args()
    if args.quick:
        args.tenants, args.databases, args.rounds = 100, 5, 1
    with tempfile.TemporaryDirectory(prefix="pgtrigger-fleets-") as tmp, server(args.url) as url:
        root = Path(tmp)
        (root / "bench_models.py").write_text(MODELS)
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        print(f"PostgreSQL {version}; Python {platform.python_version()}; {os.cpu_count()} CPUs;")
        print(f"load average {load_average()}; {args.rounds} round(s)")
        run(cli("--version"), root, environment(root))  # fills the bytecode cache
        if args.only in (None, "tenants"):
            tenants(url, root, args.tenants, args.rounds, args.trace)
        if args.only in (None, "fleet"):
            fleet(url, root, args.databases, args.rounds, args.jobs)


if __name__ == "__main__":
    main()
