"""``batch_alter_table`` that re-creates a table keeps the table's pgtrigger triggers.

A batch that re-creates its table (``recreate="always"``; on PostgreSQL "auto" never does)
builds a new table, copies the rows, drops the old table and renames the new one: the old
table's triggers go with it, silently. So right before such a batch the definitions of the
table's ``pgtrigger_`` triggers (``pg_get_triggerdef``, hash comment, ``tgenabled``: disabled
or how it fires) are saved in a session setting, and right after it they are re-created on
the new table. Both steps are SQL that runs in the database, so ``alembic upgrade --sql``
scripts do the same. A trigger that cannot come back (it reads a column the batch dropped)
fails the migration with a message naming the table and the trigger. Functions survive the
drop and are reused.

Alembic has no public hook around a batch: ``install()`` wraps the private
``alembic.operations.batch.BatchOperationsImpl.flush`` (the same in Alembic 1.13 to 1.20;
the test suite runs the oldest and the newest).
"""

from __future__ import annotations

import functools
from typing import Any

from pgtrigger import sqltext

#: The session setting that carries the saved definitions from before the batch to after it.
SETTING = "pgtrigger.batch_triggers"


def _relation(schema: str | None, table: str) -> str:
    return f"{sqltext.string(sqltext.qualified(schema, table))}::regclass"


def save_sql(schema: str | None, table: str) -> str:
    """Save the definitions of the table's pgtrigger triggers (before a re-creating batch).

    They are read with ``search_path = pg_catalog``, so every name in them is qualified and
    they mean the same whatever the search path is when they run again.
    """
    return f"""-- pgtrigger: save the triggers of {sqltext.qualified(schema, table)} (batch_alter_table re-creates it)
DO $pgtrigger$
DECLARE
    rel regclass := {_relation(schema, table)};
    caller_path text := current_setting('search_path');
BEGIN
    PERFORM set_config('search_path', 'pg_catalog', true);
    PERFORM set_config({sqltext.string(SETTING)}, coalesce((
        SELECT json_agg(json_build_array(
                   t.tgname, pg_get_triggerdef(t.oid), obj_description(t.oid, 'pg_trigger'),
                   t.tgenabled::text) ORDER BY t.tgname)::text
          FROM pg_trigger t
         WHERE t.tgrelid = rel AND t.tgname LIKE 'pgtrigger\\_%'
           AND NOT t.tgisinternal AND t.tgparentid = 0), '[]'), false);
    PERFORM set_config('search_path', caller_path, true);
END
$pgtrigger$;"""


def restore_sql(schema: str | None, table: str) -> str:
    """Re-create the saved triggers that the table no longer has (after the batch)."""
    return f"""-- pgtrigger: re-create the triggers of {sqltext.qualified(schema, table)} after batch_alter_table
DO $pgtrigger$
DECLARE
    rel regclass := {_relation(schema, table)};
    saved json := coalesce(nullif(current_setting({sqltext.string(SETTING)}, true), ''), '[]');
    item json;
BEGIN
    FOR item IN SELECT value FROM json_array_elements(saved) LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_trigger WHERE tgrelid = rel AND tgname = item->>0);
        BEGIN
            EXECUTE item->>1;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'pgtrigger: batch_alter_table re-created table %, and its trigger % cannot be put back: %',
                rel, item->>0, SQLERRM
                USING HINT = 'Drop the trigger before the batch (op.drop_pgtrigger) and create '
                    'its new version after it, as autogenerate does around column changes.';
        END;
        IF item->>2 IS NOT NULL THEN
            EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', item->>0, rel, item->>2);
        END IF;
        IF item->>3 <> 'O' THEN  -- disabled, or firing under replication (REPLICA, ALWAYS)
            EXECUTE format('ALTER TABLE %s %s TRIGGER %I', rel, CASE item->>3
                WHEN 'R' THEN 'ENABLE REPLICA' WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'DISABLE' END,
                item->>0);
        END IF;
    END LOOP;
    PERFORM set_config({sqltext.string(SETTING)}, '', false);
END
$pgtrigger$;"""


_MARK = "_pgtrigger_keeps_triggers"


def install() -> None:
    """Make re-creating batches keep pgtrigger triggers (once per process; PostgreSQL only)."""
    from alembic.operations.batch import BatchOperationsImpl

    flush = BatchOperationsImpl.flush
    if getattr(flush, _MARK, False):
        return

    @functools.wraps(flush)
    def flush_keeping_triggers(self: Any) -> None:
        # Private Alembic API: _should_recreate() decides whether this batch re-creates.
        if self.impl.dialect.name != "postgresql" or not self._should_recreate():
            flush(self)
            return
        from alembic_ext.ops import run_sql

        run_sql(self.operations, save_sql(self.schema, self.table_name))
        flush(self)
        run_sql(self.operations, restore_sql(self.schema, self.table_name))

    setattr(flush_keeping_triggers, _MARK, True)
    BatchOperationsImpl.flush = flush_keeping_triggers  # type: ignore[method-assign]
