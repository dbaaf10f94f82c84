"""Schema patterns: ``tenant_*`` stands for every tenant schema of a database.

A pattern is a glob over schema names: ``*`` matches any run of characters, ``?`` one
character, and ``\\`` makes the next character literal (``\\*``). Every other character,
``_`` and ``%`` included, stands for itself. Patterns are matched in Python against the
schema names the engine's one catalog query returns: they never reach the server, so no
LIKE or regex escaping of user text takes place there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pgtrigger.errors import UnknownSchemaError

WILDCARDS = "*?"
ESCAPE = "\\"


class SchemaPattern(str):
    """A schema name with wildcards; as a ``str`` it goes wherever a schema name does."""

    regex: re.Pattern[str]

    def __new__(cls, text: str) -> SchemaPattern:
        if not text:
            raise UnknownSchemaError("an empty schema pattern matches no schema")
        if "\x00" in text:
            raise UnknownSchemaError(f"schema pattern {text!r} contains a NUL character")
        self = super().__new__(cls, text)
        self.regex = re.compile(_regex(text), re.DOTALL)
        return self

    def matches(self, name: str) -> bool:
        return self.regex.fullmatch(name) is not None

    def __repr__(self) -> str:
        return f"SchemaPattern({str.__repr__(self)})"


def _regex(text: str) -> str:
    parts: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == ESCAPE:
            literal = next(chars, None)
            if literal is None:
                raise UnknownSchemaError(f"schema pattern {text!r} ends with a lone backslash")
            parts.append(re.escape(literal))
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def parse(text: str) -> str:
    """What a user typed after ``--schema``: a :class:`SchemaPattern` when it holds an
    unescaped wildcard, else the exact schema name (its escapes removed)."""
    literal: list[str] = []
    chars = iter(text)
    for char in chars:
        if char in WILDCARDS:
            return SchemaPattern(text)
        if char == ESCAPE:
            escaped = next(chars, None)
            if escaped is None:
                raise UnknownSchemaError(f"schema {text!r} ends with a lone backslash")
            char = escaped
        literal.append(char)
    return "".join(literal)


def has_patterns(schemas: Sequence[str] | None) -> bool:
    return any(isinstance(schema, SchemaPattern) for schema in schemas or ())


def expand(
    schemas: Sequence[str] | None, existing: Iterable[str], database: str = ""
) -> list[str] | None:
    """``schemas`` with each pattern replaced by the ``existing`` names it matches (sorted);
    exact names are kept as given. A pattern matching nothing is an error naming it."""
    if not has_patterns(schemas):
        return None if schemas is None else list(schemas)
    names = sorted(existing)
    result: dict[str, None] = {}
    for schema in schemas or ():
        if not isinstance(schema, SchemaPattern):
            result[schema] = None
            continue
        matched = [name for name in names if schema.matches(name)]
        if not matched:
            where = f' in database "{database}"' if database else ""
            raise UnknownSchemaError(f"schema pattern {str(schema)!r} matches no schema{where}")
        result.update(dict.fromkeys(matched))
    return list(result)
