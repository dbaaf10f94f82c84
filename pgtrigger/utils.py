"""django-pgtrigger's ``pgtrigger.utils``: helpers third-party code imports by this path.

``quote`` and ``AttrDict`` need nothing; the rest reads Django's settings and connections,
imported when called, so the module imports without Django configured.
"""

from __future__ import annotations

import importlib
from typing import Any

from pgtrigger import sqltext


def _driver_version() -> tuple[int, ...]:
    """The installed psycopg (3, preferred) or psycopg2 version as a tuple of ints."""
    for name in ("psycopg", "psycopg2"):
        try:
            driver = importlib.import_module(name)
        except ImportError:
            continue
        text = str(driver.__version__).split(" ", 1)[0]
        return tuple(int(part) for part in text.split(".") if part.isdigit())
    return ()


#: The psycopg version (``(3, 2, 1)``), or ``()`` when neither psycopg nor psycopg2 is installed.
psycopg_version: tuple[int, ...] = _driver_version()
#: 3 with psycopg, 2 with psycopg2 (0 without a driver).
psycopg_maj_version: int = psycopg_version[0] if psycopg_version else 0


class AttrDict(dict[str, Any]):
    """A dict whose keys also read as attributes (``context.meta`` in ``Func`` templates)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__ = self


def connection(database: str | None = None) -> Any:
    """The Django connection of ``database`` (default: the default alias)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    return connections[database or DEFAULT_DB_ALIAS]


def pg_maj_version(cursor: Any) -> int:
    """The major PostgreSQL version of the server behind a DB-API (or Django) cursor."""
    dbapi = cursor.connection
    version = getattr(dbapi, "server_version", None)
    if version is None:
        version = dbapi.info.server_version
    return int(version) // 10000


def is_postgres(database: str | None = None) -> bool:
    return bool(connection(database).vendor == "postgresql")


def postgres_databases(databases: list[str] | None = None) -> list[str]:
    """The PostgreSQL aliases among ``databases`` (default: every configured database)."""
    from django.conf import settings

    return [alias for alias in (databases or list(settings.DATABASES)) if is_postgres(alias)]


def exec_sql(sql: str, database: str | None = None, fetchall: bool = False) -> Any:
    """Run ``sql`` (no parameters) on a PostgreSQL alias; the rows when ``fetchall``."""
    if not is_postgres(database):
        return None
    with connection(database).cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if fetchall else None


def quote(label: str, char: str = '"') -> str:
    """Wrap ``label`` in ``char`` unless it already starts or ends with it.

    django-pgtrigger's quoting of ``db_table`` values (``schema"."table`` relies on it). New
    code should quote identifiers with :func:`pgtrigger.sqltext.ident`.
    """
    if char == '"':
        return sqltext.legacy_quote(label)
    return label if label.startswith(char) or label.endswith(char) else f"{char}{label}{char}"


def render_uninstall(table: str, trigger_pgid: str) -> str:
    """``DROP TRIGGER IF EXISTS`` for a trigger id on a ``db_table``."""
    return f"DROP TRIGGER IF EXISTS {sqltext.legacy_ident(trigger_pgid)} ON {quote(table)};"
