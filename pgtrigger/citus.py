"""What pgtrigger does differently on a Citus coordinator, in one place.

Citus forwards DDL on distributed tables to every shard, but only from a query string that
holds one statement, and it never forwards ``set_config``; a ``SET LOCAL`` standing alone is
forwarded when ``citus.propagate_set_commands = 'local'``. So on Citus:

- DDL goes one statement per round trip (``statements``), in sequential mode (functions may
  not be replaced or dropped after a parallel multi-shard command in the same transaction);
- runtime state goes as standalone ``SET LOCAL`` statements (``state_statements``);
- ``ls``/``check`` read, from the coordinator, which shard placements carry each trigger
  (``SHARDS_SQL``): a shard missing its trigger, or disabled differently, is drift.

Whether a connection is on Citus is asked once per DB-API connection (``is_citus``).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgtrigger import sqltext

#: True when the database has the citus extension (on a coordinator or a worker).
DETECT_SQL = (
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension"
    " WHERE extname OPERATOR(pg_catalog.=) 'citus'::pg_catalog.name)"
)

#: Functions may be replaced or dropped in the transaction only in sequential mode: set it
#: first (it is local to the coordinator's transaction).
SEQUENTIAL = "SET LOCAL citus.multi_shard_modify_mode = 'sequential'"

#: What to do when Citus refused because the transaction already ran parallel shard work.
PARALLEL_HINT = (
    "this transaction already ran multi-shard work in parallel (create_distributed_table, say):"
    " install the triggers before distributing the table, in another transaction, or run"
    f" {SEQUENTIAL} first"
)

#: Makes the ``SET LOCAL`` statements after it reach the workers (as statements of their own).
PROPAGATE = "SET LOCAL citus.propagate_set_commands = 'local'"

#: The setting without which Citus refuses triggers on distributed and reference tables.
UNSAFE_TRIGGERS = "citus.enable_unsafe_triggers"

_known: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def is_citus(dbapi_connection: Any) -> bool:
    """Is this DB-API connection's database a Citus one? One query per connection, remembered.

    On psycopg 3 outside a transaction the query goes straight to libpq, so no ``BEGIN`` is
    sent for it; elsewhere a cursor runs it, leaving the transaction state as it was.
    """
    key = _key(dbapi_connection)
    found = _known.get(key)
    if found is None:
        found = _known[key] = _ask(dbapi_connection)
    return found


def _key(dbapi_connection: Any) -> Any:
    """What to remember the answer by: the driver's own connection behind SQLAlchemy's async
    adapters (which take no weak reference), else the connection itself."""
    try:
        weakref.ref(dbapi_connection)
    except TypeError:
        return dbapi_connection._connection
    return dbapi_connection


def _ask(dbapi_connection: Any) -> bool:
    """Run ``DETECT_SQL``, leaving the connection's transaction state as it was."""
    module = type(dbapi_connection).__module__
    if module.startswith("psycopg.") or module == "psycopg":
        import psycopg

        if (
            isinstance(dbapi_connection, psycopg.Connection)
            and dbapi_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and getattr(dbapi_connection, "_pipeline", None) is None
        ):  # straight on libpq: psycopg sends no BEGIN for it
            with dbapi_connection.lock:
                result = dbapi_connection.pgconn.exec_(DETECT_SQL.encode())
            if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
                raise psycopg.errors.error_from_result(result)
            return bool(result.get_value(0, 0) == b"t")
    idle = _idle(dbapi_connection)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(DETECT_SQL)
        row = cursor.fetchone()
    finally:
        cursor.close()
    if idle and not _idle(dbapi_connection):  # the driver opened a transaction for it
        dbapi_connection.rollback()
    return bool(row and row[0])


def _idle(dbapi_connection: Any) -> bool:
    """Outside a transaction (psycopg2, psycopg 3, SQLAlchemy's asyncpg adapter)?"""
    asyncpg_connection = getattr(dbapi_connection, "_connection", None)
    in_transaction = getattr(asyncpg_connection, "is_in_transaction", None)
    if in_transaction is not None:  # the adapter may hold a transaction it opened lazily
        return not in_transaction() and getattr(dbapi_connection, "_transaction", None) is None
    getter = getattr(dbapi_connection, "get_transaction_status", None)  # psycopg2
    if getter is not None:
        return bool(getter() == 0)
    status = getattr(getattr(dbapi_connection, "info", None), "transaction_status", None)
    return status is None or getattr(status, "name", "") == "IDLE"


# -- the coordinator's view of shards ---------------------------------------------------------
_EQ = "OPERATOR(pg_catalog.=)"
_NE = "OPERATOR(pg_catalog.<>)"

#: What each node holds: every pgtrigger trigger, on shards and shell tables alike.
_NODE_COMMAND = (
    "SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array("
    "n.nspname, c.relname, t.tgname, t.tgenabled"
    ")), '[]') FROM pg_catalog.pg_trigger t"
    " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
    " WHERE t.tgname OPERATOR(pg_catalog.~~) 'pgtrigger\\_%' AND NOT t.tgisinternal"
)

#: One query on the coordinator: the setting, the Citus tables, every shard placement of the
#: tables that carry pgtrigger triggers, and what each node holds.
SHARDS_SQL = f"""
SELECT pg_catalog.current_setting('{UNSAFE_TRIGGERS}', true),
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                   n.nspname, c.relname, p.partmethod, p.repmodel, p.colocationid)), '[]')
          FROM pg_catalog.pg_dist_partition p
          JOIN pg_catalog.pg_class c ON c.oid {_EQ} p.logicalrelid
          JOIN pg_catalog.pg_namespace n ON n.oid {_EQ} c.relnamespace)::pg_catalog.text,
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                   n.nspname, c.relname, s.shardid, d.nodeid,
                   d.nodename OPERATOR(pg_catalog.||) ':'
                   OPERATOR(pg_catalog.||) d.nodeport::pg_catalog.text)), '[]')
          FROM pg_catalog.pg_dist_shard s
          JOIN pg_catalog.pg_dist_placement pl ON pl.shardid {_EQ} s.shardid
          JOIN pg_catalog.pg_dist_node d ON d.groupid {_EQ} pl.groupid
               AND d.noderole {_EQ} 'primary'::pg_catalog.noderole AND d.isactive
          JOIN pg_catalog.pg_class c ON c.oid {_EQ} s.logicalrelid
          JOIN pg_catalog.pg_namespace n ON n.oid {_EQ} c.relnamespace
         WHERE s.logicalrelid {_EQ} ANY (SELECT tgrelid FROM pg_catalog.pg_trigger
                 WHERE tgname OPERATOR(pg_catalog.~~) 'pgtrigger\\_%'))::pg_catalog.text,
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                   r.nodeid, r.success, r.result)), '[]')
          FROM pg_catalog.run_command_on_all_nodes({sqltext.string(_NODE_COMMAND)}) r
       )::pg_catalog.text
"""

_NAME_MAX = 63  # NAMEDATALEN - 1: Citus shortens longer shard names with a hash


@dataclass(frozen=True)
class Shards:
    """The coordinator's view of a Citus cluster, as ``SHARDS_SQL`` read it."""

    unsafe_triggers: bool
    #: (schema, table) -> "distributed", "reference", "single-shard" or "local".
    tables: dict[tuple[str, str], str]
    #: (schema, table, pgid) -> what differs on the shards (absent: nothing).
    drift: dict[tuple[str, str, str], str]

    def kind(self, schema: str | None, table: str) -> str | None:
        return None if schema is None else self.tables.get((schema, table))


def _kind(partmethod: str, repmodel: str, colocationid: int) -> str:
    if partmethod == "n":
        if repmodel == "t":
            return "reference"
        return "local" if not colocationid else "single-shard"
    return "distributed"


def read_shards(
    fetch: Callable[[str], list[tuple[Any, ...]]],
    triggers: list[tuple[str, str, str, str]],
) -> Shards:
    """Read the cluster (one query) and compare each coordinator trigger
    ``(schema, table, pgid, tgenabled)`` with its copies on the shard placements."""
    setting, tables_json, placements_json, nodes_json = fetch(SHARDS_SQL)[0]
    tables = {(r[0], r[1]): _kind(r[2], r[3], int(r[4])) for r in json.loads(tables_json)}
    held: dict[int, dict[tuple[str, str, str], str]] = {}
    failures: dict[int, str] = {}
    for node, ok, result in json.loads(nodes_json):
        if ok:
            held[node] = {(r[0], r[1], r[2]): str(r[3]) for r in json.loads(result)}
        else:
            failures[node] = str(result)
    placements: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for schema, table, shard, node, where in json.loads(placements_json):
        placements.setdefault((schema, table), []).append((int(shard), int(node), where))
    drift = {}
    for schema, table, pgid, code in triggers:
        problems = _shard_problems(
            placements.get((schema, table), []), held, failures, schema, table, pgid, code
        )
        if problems:
            drift[(schema, table, pgid)] = problems
    return Shards(setting == "on", tables, drift)


def _shard_problems(
    placements: list[tuple[int, int, str]],
    held: dict[int, dict[tuple[str, str, str], str]],
    failures: dict[int, str],
    schema: str,
    table: str,
    pgid: str,
    code: str,
) -> str | None:
    missing, toggled, unread = [], [], []
    for shard, node, where in sorted(placements):
        shard_table, shard_trigger = f"{table}_{shard}", f"{pgid}_{shard}"
        if len(shard_table.encode()) > _NAME_MAX or len(shard_trigger.encode()) > _NAME_MAX:
            continue  # Citus shortened the names: not checked
        if node in failures:
            unread.append(where)
            continue
        found = held.get(node, {}).get((schema, shard_table, shard_trigger))
        if found is None:
            missing.append(f"{shard_table} on {where}")
        elif found != code:
            toggled.append(f"{shard_table} on {where} ({_STATES.get(found, found)})")
    parts = []
    if missing:
        parts.append(f"{len(missing)} shard(s) lack it ({_few(missing)})")
    if toggled:
        state = _STATES.get(code, code)
        parts.append(
            f"{len(toggled)} shard(s) differ from the coordinator's {state} ({_few(toggled)})"
        )
    if unread:
        parts.append(f"node(s) {_few(sorted(set(unread)))} could not be read")
    return "; ".join(parts) or None


#: ``pg_trigger.tgenabled`` in words.
_STATES = {"O": "enabled", "D": "disabled", "R": "enabled replica", "A": "enabled always"}


def _few(items: list[str]) -> str:
    return ", ".join(items[:3]) + (f", and {len(items) - 3} more" if len(items) > 3 else "")
