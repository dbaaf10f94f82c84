"""Helpers shared by the Django tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import Coroutine, Iterator
from typing import Any, NamedTuple, TypeVar

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction

T = TypeVar("T")

#: One ``manage.py pgtrigger ls`` line, colours taken out: ``STATUS ENABLED uri`` (columns
#: padded to align), as django-pgtrigger prints it.
LS_LINE = re.compile(
    r"^(?P<status>INSTALLED|OUTDATED|UNINSTALLED|PRUNE|UNALLOWED) +"
    r"(?P<enabled>ENABLED|REPLICA|ALWAYS|DISABLED|N/A) +(?P<uri>\S+)$"
)
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class LsLine(NamedTuple):
    status: str
    enabled: str
    uri: str


def manage(*args: str) -> str:
    """``manage.py ARGS`` in this process; its standard output."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ls(*args: str) -> dict[str, LsLine]:
    """``manage.py pgtrigger ls ARGS``, parsed (every line must match the documented format)."""
    lines = COLOUR.sub("", manage("pgtrigger", "ls", *args)).splitlines()
    parsed = {}
    for line in lines:
        match = LS_LINE.match(line)
        assert match, f"unexpected ls line: {line!r}"
        row = LsLine(**match.groupdict())
        assert row.uri not in parsed, f"duplicate ls line: {line!r}"
        parsed[row.uri] = row
    return parsed


def schema_statuses(*uris: str, schemas: list[str]) -> dict[str, tuple[str, str]]:
    """``{uri@schema: (status, enabled)}`` from ``pgtrigger.ls(schemas=...)``: one row per
    schema holding the table (``manage.py pgtrigger ls`` prints bare URIs, as upstream)."""
    import pgtrigger

    enabled = {True: "ENABLED", False: "DISABLED", None: "N/A"}
    return {
        f"{row.uri or f'{row.table}:{row.pgid}'}@{row.schema}": (
            row.status,
            enabled[None if row.status in ("UNINSTALLED", "UNALLOWED") else row.enabled],
        )
        for row in pgtrigger.ls(*uris, schemas=schemas)
    }


def statuses(*args: str) -> dict[str, tuple[str, str]]:
    """``{uri: (status, enabled)}`` from ``manage.py pgtrigger ls ARGS``."""
    return {key: (row.status, row.enabled) for key, row in ls(*args).items()}


@contextlib.contextmanager
def blocked(match: str = "pgtrigger: ", using: str = "default") -> Iterator[None]:
    """The block must fail with a database error matching ``match``; the transaction goes on."""
    with pytest.raises(DatabaseError, match=match), transaction.atomic(using=using):
        yield


def execute(sql: str, params: Any = None, using: str = "default") -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def fetch(sql: str, params: Any = None, using: str = "default") -> list[tuple[Any, ...]]:
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def scalar(sql: str, params: Any = None, using: str = "default") -> Any:
    return fetch(sql, params, using)[0][0]


def installed_triggers(using: str = "default") -> dict[tuple[str, str], bool]:
    """``{(table, trigger name): enabled}`` of every pgtrigger trigger, from the catalog."""
    rows = fetch(
        "SELECT c.relname, t.tgname, t.tgenabled <> 'D' FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE t.tgname LIKE 'pgtrigger\\_%%' AND NOT t.tgisinternal",
        using=using,
    )
    return {(table, name): enabled for table, name, enabled in rows}


def ignore_setting(using: str = "default") -> str | None:
    """What the connection's ``pgtrigger.ignore`` setting holds right now."""
    value: str | None = scalar("SELECT current_setting('pgtrigger.ignore', true)", using=using)
    return value


def close_connections() -> None:
    """Close and forget this thread's (this context's) Django connections."""
    for connection in connections.all(initialized_only=True):
        connection.close()
        del connections[connection.alias]


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a new event loop; close the connections its sync calls opened
    (they live in asgiref's thread and would otherwise outlive the test's databases)."""

    async def main() -> T:
        try:
            return await coroutine
        finally:
            await sync_to_async(close_connections)()

    return asyncio.run(main())
