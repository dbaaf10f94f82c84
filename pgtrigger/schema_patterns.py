"""Schema patterns: ``tenant_*`` stands for every tenant schema of a database.

A pattern is a glob over schema names: ``*`` matches any run of characters, ``?`` one
character, and ``\\`` makes the next character literal (``\\*``). Every other character,
``_`` and ``%`` included, stands for itself. Patterns are matched in Python against the
schema names the engine's one catalog query returns: they never reach the server (no LIKE
or regex is built from user text), and matching is never exponential, whatever the pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pgtrigger.errors import UnknownSchemaError

WILDCARDS = "*?"
ESCAPE = "\\"


#: A pattern's pieces: a literal character, ``?`` (ANY_ONE) or ``*`` (ANY_RUN).
ANY_ONE, ANY_RUN = object(), object()


class SchemaPattern(str):
    """A schema name with wildcards; as a ``str`` it goes wherever a schema name does."""

    pieces: tuple[object, ...]

    def __new__(cls, text: str) -> SchemaPattern:
        if not text:
            raise UnknownSchemaError("an empty schema pattern matches no schema")
        if "\x00" in text:
            raise UnknownSchemaError(f"schema pattern {text!r} contains a NUL character")
        self = super().__new__(cls, text)
        self.pieces = _pieces(text)
        return self

    def matches(self, name: str) -> bool:
        """Whether ``name`` matches: greedy with one backtrack point (the last ``*``), so
        linear in practice and never exponential, whatever the pattern (no regex)."""
        pieces, p, n = self.pieces, 0, 0
        star, star_n = -1, 0
        while n < len(name):
            if p < len(pieces) and (pieces[p] is ANY_ONE or pieces[p] == name[n]):
                p, n = p + 1, n + 1
            elif p < len(pieces) and pieces[p] is ANY_RUN:
                star, star_n, p = p, n, p + 1
            elif star >= 0:
                star_n += 1
                p, n = star + 1, star_n
            else:
                return False
        return all(piece is ANY_RUN for piece in pieces[p:])

    def __repr__(self) -> str:
        return f"SchemaPattern({str.__repr__(self)})"


def _pieces(text: str) -> tuple[object, ...]:
    pieces: list[object] = []
    chars = iter(text)
    for char in chars:
        if char == ESCAPE:
            literal = next(chars, None)
            if literal is None:
                raise UnknownSchemaError(f"schema pattern {text!r} ends with a lone backslash")
            pieces.append(literal)
        elif char == "*":
            if not pieces or pieces[-1] is not ANY_RUN:  # ** is *
                pieces.append(ANY_RUN)
        elif char == "?":
            pieces.append(ANY_ONE)
        else:
            pieces.append(char)
    return tuple(pieces)


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
