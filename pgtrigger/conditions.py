"""Trigger conditions (the ``WHEN`` clause): raw SQL, Q/F filters and the change helpers.

Conditions compile against a ``TableDescription``: field names become quoted columns on
``OLD`` / ``NEW``, values become quoted literals. An integration may compile ``Q`` through its
own ORM instead (``TableDescription.q_compiler``); every other condition builds on ``Q``.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Callable, Iterable
from typing import Any

from pgtrigger import sqltext
from pgtrigger.errors import CompileError, DefinitionError
from pgtrigger.table import FieldDescription, TableDescription, describe, field_arg

ROW_ALIASES = {"old": "OLD", "new": "NEW"}


class Condition:
    """Free-form SQL for the ``WHEN`` clause, e.g. ``Condition("NEW.amount < 0")``."""

    sql: str | None = None

    def __init__(self, sql: str | None = None) -> None:
        self.sql = sql or self.sql
        if not self.sql or not isinstance(self.sql, str):
            raise DefinitionError("Must provide SQL to condition")
        sqltext.check_text(self.sql, "Condition SQL")

    def resolve(self, model: Any) -> str:
        """The condition as SQL for ``model`` (a table description or an ORM object)."""
        return self.sql or ""

    def check(self, trigger: Any) -> None:
        """Refuse, naming ``trigger``, what this condition cannot be for it (called when the
        trigger is defined). Conditions that know no such limit accept every trigger."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.sql))

    def __repr__(self) -> str:
        return f"pgtrigger.Condition({self.sql!r})"


class F:
    """A reference to a field of the old or new row: ``F("new__status")``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.startswith(("old__", "new__")):
            raise DefinitionError(f"F() values must reference old__ or new__, got {name!r}")
        self.name = name
        self.row_alias = ROW_ALIASES[name[:3]]
        self.col_name = name[5:]
        if not self.col_name or "__" in self.col_name:
            raise DefinitionError(
                f"F({name!r}) must name exactly one field after old__/new__"
                " (related-field lookups are not available inside triggers)"
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, F) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("F", self.name))

    def __repr__(self) -> str:
        return f"pgtrigger.F({self.name!r})"

    @property
    def resolved_name(self) -> str:
        return f"{self.row_alias}.{sqltext.ident(self.col_name)}"

    def render(self, table: TableDescription) -> str:
        column = table.field(self.col_name, what="F() field").column
        return f"{self.row_alias}.{sqltext.ident(column)}"


class Lookup:
    """A condition lookup; the core compiler knows the ones in ``LOOKUPS``."""

    lookup_name: str = ""

    @staticmethod
    def render(lhs: str, rhs: str) -> str:
        raise NotImplementedError


class IsDistinctFrom(Lookup):
    """``IS DISTINCT FROM``: ``Q(old__field__df=F("new__field"))``."""

    lookup_name = "df"

    @staticmethod
    def render(lhs: str, rhs: str) -> str:
        return f"{lhs} IS DISTINCT FROM {rhs}"


class IsNotDistinctFrom(Lookup):
    """``IS NOT DISTINCT FROM``: ``Q(old__field__ndf=F("new__field"))``."""

    lookup_name = "ndf"

    @staticmethod
    def render(lhs: str, rhs: str) -> str:
        return f"{lhs} IS NOT DISTINCT FROM {rhs}"


def _comparison(op: str) -> Callable[[str, str], str]:
    return lambda lhs, rhs: f"{lhs} {op} {rhs}"


def _like(prefix: str, suffix: str, insensitive: bool) -> Callable[[str, Any, bool], str]:
    def render(lhs: str, value: Any, is_ref: bool) -> str:
        text_lhs = f"{lhs}::text"
        if is_ref:
            # Match another column literally: position arithmetic avoids LIKE wildcards.
            needle = f"({value})::text"
            hay, needle = (
                (f"UPPER({text_lhs})", f"UPPER({needle})") if insensitive else (text_lhs, needle)
            )
            if prefix and suffix:
                return f"strpos({hay}, {needle}) > 0"
            if suffix:
                return f"left({hay}, length({needle})) = {needle}"
            return f"right({hay}, length({needle})) = {needle}"
        if not isinstance(value, str):
            value = str(value)
        pattern = sqltext.string(prefix + sqltext.like_escape(value) + suffix)
        if insensitive:
            return f"UPPER({text_lhs}) LIKE UPPER({pattern})"
        return f"{text_lhs} LIKE {pattern}"

    return render


_SIMPLE_LOOKUPS: dict[str, Callable[[str, str], str]] = {
    "exact": _comparison("="),
    "gt": _comparison(">"),
    "gte": _comparison(">="),
    "lt": _comparison("<"),
    "lte": _comparison("<="),
    "df": IsDistinctFrom.render,
    "ndf": IsNotDistinctFrom.render,
    "iexact": lambda lhs, rhs: f"UPPER({lhs}::text) = UPPER({rhs})",
    "regex": lambda lhs, rhs: f"{lhs}::text ~ {rhs}",
    "iregex": lambda lhs, rhs: f"{lhs}::text ~* {rhs}",
}
_PATTERN_LOOKUPS = {
    "contains": _like("%", "%", False),
    "icontains": _like("%", "%", True),
    "startswith": _like("", "%", False),
    "istartswith": _like("", "%", True),
    "endswith": _like("%", "", False),
    "iendswith": _like("%", "", True),
}
LOOKUPS = frozenset({*_SIMPLE_LOOKUPS, *_PATTERN_LOOKUPS, "in", "range", "isnull"})


class Q(Condition):
    """A filter on the old and new rows, combined with ``&``, ``|`` and ``~``.

    ``Q(old__status="published") & ~Q(new__status="archived")``. Keys start with ``old__`` or
    ``new__``, name a field, and may end with a lookup (see ``LOOKUPS``).
    """

    AND = "AND"
    OR = "OR"

    def __init__(
        self, *args: Q, _connector: str | None = None, _negated: bool = False, **kwargs: Any
    ) -> None:
        for arg in args:
            if not isinstance(arg, Q) and not (isinstance(arg, tuple) and len(arg) == 2):
                raise DefinitionError(f"Q() takes Q objects and keyword filters, got {arg!r}")
        self.children: list[Any] = [*args, *sorted(kwargs.items())]
        for child in self.children:
            if isinstance(child, tuple):
                _check_prefix(child[0])
        self.connector = _connector or self.AND
        self.negated = _negated
        self.sql = None

    # -- tree operations (Django's semantics, so rendered SQL groups the same way) ------------
    def __len__(self) -> int:
        return len(self.children)

    def __bool__(self) -> bool:
        return bool(self.children)

    def _copy(self) -> Q:
        clone = copy.copy(self)
        clone.children = list(self.children)
        return clone

    def _add(self, data: Q, conn: str) -> None:
        if self.connector != conn:
            inner = self._copy()
            self.connector = conn
            self.negated = False
            self.children = [inner, data]
        elif not data.negated and (data.connector == conn or len(data) == 1):
            self.children.extend(data.children)
        else:
            self.children.append(data)

    def _combine(self, other: Q, conn: str) -> Q:
        if not isinstance(other, Q):
            raise DefinitionError(f"Cannot combine Q with {other!r}")
        if not other:
            return self._copy()
        if not self:
            return other._copy()
        combined = Q(_connector=conn)
        combined._add(self, conn)
        combined._add(other, conn)
        return combined

    def __and__(self, other: Q) -> Q:
        return self._combine(other, self.AND)

    def __or__(self, other: Q) -> Q:
        return self._combine(other, self.OR)

    def __invert__(self) -> Q:
        inverted = self._copy()
        inverted.negated = not self.negated
        return inverted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Q) and (self.connector, self.negated, self.children) == (
            other.connector,
            other.negated,
            other.children,
        )

    def __hash__(self) -> int:
        return hash((self.connector, self.negated, repr(self.children)))

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(repr(c) for c in self.children)
        return f"<Q: {'NOT ' if self.negated else ''}({inner})>"

    # -- compiling --------------------------------------------------------------------------
    def resolve(self, model: Any) -> str:
        table = describe(model)
        if table.q_compiler is not None:
            return table.q_compiler(self, table)
        return compile_q(self, table)


def filter_q(key: str, value: Any) -> Q:
    """``Q(**{key: value})`` for keys built at run time."""
    _check_prefix(key)
    q = Q()
    q.children = [(key, value)]
    return q


def _check_prefix(key: str) -> None:
    """At definition time: the row (old/new) and a field must be named. Lookups and paths are
    checked when compiling, since an integration's ORM may know more of them (Django)."""
    parts = key.split("__")
    if len(parts) < 2 or parts[0] not in ROW_ALIASES or not parts[1]:
        raise DefinitionError(
            f"Filter expression {key!r} on trigger Q object must reference old__ or new__"
        )


def _split_key(key: str) -> tuple[str, str, str]:
    """``old__status__in`` -> ("OLD", "status", "in")."""
    parts = key.split("__")
    if len(parts) < 2 or parts[0] not in ROW_ALIASES:
        raise DefinitionError(
            f"Filter expression {key!r} on trigger Q object must reference old__ or new__"
        )
    rest = parts[1:]
    lookup = "exact"
    if len(rest) > 1 and rest[-1] in LOOKUPS:
        lookup = rest.pop()
    if len(rest) != 1 or not rest[0]:
        raise CompileError(
            f"Filter expression {key!r}: unknown lookup or related-field path"
            f" {'__'.join(rest)!r}; trigger conditions support one field plus one of"
            f" {', '.join(sorted(LOOKUPS))}"
        )
    return ROW_ALIASES[parts[0]], rest[0], lookup


class _Node:
    """A WHERE-clause tree with Django's grouping rules, so rendered SQL reads the same."""

    def __init__(self, connector: str, negated: bool = False) -> None:
        self.connector = connector
        self.negated = negated
        self.children: list[_Node | str] = []

    def add(self, child: _Node | str) -> None:
        # Same-connector (or single-child) subtrees fold into their parent.
        if (
            isinstance(child, _Node)
            and not child.negated
            and (child.connector == self.connector or len(child.children) == 1)
        ):
            self.children.extend(child.children)
        else:
            self.children.append(child)

    def render(self) -> str:
        parts = [c.render() if isinstance(c, _Node) else c for c in self.children]
        parts = [p for p in parts if p]
        sql = f" {self.connector} ".join(parts)
        if not sql:
            return ""
        if self.negated:
            return f"NOT ({sql})"
        return f"({sql})" if len(parts) > 1 else sql


def compile_q(q: Q, table: TableDescription) -> str:
    """The core's Q compiler. Semantics and text follow Django's: under a negation, nullable
    columns get ``IS NOT NULL`` so ``~Q(old__x="a")`` also holds when ``x`` is NULL."""
    return _build(q, table, negated=False).render()


def _build(q: Q, table: TableDescription, negated: bool) -> _Node:
    node = _Node(q.connector, q.negated)
    negated ^= q.negated
    for child in q.children:
        if isinstance(child, Q):
            if child:
                node.add(_build(child, table, negated))
        else:
            node.add(_compile_filter(child[0], child[1], table, negated))
    return node


def _compile_filter(key: str, value: Any, table: TableDescription, negated: bool = False) -> _Node:
    try:
        return _filter_node(key, value, table, negated)
    except CompileError as exc:
        if key in str(exc):
            raise
        # e.g. a NUL in the value: say which filter holds it (same class: see UnknownFieldError).
        raise type(exc)(f"Filter expression {key!r}: {exc}") from None


def _filter_node(key: str, value: Any, table: TableDescription, negated: bool) -> _Node:
    alias, field_name, lookup = _split_key(key)
    fld: FieldDescription = table.field(field_name, what=f"Condition field ({key})")
    lhs = f"{alias}.{sqltext.ident(fld.column)}"
    leaf = _Node(Q.AND)
    leaf.children.append(_lookup_sql(key, lookup, lhs, value, fld, table))
    if negated and lookup != "isnull" and value is not None:
        if fld.nullable:
            leaf.children.append(f"{lhs} IS NOT NULL")
        if isinstance(value, F):
            other = table.field(value.col_name, what="F() field")
            if other.nullable:
                # django-pgtrigger labels this term with the left side's row; v1 hashes need it.
                leaf.children.append(f"{alias}.{sqltext.ident(other.column)} IS NOT NULL")
    return leaf


def _lookup_sql(
    key: str, lookup: str, lhs: str, value: Any, fld: FieldDescription, table: TableDescription
) -> str:
    is_ref = isinstance(value, F)

    def rhs(v: Any) -> str:
        # Django wraps expression operands in parentheses; doing the same keeps v1 text equal.
        return f"({v.render(table)})" if isinstance(v, F) else sqltext.literal(v)

    if lookup == "isnull":
        if not isinstance(value, bool):
            raise CompileError(f"{key}: isnull takes True or False, got {value!r}")
        return f"{lhs} IS NULL" if value else f"{lhs} IS NOT NULL"
    if lookup == "in":
        if is_ref or isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise CompileError(f"{key}: 'in' takes a list of values, got {value!r}")
        values = [v for v in value if v is not None]
        if not values:
            raise CompileError(f"{key}: 'in' needs at least one non-null value")
        return f"{lhs} IN (" + ", ".join(rhs(v) for v in values) + ")"
    if lookup == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise CompileError(f"{key}: 'range' takes a (low, high) pair, got {value!r}")
        return f"{lhs} BETWEEN {rhs(value[0])} AND {rhs(value[1])}"
    if lookup in _PATTERN_LOOKUPS:
        if value is None:
            raise CompileError(f"{key}: {lookup} cannot compare with None")
        return _PATTERN_LOOKUPS[lookup](lhs, value.render(table) if is_ref else value, is_ref)
    if value is None and lookup == "exact":
        return f"{lhs} IS NULL"
    if lookup == "exact" and isinstance(value, bool) and fld.sql_type in ("boolean", "bool"):
        return lhs if value else f"NOT {lhs}"  # Django's form for boolean columns
    if value is None and lookup not in ("df", "ndf"):
        raise CompileError(f"{key}: cannot compare with None using {lookup!r}; use isnull")
    return _SIMPLE_LOOKUPS[lookup](lhs, rhs(value))


class _Change(Condition):
    """A condition on whether fields changed between OLD and NEW (see the subclasses)."""

    fields: list[Any] | None = None
    exclude: list[Any] | None = None
    exclude_auto: bool = False

    def __init__(
        self,
        *fields: Any,
        exclude: list[Any] | None = None,
        exclude_auto: bool | None = None,
        all: bool = False,
        comparison: str = "df",
    ) -> None:
        self.fields = list(fields) or self.fields or []
        self.exclude = list(exclude or self.exclude or [])
        self.exclude_auto = self.exclude_auto if exclude_auto is None else exclude_auto
        self._negated = False
        self.all = all
        self.comparison = comparison
        self.sql = None
        what = f"{type(self).__name__}()"
        self.fields = [field_arg(name, what) for name in self.fields]
        self.exclude = [field_arg(name, what) for name in self.exclude]

    def __invert__(self) -> _Change:
        inverted = copy.copy(self)
        inverted._negated = not inverted._negated
        return inverted

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.fields or ()), self._negated))

    def __repr__(self) -> str:
        return f"pgtrigger.{type(self).__name__}({', '.join(map(repr, self.fields or []))})"

    def resolve(self, model: Any) -> str:
        table = describe(model)
        what = f"{type(self).__name__} field"
        fields = [table.field(f, what=what).name for f in self.fields or []]
        exclude = {
            table.field(f, what=f"{type(self).__name__} exclude").name for f in self.exclude or []
        }
        model_fields = set(table.field_names)
        if self.exclude_auto:
            exclude |= {f.name for f in table.fields if f.auto_timestamp}
        chosen = sorted(f for f in (fields or model_fields) if f not in exclude)
        if not chosen:
            raise CompileError(
                f"{type(self).__name__}: every field is excluded; nothing to compare"
            )
        if set(chosen) == model_fields and not self.all:
            expr = _whole_row(table, self.comparison)
        else:
            reduce_op = operator.and_ if self.all else operator.or_
            q = functools.reduce(
                reduce_op,
                [filter_q(f"old__{name}__{self.comparison}", F(f"new__{name}")) for name in chosen],
            )
            expr = q.resolve(model)
        return f"NOT ({expr})" if self._negated else expr


#: Types without an equality operator: compare whole rows instead of columns.
_NO_EQUALITY = {"json", "xml", "point", "line", "box", "polygon", "circle", "path"}


def _whole_row(table: TableDescription, comparison: str) -> str:
    """Every field compared, OLD against NEW.

    django-pgtrigger's text is a record comparison (kept for template v1); template v2 spells
    it per column, which Postgres evaluates about three times faster.
    """
    from pgtrigger.triggers import compiling_template

    op = "IS DISTINCT FROM" if comparison == "df" else "IS NOT DISTINCT FROM"
    fields = [f for f in table.fields if not f.many_to_many]
    per_column = compiling_template(table) == "v2" and not any(
        (f.sql_type or "").lower() in _NO_EQUALITY for f in fields
    )
    if not per_column or not fields:
        return f"OLD.* {op} NEW.*"
    joiner = " OR " if comparison == "df" else " AND "
    terms = [f"OLD.{sqltext.ident(f.column)} {op} NEW.{sqltext.ident(f.column)}" for f in fields]
    return "(" + joiner.join(terms) + ")" if len(terms) > 1 else terms[0]


class AnyChange(_Change):
    """True if any of the fields (default: all) changed."""

    def __init__(
        self, *fields: Any, exclude: list[Any] | None = None, exclude_auto: bool | None = None
    ) -> None:
        super().__init__(
            *fields, exclude=exclude, exclude_auto=exclude_auto, all=False, comparison="df"
        )


class AnyDontChange(_Change):
    """True if any of the fields (default: all) did not change."""

    def __init__(
        self, *fields: Any, exclude: list[Any] | None = None, exclude_auto: bool | None = None
    ) -> None:
        super().__init__(
            *fields, exclude=exclude, exclude_auto=exclude_auto, all=False, comparison="ndf"
        )


class AllChange(_Change):
    """True if all of the fields (default: all) changed."""

    def __init__(
        self, *fields: Any, exclude: list[Any] | None = None, exclude_auto: bool | None = None
    ) -> None:
        super().__init__(
            *fields, exclude=exclude, exclude_auto=exclude_auto, all=True, comparison="df"
        )


class AllDontChange(_Change):
    """True if none of the fields (default: all) changed."""

    def __init__(
        self, *fields: Any, exclude: list[Any] | None = None, exclude_auto: bool | None = None
    ) -> None:
        super().__init__(
            *fields, exclude=exclude, exclude_auto=exclude_auto, all=True, comparison="ndf"
        )
