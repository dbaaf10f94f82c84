"""Which installed pgtrigger triggers depend on given columns: one ``pg_depend`` query.

PostgreSQL records a dependency from a trigger on every column its ``WHEN`` clause reads and
every column of its ``UPDATE OF`` list, and then refuses to change the type of such a column
or drop it (``cannot alter type of a column used in a trigger definition``). A migration tool
asks here, for all the columns a migration changes at once, which triggers to drop before the
change and re-create after it. (Columns a trigger *function* reads are not recorded: PL/pgSQL
bodies are checked only when they run.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pgtrigger import sqltext
from pgtrigger.engine import Executor


@dataclass(frozen=True)
class ColumnDependency:
    """Trigger ``pgid`` on ``schema.table`` reads ``column`` (its WHEN clause or UPDATE OF)."""

    schema: str
    table: str
    column: str
    pgid: str


def _value(text: str | None) -> str:
    return "NULL::text" if text is None else f"{sqltext.string(text)}::text"


def column_dependents_sql(columns: Iterable[tuple[str | None, str, str]]) -> str | None:
    """The query behind :func:`column_dependents` (None when there is nothing to ask)."""
    rows = sorted(set(columns), key=lambda c: (c[0] or "", c[1], c[2]))
    if not rows:
        return None
    values = ",\n       ".join(
        f"({_value(schema)}, {_value(table)}, {_value(column)})" for schema, table, column in rows
    )
    # A table without a schema resolves through the search path, as the migration's own SQL
    # would; to_regclass gives NULL (no row) for a table that does not exist.
    return f"""
SELECT DISTINCT n.nspname, c.relname, a.attname, t.tgname
  FROM (VALUES {values}) AS asked(schema_name, table_name, column_name)
  JOIN pg_class c ON c.oid = to_regclass(
           coalesce(quote_ident(asked.schema_name) || '.', '') || quote_ident(asked.table_name))
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a
    ON a.attrelid = c.oid AND a.attname = asked.column_name AND NOT a.attisdropped
  JOIN pg_depend d
    ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
   AND d.refobjsubid = a.attnum AND d.classid = 'pg_trigger'::regclass
  JOIN pg_trigger t ON t.oid = d.objid
 WHERE t.tgname LIKE 'pgtrigger\\_%' AND NOT t.tgisinternal AND t.tgparentid = 0
 ORDER BY 1, 2, 3, 4
"""


def column_dependents(
    executor: Executor, columns: Iterable[tuple[str | None, str, str]]
) -> list[ColumnDependency]:
    """The pgtrigger triggers that depend on any of ``columns`` (``(schema, table, column)``,
    schema None for the search path), in one query; no query when ``columns`` is empty.

    Partition clones are left out: they follow their parent trigger.
    """
    sql = column_dependents_sql(columns)
    if sql is None:
        return []
    return [ColumnDependency(*row) for row in executor.fetch(sql)]
