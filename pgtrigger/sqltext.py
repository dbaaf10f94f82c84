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

# fullmatch, not "$": "$" also matches before a trailing newline.
_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_]*")

#: Keywords a bare column name cannot be: ``pg_get_keywords()`` categories R (reserved) and
#: T (type or function name), the same on PostgreSQL 15 and 18 but for ``system_user``
#: (reserved since 16, so a bare one breaks on upgrade).
_NOT_BARE_WORDS = """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user
    default deferrable desc distinct do else end except false fetch for foreign freeze from
    full grant group having ilike in initially inner intersect into is isnull join lateral
    leading left like limit localtime localtimestamp natural not notnull null offset on only
    or order outer overlaps placing primary references returning right select session_user
    similar some symmetric system_user table tablesample then to trailing true union unique
    user using variadic verbose when where window with
"""
_NOT_BARE = frozenset(_NOT_BARE_WORDS.split())


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


def search_path(schemas: Iterable[str], what: str = "search_path schema") -> str:
    """A ``SET search_path = ...`` value: quoted schemas, ``pg_temp`` last (added if absent,
    or Postgres would search the session's temporary tables first)."""
    names = list(schemas)
    if "pg_temp" not in names:
        names.append("pg_temp")
    return ", ".join(ident(name, what) for name in names)


def legacy_ident(name: str) -> str:
    """An identifier as django-pgtrigger's v1 text writes it: bare when bare is safe.

    Names that need quoting could never be installed by django-pgtrigger, so quoting them
    keeps v1 text identical wherever it worked and correct where it did not.
    """
    return name if _PLAIN_IDENT.fullmatch(name) else ident(name)


def can_be_bare(name: str) -> bool:
    """Does ``name`` mean the same column written bare? (lower case, not a keyword)"""
    return _PLAIN_IDENT.fullmatch(name) is not None and name not in _NOT_BARE


def legacy_quote(label: str) -> str:
    """django-pgtrigger's ``utils.quote``: wrap in double quotes unless already quoted.

    Kept for table names, where Django's ``schema"."table`` convention relies on it. Use
    :func:`legacy_column` for a column.
    """
    if label.startswith('"') or label.endswith('"'):
        return label
    return f'"{label}"'


def legacy_column(name: str) -> str:
    """A column as django-pgtrigger quoted it (``"name"``), correctly when it holds ``"``.

    ``legacy_quote`` neither doubles inner quotes nor quotes a name starting or ending with
    one, so such columns never installed under django-pgtrigger: quoting them properly
    changes no text that worked.
    """
    return ident(name, "column") if '"' in name else f'"{name}"'


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


#: Array elements that read the same unquoted (``{a,b}``, as django-pgtrigger wrote them).
_BARE_ELEMENT = re.compile(r"[A-Za-z0-9_:.$-]+")


def text_array(items: Iterable[str]) -> str:
    """A Postgres text-array value (not a literal) for bind parameters: ``{a,b}``.

    Elements are bare where that reads the same (names of triggers), quoted otherwise.
    """
    parts = []
    for item in items:
        check_text(item, "array element")
        if _BARE_ELEMENT.fullmatch(item) and item.upper() != "NULL":
            parts.append(item)
        else:
            parts.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


# -- reading SQL text: what is quoted, what is code ----------------------------------------

#: Quoted text and comments, as PostgreSQL's lexer sees them (standard_conforming_strings on):
#: a dollar-quote opening tag, an escape string (backslash escapes), a string, a quoted
#: identifier, a line comment, a block comment opening (nested; closed by _block_end).
#: Unterminated quotes run to the end of the text.
_LEXEME = re.compile(
    r"""(?P<dollar>(?<![\w$])\$(?:[^\W\d]\w*)?\$)"""
    r"""|(?P<estring>(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z))"""
    r"""|(?P<string>'(?:[^']|'')*(?:'|\Z))"""
    r"""|(?P<ident>"(?:[^"]|"")*(?:"|\Z))"""
    r"""|(?P<line_comment>--[^\n]*)"""
    r"""|(?P<block_comment>/\*)""",
    re.DOTALL,
)
_BLOCK_PART = re.compile(r"/\*|\*/")


def _block_end(sql: str, pos: int) -> int:
    """The end of a block comment opened just before ``pos`` (they nest in PostgreSQL)."""
    depth = 1
    for match in _BLOCK_PART.finditer(sql, pos):
        depth += 1 if match.group() == "/*" else -1
        if depth == 0:
            return match.end()
    return len(sql)


def lexemes(sql: str) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of every quoted stretch and comment of ``sql``, in order.

    Kinds: ``dollar`` (a whole dollar-quoted string), ``estring``, ``string``, ``ident``,
    ``line_comment``, ``block_comment``. Whatever lies between them is code.
    """
    found = []
    pos = 0
    while (match := _LEXEME.search(sql, pos)) is not None:
        kind = match.lastgroup or ""
        end = match.end()
        if kind == "dollar":
            close = sql.find(match.group(), end)
            end = len(sql) if close < 0 else close + len(match.group())
        elif kind == "block_comment":
            end = _block_end(sql, end)
        found.append((kind, match.start(), end))
        pos = end
    return found


_QUOTED = frozenset({"dollar", "estring", "string", "ident"})


def _code_only(sql: str, found: list[tuple[str, int, int]] | None = None) -> str:
    """``sql`` with every quoted stretch and comment blanked out (same length: positions hold).

    NUL stands in for them (no word character, never part of SQL text); ``"`` for quoted
    names, so that a name glued to ``OLD`` (``"t"OLD.x``) reads as it always did.
    """
    chars = list(sql)
    for kind, start, end in lexemes(sql) if found is None else found:
        chars[start:end] = ('"' if kind == "ident" else "\x00") * (end - start)
    return "".join(chars)


_LINE_BREAK = re.compile(r"\s*\n\s*")


def format_sql(sql: str) -> str:
    """django-pgtrigger's one-line layout (each line stripped, lines joined with a space),
    applied to the code only: quoted text keeps its newlines and spaces.

    Identical to django-pgtrigger's ``format_sql`` whenever no string, quoted identifier or
    dollar-quoted body holds a line break (there the old one changed what the SQL says).
    """
    parts: list[str] = []
    pos = 0
    for kind, start, end in lexemes(sql):
        if kind in _QUOTED:
            parts.append(_LINE_BREAK.sub(" ", sql[pos:start]))
            parts.append(sql[start:end])
            pos = end
    parts.append(_LINE_BREAK.sub(" ", sql[pos:]))
    # Only code is stripped: text never starts or ends inside a closed quote.
    parts[0] = parts[0].lstrip()
    parts[-1] = parts[-1].rstrip()
    return "".join(parts)


_DOT = re.compile(r"\s*\.")
_ROW_REFERENCE = re.compile(r"(?<![\w.\"$])(OLD|NEW)\s*\.", re.IGNORECASE)


def row_references(sql: str) -> set[str]:
    """Which of ``OLD`` / ``NEW`` a condition refers to, ignoring quoted text and comments."""
    return {match.group(1).upper() for match in _ROW_REFERENCE.finditer(_code_only(sql))}


def rename_row_references(sql: str, old: str, new: str) -> str:
    """Point ``OLD.`` / ``NEW.`` at transition-table aliases, leaving quoted text alone."""
    names = {"OLD": old, "NEW": new}
    parts = []
    pos = 0
    for match in _ROW_REFERENCE.finditer(_code_only(sql)):
        parts += [sql[pos : match.start()], f"{names[match.group(1).upper()]}."]
        pos = match.end()
    return "".join(parts) + sql[pos:]


def references(sql: str, name: str) -> bool:
    """Does ``sql`` qualify a column with relation ``name`` (``name.col``, ``"name".col``)?

    Only code counts: string values, comments and other quoted names that merely contain
    ``name.`` do not.
    """
    found = lexemes(sql)
    code = _code_only(sql, found)
    bare = re.compile(rf"(?<![\w.\"$]){re.escape(name)}\s*\.", re.IGNORECASE)
    if bare.search(code):
        return True
    quoted = ident(name, "relation")
    return any(
        kind == "ident" and sql[start:end] == quoted and _DOT.match(code, end)
        for kind, start, end in found
    )


def split_statements(sql: str) -> list[str]:
    """Split SQL that pgtrigger generated into statements (for drivers that take one at a time).

    Understands quoted strings, identifiers, comments and dollar-quoted function bodies.
    """
    statements: list[str] = []
    start = pos = 0
    for kind, begin, end in [*lexemes(sql), ("end", len(sql), len(sql))]:
        while (semi := sql.find(";", pos, begin)) >= 0:
            statement = sql[start : semi + 1].strip()
            if statement.strip(";").strip():
                statements.append(statement)
            start = pos = semi + 1
        if kind == "dollar":
            tag = sql[begin : sql.index("$", begin + 1) + 1]
            if end - begin < 2 * len(tag) or not sql.endswith(tag, begin, end):
                raise CompileError("Unterminated dollar-quoted string in generated SQL")
        pos = end
    tail = sql[start:].strip()
    if tail:
        statements.append(tail)
    return statements
