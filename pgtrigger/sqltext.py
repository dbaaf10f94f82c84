"""The one place where SQL identifiers and literals are quoted.

Everything pgtrigger sends to Postgres is built from these helpers, so user strings never
change the meaning of the SQL around them. Runtime values travel as bind parameters; only
trigger definitions (compiled ahead of time, with no connection) embed literals.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import re
import uuid
from collections.abc import Iterable
from typing import Any

from pgtrigger.errors import CompileError

#: Postgres truncates identifiers longer than this many bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63

_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class Sql:
    """A trusted SQL expression, rendered verbatim (e.g. ``Sql("NOW()")`` as a SoftDelete value).

    Use it only for SQL written by the developer, never for data from users.
    """

    __slots__ = ("sql",)

    def __init__(self, sql: str) -> None:
        if not isinstance(sql, str) or not sql.strip():
            raise CompileError("pgtrigger.Sql needs a non-empty SQL string")
        self.sql = sql

    def __repr__(self) -> str:
        return f"Sql({self.sql!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sql) and other.sql == self.sql

    def __hash__(self) -> int:
        return hash(("Sql", self.sql))


def check_text(value: str, what: str) -> str:
    """Reject text Postgres cannot store (NUL) with an error that says where it came from."""
    if "\x00" in value:
        raise CompileError(f"{what} contains a NUL character, which Postgres cannot store")
    return value


def ident(name: str, what: str = "identifier") -> str:
    """Quote an identifier: always double-quoted, inner quotes doubled."""
    if not isinstance(name, str) or not name:
        raise CompileError(f"{what} must be a non-empty string, got {name!r}")
    check_text(name, f"{what} {name!r}")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise CompileError(
            f"{what} {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes;"
            " Postgres would silently truncate it"
        )
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, name: str, what: str = "table") -> str:
    """``"schema"."name"``, or ``"name"`` when the schema comes from the search path."""
    if schema:
        return f"{ident(schema, f'{what} schema')}.{ident(name, what)}"
    return ident(name, what)


def legacy_ident(name: str) -> str:
    """An identifier as django-pgtrigger's v1 text writes it: bare when bare is safe.

    Names that need quoting could never be installed by django-pgtrigger, so quoting them
    keeps v1 text identical wherever it worked and correct where it did not.
    """
    return name if _PLAIN_IDENT.match(name) else ident(name)


def legacy_quote(label: str) -> str:
    """django-pgtrigger's ``utils.quote``: wrap in double quotes unless already quoted."""
    if label.startswith('"') or label.endswith('"'):
        return label
    return f'"{label}"'


def string(value: str) -> str:
    """A string literal that means the same whatever ``standard_conforming_strings`` says.

    Spelled as psycopg 3 spells it (`` E'...'`` when there is a backslash), so conditions
    compiled here read exactly like the ones django-pgtrigger compiled through psycopg.
    """
    check_text(value, f"string value {value!r}")
    quoted = value.replace("'", "''")
    if "\\" in quoted:
        return " E'" + quoted.replace("\\", "\\\\") + "'"
    return f"'{quoted}'"


def _signed(text: str, negative: bool) -> str:
    # A leading space keeps "- -5" or "--5" from ever reading as a comment.
    return f" {text}" if negative else text


def literal(value: Any) -> str:
    """Render a Python value as a SQL literal, typed where Postgres would otherwise guess."""
    if isinstance(value, Sql):
        return value.sql
    if value is None:
        return "NULL"
    if isinstance(value, enum.Enum):
        return literal(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _signed(str(value), value < 0)
    if isinstance(value, float):
        if math.isnan(value):
            return "'NaN'::float8"
        if math.isinf(value):
            return "'Infinity'::float8" if value > 0 else "'-Infinity'::float8"
        return _signed(repr(value), value < 0)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            if value.is_nan():
                return "'NaN'::numeric"
            return "'Infinity'::numeric" if value > 0 else "'-Infinity'::numeric"
        return _signed(str(value), value.is_signed())
    if isinstance(value, str):
        return string(value)
    if isinstance(value, dt.datetime):
        cast = "timestamptz" if value.utcoffset() is not None else "timestamp"
        return f"'{value.isoformat(sep=' ')}'::{cast}"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, dt.time):
        cast = "timetz" if value.utcoffset() is not None else "time"
        return f"'{value.isoformat()}'::{cast}"
    if isinstance(value, dt.timedelta):
        # Python's own spelling ("-1 day, 0:00:05"), which Postgres reads with the same meaning.
        return f"'{str(value).replace(',', '')}'::interval"
    if isinstance(value, uuid.UUID):
        return f"'{value.hex}'::uuid"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"E'\\\\x{bytes(value).hex()}'::bytea"
    if isinstance(value, (list, tuple)):
        return "ARRAY[" + ", ".join(literal(item) for item in value) + "]"
    raise CompileError(f"Cannot render {type(value).__name__} value {value!r} as a SQL literal")


def literal_list(values: Iterable[Any]) -> str:
    """``(a, b, c)`` for ``IN``."""
    return "(" + ", ".join(literal(v) for v in values) + ")"


def dollar_quote(body: str) -> str:
    """Dollar-quote a function body with a tag the body does not contain."""
    check_text(body, "trigger function body")
    tag = "pgtrigger"
    n = 0
    while f"${tag}$" in body:
        n += 1
        tag = f"pgtrigger{n}"
    return f"${tag}$\n{body}\n${tag}$"


def like_escape(value: str) -> str:
    """Escape LIKE wildcards so a value is matched literally."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_array(items: Iterable[str]) -> str:
    """A Postgres text-array value (not a literal) for bind parameters: ``{a,b}``."""
    parts = []
    for item in items:
        check_text(item, "array element")
        parts.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


_QUOTED_OR_ROWREF = re.compile(
    r"""(?P<quoted>E'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*")"""
    r"""|(?<![\w."$])(?P<alias>OLD|NEW)\s*\.""",
    re.IGNORECASE | re.DOTALL,
)


def row_references(sql: str) -> set[str]:
    """Which of ``OLD`` / ``NEW`` a condition refers to, ignoring quoted text."""
    found = set()
    for match in _QUOTED_OR_ROWREF.finditer(sql):
        if match.group("alias"):
            found.add(match.group("alias").upper())
    return found


def rename_row_references(sql: str, old: str, new: str) -> str:
    """Point ``OLD.`` / ``NEW.`` at transition-table aliases, leaving quoted text alone."""
    names = {"OLD": old, "NEW": new}

    def swap(match: re.Match[str]) -> str:
        alias = match.group("alias")
        return match.group(0) if not alias else f"{names[alias.upper()]}."

    return _QUOTED_OR_ROWREF.sub(swap, sql)


_TOKEN = re.compile(
    r"""(?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)"""
    r"""|(?P<quote>E?'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*")"""
    r"""|(?P<comment>--[^\n]*)"""
    r"""|(?P<semi>;)""",
    re.DOTALL,
)


def split_statements(sql: str) -> list[str]:
    """Split SQL that pgtrigger generated into statements (for drivers that take one at a time).

    Understands quoted strings, identifiers, comments and dollar-quoted function bodies.
    """
    statements: list[str] = []
    start = 0
    pos = 0
    while True:
        match = _TOKEN.search(sql, pos)
        if match is None:
            break
        if match.group("dollar"):
            tag = match.group("dollar")
            end = sql.find(tag, match.end())
            if end < 0:
                raise CompileError("Unterminated dollar-quoted string in generated SQL")
            pos = end + len(tag)
        elif match.group("semi"):
            statement = sql[start : match.end()].strip()
            if statement.strip(";").strip():
                statements.append(statement)
            start = pos = match.end()
        else:
            pos = match.end()
    tail = sql[start:].strip()
    if tail:
        statements.append(tail)
    return statements
