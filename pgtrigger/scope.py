"""What a command's scope leaves out: schemas that do not exist, declared tables not found.

A schema filter naming no schema of the database, or a database without the declared tables,
must never read as "nothing to do". The CLI (``check``, ``ls``, every command given ``-s``)
and the Django management command use these helpers to say so.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence

from pgtrigger import engine
from pgtrigger.errors import UnknownSchemaError
from pgtrigger.schema_patterns import SchemaPattern

_SCHEMAS_SQL = (
    "SELECT current_database(),"
    " coalesce(array_to_json(array_agg(nspname::text ORDER BY nspname)), '[]')::text"
    " FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
)


def shown(*parts: str | None) -> str:
    """A (schema-qualified) name as messages show it: ``"billing"."invoice"``."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts if part)


def require_schemas(
    executors: engine.Executor | Sequence[engine.Executor], schemas: Sequence[str] | None
) -> None:
    """Raise :class:`UnknownSchemaError` naming each schema asked for that none of the
    databases has (one query per database; none without schemas). A tenant schema may live in
    one database of several: it must exist somewhere, not everywhere. Patterns are left to
    the engine, which matches them against the schemas its catalog query returns."""
    schemas = [s for s in schemas or () if not isinstance(s, SchemaPattern)]
    if not schemas:
        return
    several_databases = isinstance(executors, Sequence)
    found: list[tuple[str, list[str]]] = []
    for executor in executors if isinstance(executors, Sequence) else [executors]:
        (database, existing_json), *_ = executor.fetch(_SCHEMAS_SQL)
        found.append((database, list(json.loads(existing_json))))
    existing = [name for _, names in found for name in names]
    missing = [schema for schema in dict.fromkeys(schemas) if schema not in existing]
    if not missing:
        return
    several = len(missing) > 1
    databases = ", ".join(shown(database) for database, _ in found)
    message = (
        f"schema{'s' if several else ''} {', '.join(shown(s) for s in missing)}"
        f" {'do' if several else 'does'} not exist in database"
        f"{'s' if several_databases and len(found) > 1 else ''} {databases}"
    )
    hints = [
        (schema, close[0])
        for schema in missing
        if (close := difflib.get_close_matches(schema, sorted(set(existing)), n=1))
    ]
    if hints and not several:
        message += f"; did you mean {shown(hints[0][1])}?"
    elif hints:
        message += "; did you mean " + ", ".join(f"{shown(b)} for {shown(a)}" for a, b in hints)
        message += "?"
    raise UnknownSchemaError(message)


def missing_tables(statuses: Sequence[engine.Status]) -> list[str]:
    """Declared tables the database lacks, in order, each once: ``billing.invoice``, or
    ``post`` when no schema of the database has it."""
    names = [
        f"{row.schema}.{row.table}" if row.schema else row.table
        for row in statuses
        if row.target is not None and row.table_missing
    ]
    return list(dict.fromkeys(names))


def describe_missing_tables(statuses: Sequence[engine.Status]) -> str | None:
    """One line naming the declared tables not found, or None when every table was found."""
    rows = [row for row in statuses if row.target is not None and row.table_missing]
    if not rows:
        return None
    tables = list(dict.fromkeys(shown(row.schema, row.table) for row in rows))
    return (
        f"{len(tables)} declared table(s) not found in the database, so {len(rows)}"
        f" trigger(s) cannot be installed there: {', '.join(tables)}"
    )
