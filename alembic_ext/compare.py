"""Autogenerate: declared triggers vs installed ``pgtrigger_`` triggers, by fingerprint.

One catalog query per run, whatever the number of triggers, and one more (``pg_depend``) only
when the revision retypes, renames or drops columns. Creates come after the tables (so
triggers of a table created in the same revision follow its ``create_table``); drops come
first (so triggers of a dropped table go before it, functions included); triggers that depend
on a changed column are dropped right before the change and re-created right after it
(``alembic_ext.columns``).

What it finds is logged through Alembic's logger (``alembic.autogenerate.pgtrigger``), so the
default ``alembic.ini`` logging shows ``Detected added trigger 'post:lock_published'``.
"""

from __future__ import annotations

import logging
from typing import Any

from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrateOperation, UpgradeOps
from sqlalchemy import MetaData, Table

from alembic_ext.columns import Key, Lift, changed_columns, lift_triggers
from alembic_ext.ops import CreatePgTriggerOp, DropPgTriggerOp, ReplacePgTriggerOp
from alembic_ext.plugin import plugin_system_works
from alembic_ext.snapshot import Snapshot
from pgtrigger import engine
from pgtrigger.dependents import column_dependents
from pgtrigger.sqla.declare import triggers_of
from pgtrigger.sqla.executor import ConnectionExecutor

LOGGER = logging.getLogger("alembic.autogenerate.pgtrigger")
OBJECT_TYPE = "pgtrigger"


def _metadatas(autogen_context: AutogenContext) -> list[MetaData]:
    target = autogen_context.metadata
    if target is None:
        return []
    if isinstance(target, MetaData):
        return [target]
    return list(target)


def _table_filter(
    autogen_context: AutogenContext, table: Table, reflected: bool, compare_to: Table | None
) -> bool:
    """``include_object`` for the trigger's table: excluded tables keep their triggers.

    An installed trigger's table is passed as reflected, with the metadata's table (if any)
    as ``compare_to``, as Alembic passes a table it found in both places: the common recipe
    ``not (type_ == "table" and reflected and compare_to is None)`` keeps it.
    """
    run: Any = autogen_context.run_object_filters
    return bool(run(table, table.name, "table", reflected, compare_to))


def _object_filter(
    autogen_context: AutogenContext, obj: Any, name: str, reflected: bool, compare_to: Any
) -> bool:
    """``include_object`` sees our triggers with type "pgtrigger" (Alembic's types are SQLA's):
    a declared one as a compiled trigger (``compare_to``: the installed ``Snapshot``), an
    installed one as a ``Snapshot`` (``compare_to``: the compiled trigger), named by URI."""
    run: Any = autogen_context.run_object_filters
    return bool(run(obj, name, OBJECT_TYPE, reflected, compare_to))


def warn_if_alembic_comparisons_off(autogen_context: AutogenContext) -> None:
    """``autogenerate_plugins=["pgtrigger"]`` alone turns Alembic's own comparisons off, and
    with them the per-schema pass that compares triggers (Alembic 1.20+; older releases
    ignore the option)."""
    context = autogen_context.migration_context
    plugins = context.opts.get("autogenerate_plugins") if context is not None else None
    if (
        plugins is not None
        and plugin_system_works()
        and not any(str(name).startswith("alembic.autogenerate") for name in plugins)
    ):
        LOGGER.warning(
            "autogenerate_plugins=%r leaves out Alembic's own comparisons (schemas, tables,"
            " columns...), which triggers are compared through: nothing is compared."
            ' Keep "alembic.autogenerate.*" in the list',
            list(plugins),
        )


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
) -> None:
    # Returns None: Alembic 1.18+ reads anything but PriorityDispatchResult.STOP as CONTINUE.
    connection = autogen_context.connection
    if connection is None or connection.dialect.name != "postgresql":
        return
    # Set once connected (autogenerate always is); "public" only satisfies the type checker.
    default_schema: str = connection.dialect.default_schema_name or "public"
    wanted = {default_schema if s is None else s for s in schemas}

    executor = ConnectionExecutor(connection)
    catalog = engine.read_catalog(executor, definitions=True)
    installed = {(t.schema, t.table, t.pgid): t for t in catalog.triggers}
    snapshots: dict[Key, Snapshot] = {}

    def snapshot_of(key: Key) -> Snapshot:
        if key not in snapshots:
            snapshots[key] = snapshot(installed[key], default_schema)
        return snapshots[key]

    tables: dict[tuple[str, str], Table] = {}
    declared: dict[Key, tuple[str, Any]] = {}
    uris: dict[Key, str] = {}
    # Declared triggers the user's filters exclude: their installed copies are left alone.
    excluded: set[Key] = set()
    excluded_tables: set[tuple[str, str]] = set()
    for metadata in _metadatas(autogen_context):
        for table in metadata.sorted_tables:
            schema = table.schema or default_schema
            if schema not in wanted:
                continue
            tables[(schema, table.name)] = table
            if not autogen_context.run_name_filters(
                table.name, "table", {"schema_name": table.schema}
            ) or not _table_filter(autogen_context, table, False, None):
                excluded_tables.add((schema, table.name))
                continue
            for trigger in triggers_of(table):
                compiled = trigger.compile(table)
                uri = trigger.get_uri(table)
                key = (schema, table.name, compiled.pgid)
                uris[key] = uri
                previous = snapshot_of(key) if key in installed else None
                if _object_filter(autogen_context, compiled, uri, False, previous):
                    declared[key] = (uri, compiled)
                else:
                    excluded.add(key)

    drops: list[DropPgTriggerOp] = []
    dropped: set[Key] = set()
    later: list[MigrateOperation] = []
    replaces: dict[Key, ReplacePgTriggerOp] = {}
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
            autogen_context,
            Table(trig.table, MetaData(), schema=reflected_schema),
            True,
            tables.get((trig.schema, trig.table)),
        ):
            continue
        found = declared.pop(key, None)
        if found is None:
            old = snapshot_of(key)
            uri = f"{_label(old)}:{trigger_name(trig.pgid)}"
            if _object_filter(autogen_context, old, uri, True, None):
                LOGGER.info("Detected removed trigger %r (%s)", uri, trig.pgid)
                drops.append(DropPgTriggerOp(uri, old))
                dropped.add(key)
        elif trig.hash != found[1].hash:
            LOGGER.info("Detected changed trigger %r", found[0])
            replace = ReplacePgTriggerOp(found[0], found[1], snapshot_of(key))
            replaces[key] = replace
            later.append(replace)
    for uri, compiled in declared.values():
        LOGGER.info("Detected added trigger %r", uri)
        later.append(CreatePgTriggerOp(uri, compiled))

    # Triggers that depend on a column the revision changes: around that change.
    split: set[int] = set()  # id() of the replace ops split in two

    def lift_for(key: Key) -> Lift | None:
        if key in dropped or key not in installed:
            return None  # removed by this revision: dropped before everything already
        replace = replaces.get(key)
        if replace is not None:
            split.add(id(replace))
            return Lift(
                DropPgTriggerOp(replace.uri, replace.previous),
                CreatePgTriggerOp(replace.uri, replace.trigger),
            )
        old = snapshot_of(key)
        uri = uris.get(key) or f"{_label(old)}:{trigger_name(old.pgid)}"
        LOGGER.info(
            "Detected column change under trigger %r: dropped and re-created around it", uri
        )
        return Lift(DropPgTriggerOp(uri, old), CreatePgTriggerOp(uri, old))

    changed = changed_columns(upgrade_ops, default_schema)
    if changed:
        lift_triggers(upgrade_ops, default_schema, column_dependents(executor, changed), lift_for)
    upgrade_ops.ops[:0] = drops
    upgrade_ops.ops.extend(op for op in later if id(op) not in split)


def _label(snap: Snapshot) -> str:
    return f"{snap.schema}.{snap.table_name}" if snap.schema else snap.table_name
