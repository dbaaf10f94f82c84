"""Per-row cost of v2 triggers on a Citus distributed table vs the same table kept local.

Usage::

    .venv/bin/python bench/citus_rows.py                 # starts a private cluster (root)
    .venv/bin/python bench/citus_rows.py --url postgresql://postgres@127.0.0.1:5441/postgres
    .venv/bin/python bench/citus_rows.py --quick         # 10,000 rows, 2 rounds

Without ``--url`` a Citus 13.2.2 cluster (coordinator + 2 workers, ``shared/citus/cluster.sh``)
is started on free ports in a temporary directory and deleted afterwards. With ``--url`` the
tables live in a schema of their own, dropped at the end.

Two tables with the same rows, ``post_local`` (a plain table on the coordinator) and
``post_dist`` (hash-distributed on ``id``, ``--shards`` shards over the workers); the same
statement runs on each, side by side in one run:

- ``protect``: ``Protect(operation=Update, condition=OLD.status == 'locked')``, false for every
  row (the WHEN clause only); ``UPDATE ... SET body = body || 'x'`` of every row;
- ``version``: BEFORE UPDATE ``NEW.version = NEW.version + 1`` (PL/pgSQL per row), same UPDATE;
- ``soft_delete``: ``SoftDelete(field="is_active")``: ``DELETE`` of a quarter of the rows;
- ``soft_delete_local``: the same with ``shard_local=True`` (the update goes through
  ``TG_RELID``, on Citus the shard placement itself, instead of the table's name).

Each with no trigger (baseline), with the v2 trigger running, and with it ignored
(``pgtrigger.ignore``, sent as Citus needs: standalone ``SET LOCAL`` statements that reach the
workers). Triggers are installed (committed) before their statements are timed, since an
install runs in Citus's sequential mode, which would make the timed statement sequential too.
Every timed statement runs in a transaction that is rolled back, followed by ``VACUUM``; the
figure is the median of ``--rounds`` rounds (variants interleaved in each round). Overhead per
row = (time with the trigger - baseline) / rows touched.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

import pgtrigger
import pgtrigger.sqla
from pgtrigger import engine
from pgtrigger.sqla import OLD, when

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = (ROOT.parent / "shared" / "citus" / "cluster.sh", Path("/work/shared/citus/cluster.sh"))
TABLES = ("post_local", "post_dist")


def _triggers(case: str) -> list[Any]:
    if case == "protect":
        return [
            pgtrigger.Protect(
                name="protect", operation=pgtrigger.Update, condition=when(OLD.status == "locked")
            )
        ]
    if case == "version":
        return [
            pgtrigger.Trigger(
                name="version",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                func="NEW.version = NEW.version + 1; RETURN NEW;",
            )
        ]
    return [
        pgtrigger.SoftDelete(name=case, field="is_active", shard_local=case == "soft_delete_local")
    ]


STATEMENTS = {
    "protect": ("UPDATE {t} SET body = body || 'x'", 1.0),
    "version": ("UPDATE {t} SET body = body || 'x'", 1.0),
    "soft_delete": ("DELETE FROM {t} WHERE id % 4 = 0", 0.25),
    "soft_delete_local": ("DELETE FROM {t} WHERE id % 4 = 0", 0.25),
}


def _declare(schema: str, table: str, case: str) -> tuple[sa.Table, list[engine.Target]]:
    md = sa.MetaData()
    t = sa.Table(
        table,
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.Text),
        sa.Column("version", sa.Integer),
        sa.Column("is_active", sa.Boolean),
        sa.Column("body", sa.Text),
        *_triggers(case),
        schema=schema,
    )
    targets = [
        engine.Target(trig.get_uri(t), trig.compile(t)) for trig in pgtrigger.sqla.triggers_of(t)
    ]
    return t, targets


def _free_base() -> int:
    for _ in range(200):
        base = 20000 + secrets.randbelow(20000)
        ok = True
        for port in range(base, base + 3):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise SystemExit("no free ports")


def _setup(conn: psycopg.Connection[Any], schema: str, rows: int, shards: int) -> None:
    conn.execute(f"CREATE SCHEMA {schema}")
    for table in TABLES:
        conn.execute(
            f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, status text, version int,"
            " is_active boolean, body text)"
        )
        conn.execute(
            f"INSERT INTO {schema}.{table} SELECT g, 'draft', 1, true, 'body'"
            f" FROM generate_series(1, {rows}) g"
        )
    conn.execute(f"SET citus.shard_count = {shards}")
    conn.execute(f"SELECT create_distributed_table('{schema}.post_dist', 'id')")
    conn.execute(f"VACUUM ANALYZE {schema}.post_local")
    conn.execute(f"VACUUM ANALYZE {schema}.post_dist")


def _timed(dsn: str, schema: str, table: str, case: str, ignored: str | None) -> float:
    statement = STATEMENTS[case][0].format(t=f"{schema}.{table}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("BEGIN")
        if ignored is not None:
            conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
            conn.execute(f"SET LOCAL pgtrigger.ignore = '{{{ignored}}}'")
        start = time.perf_counter()
        conn.execute(statement)
        elapsed = time.perf_counter() - start
        conn.execute("ROLLBACK")
        conn.execute(f"VACUUM {schema}.{table}")
    return elapsed


def run(dsn: str, rows: int, rounds: int, shards: int) -> None:
    schema = f"bench_{secrets.token_hex(3)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        _setup(conn, schema, rows, shards)
    try:
        print(
            f"{rows:,} rows per table; post_dist has {shards} shards over 2 workers;"
            f" median of {rounds} rounds; v2 triggers\n"
        )
        header = (
            f"{'case':<18} {'state':<8} {'local ms':>9} {'dist ms':>9}"
            f" {'local µs/row':>13} {'dist µs/row':>12} {'dist/local':>10}"
        )
        print(header)
        print("-" * len(header))
        for case in STATEMENTS:
            _measure_case(dsn, schema, case, rows, rounds)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _measure_case(dsn: str, schema: str, case: str, rows: int, rounds: int) -> None:
    touched = rows * STATEMENTS[case][1]
    declared = {table: _declare(schema, table, case) for table in TABLES}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for table in TABLES:  # baseline: no trigger
            times.setdefault((table, "none"), []).append(_timed(dsn, schema, table, case, None))
        for table, (_, targets) in declared.items():
            with psycopg.connect(dsn) as conn:
                engine.install(engine.DbapiExecutor(conn), targets)
                conn.commit()
            pgid = targets[0].compiled.pgid
            for state, ignored in (("runs", None), ("ignored", pgid)):
                times.setdefault((table, state), []).append(
                    _timed(dsn, schema, table, case, ignored)
                )
            with psycopg.connect(dsn) as conn:
                engine.uninstall(engine.DbapiExecutor(conn), targets)
                conn.commit()
    med = {key: statistics.median(values) for key, values in times.items()}
    for state in ("none", "runs", "ignored"):
        local, dist = med[("post_local", state)], med[("post_dist", state)]
        if state == "none":
            print(f"{case:<18} {'baseline':<8} {local * 1e3:9.1f} {dist * 1e3:9.1f}")
            continue
        over_local = (local - med[("post_local", "none")]) / touched * 1e6
        over_dist = (dist - med[("post_dist", "none")]) / touched * 1e6
        ratio = over_dist / over_local if over_local > 0 else float("nan")
        print(
            f"{'':<18} {state:<8} {local * 1e3:9.1f} {dist * 1e3:9.1f}"
            f" {over_local:13.2f} {over_dist:12.2f} {ratio:10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a Citus coordinator (default: start a private cluster)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 2 rounds")
    args = parser.parse_args()
    rows, rounds = (10_000, 2) if args.quick else (args.rows, args.rounds)
    if args.url:
        run(args.url, rows, rounds, args.shards)
        return
    script = next((s for s in SCRIPTS if s.is_file()), None)
    if script is None:
        raise SystemExit("shared/citus/cluster.sh not found: pass --url")
    base, port = Path(tempfile.mkdtemp(prefix="pgtrigger-citus-bench-")), _free_base()
    os.chmod(base, 0o755)
    env = {**os.environ, "CITUS_PORT": str(port)}
    try:
        subprocess.run(
            ["bash", str(script), "start", str(base)], env=env, check=True, capture_output=True
        )
        run(f"postgresql://postgres@127.0.0.1:{port}/postgres", rows, rounds, args.shards)
    finally:
        subprocess.run(["bash", str(script), "destroy", str(base)], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
