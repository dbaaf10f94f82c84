"""Autogenerate: declared triggers vs installed ``pgtrigger_`` triggers, by fingerprint.

One catalog query per run, whatever the number of triggers. Creates come after the tables
(so triggers of a table created in the same revision follow its ``create_table``); drops come
first (so triggers of a dropped table go before it, functions included).
"""

from __future__ import annotations

import logging
from typing import Any

from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import UpgradeOps
from alembic.util import PriorityDispatchResult
from sqlalchemy import MetaData, Table

from alembic_ext.ops import CreatePgTriggerOp, DropPgTriggerOp, ReplacePgTriggerOp
from alembic_ext.snapshot import Snapshot
from pgtrigger import engine
from pgtrigger.sqla.declare import triggers_of
from pgtrigger.sqla.executor import ConnectionExecutor

LOGGER = logging.getLogger("alembic_ext")
OBJECT_TYPE = "pgtrigger"


def _metadatas(autogen_context: AutogenContext) -> list[MetaData]:
    target = autogen_context.metadata
    if target is None:
        return []
    if isinstance(target, MetaData):
        return [target]
    return list(target)


def _table_filter(autogen_context: AutogenContext, table: Table, reflected: bool) -> bool:
    """``include_object`` for the trigger's table: excluded tables keep their triggers."""
    run: Any = autogen_context.run_object_filters
    return bool(run(table, table.name, "table", reflected, None))


def _object_filter(autogen_context: AutogenContext, obj: Any, name: str, reflected: bool) -> bool:
    """``include_object`` sees our triggers with type "pgtrigger" (Alembic's types are SQLA's)."""
    run: Any = autogen_context.run_object_filters
    return bool(run(obj, name, OBJECT_TYPE, reflected, None))


def snapshot(installed: engine.InstalledTrigger, default_schema: str | None) -> Snapshot:
    return Snapshot(
        pgid=installed.pgid,
        table_name=installed.table,
        schema=None if installed.schema == default_schema else installed.schema,
        hash=installed.hash,
        install_sql=installed.restore_sql(),
        uninstall_sql=installed.drop_sql(),
        is_constraint=installed.is_constraint,
    )


def trigger_name(pgid: str) -> str:
    """The trigger name inside a pgid (``pgtrigger_{name}_{5 to 12 hex}``), as stored."""
    body = pgid[len("pgtrigger_") :] if pgid.startswith("pgtrigger_") else pgid
    name, sep, digest = body.rpartition("_")
    if sep and name and 5 <= len(digest) <= 12 and all(c in "0123456789abcdef" for c in digest):
        return name
    return body


def compare_triggers(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: set[str | None]
) -> PriorityDispatchResult:
    connection = autogen_context.connection
    if connection is None or connection.dialect.name != "postgresql":
        return PriorityDispatchResult.CONTINUE
    default_schema = connection.dialect.default_schema_name
    wanted = {default_schema if s is None else s for s in schemas}

    declared: dict[tuple[str | None, str, str], tuple[str, Any, Table]] = {}
    # Declared triggers the user's filters exclude: their installed copies are left alone.
    excluded: set[tuple[str | None, str, str]] = set()
    excluded_tables: set[tuple[str | None, str]] = set()
    for metadata in _metadatas(autogen_context):
        for table in metadata.sorted_tables:
            schema = table.schema or default_schema
            if schema not in wanted:
                continue
            if not autogen_context.run_name_filters(
                table.name, "table", {"schema_name": table.schema}
            ) or not _table_filter(autogen_context, table, False):
                excluded_tables.add((schema, table.name))
                continue
            for trigger in triggers_of(table):
                compiled = trigger.compile(table)
                uri = trigger.get_uri(table)
                key = (schema, table.name, compiled.pgid)
                if _object_filter(autogen_context, compiled, uri, False):
                    declared[key] = (uri, compiled, table)
                else:
                    excluded.add(key)

    catalog = engine.read_catalog(ConnectionExecutor(connection), definitions=True)
    drops: list[Any] = []
    creates: list[Any] = []
    for trig in catalog.triggers:
        key = (trig.schema, trig.table, trig.pgid)
        if (
            trig.schema not in wanted
            or key in excluded
            or (trig.schema, trig.table) in excluded_tables
        ):
            continue
        reflected_schema = None if trig.schema == default_schema else trig.schema
        if not autogen_context.run_name_filters(
            trig.table, "table", {"schema_name": reflected_schema}
        ) or not _table_filter(
            autogen_context, Table(trig.table, MetaData(), schema=reflected_schema), True
        ):
            continue
        found = declared.pop(key, None)
        old = snapshot(trig, default_schema)
        if found is None:
            uri = f"{_label(old)}:{trigger_name(trig.pgid)}"
            if _object_filter(autogen_context, old, uri, True):
                LOGGER.info("Detected removed trigger %s (%s)", uri, trig.pgid)
                drops.append(DropPgTriggerOp(uri, old))
        elif trig.hash != found[1].hash:
            LOGGER.info("Detected changed trigger %s", found[0])
            creates.append(ReplacePgTriggerOp(found[0], found[1], old))
    for uri, compiled, _table in declared.values():
        LOGGER.info("Detected added trigger %s", uri)
        creates.append(CreatePgTriggerOp(uri, compiled))
    upgrade_ops.ops[:0] = drops
    upgrade_ops.ops.extend(creates)
    return PriorityDispatchResult.CONTINUE


def _label(snap: Snapshot) -> str:
    return f"{snap.schema}.{snap.table_name}" if snap.schema else snap.table_name
