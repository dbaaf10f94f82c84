"""Conditions and fields written the SQLAlchemy way.

```python
from pgtrigger.sqla import NEW, OLD, when

pgtrigger.Protect(name="lock_published", operation=pgtrigger.Update,
                  condition=when(OLD.status == "published"))
pgtrigger.ReadOnly(name="frozen_title", fields=[Post.title])
```

``OLD`` / ``NEW`` name fields by attribute (or column) name, resolved through the mapper when
the trigger is compiled for its table, as ``Q(old__status=...)`` is. The expression is compiled
by SQLAlchemy's PostgreSQL compiler with every value rendered as a literal by
``pgtrigger.sqltext`` (the one place literals are quoted), so the SQL, and the trigger's hash,
depend only on the expression. What cannot be a trigger condition is refused when the trigger
is defined, naming it: values only known when a statement runs (``bindparam("x")``), values
pgtrigger cannot write as literals, columns of tables rather than of ``OLD`` / ``NEW``, and
subqueries where PostgreSQL evaluates the condition per row.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ColumnProperty, MappedColumn, QueryableAttribute
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter, ClauseElement, ColumnClause
from sqlalchemy.sql.selectable import ScalarSelect, SelectBase
from sqlalchemy.types import NullType

from pgtrigger import sqltext
from pgtrigger import table as core_table
from pgtrigger.clauses import Statement
from pgtrigger.conditions import Condition
from pgtrigger.errors import CompileError, DefinitionError
from pgtrigger.table import FieldRef, TableDescription, describe

_compiling_for: contextvars.ContextVar[TableDescription | None] = contextvars.ContextVar(
    "pgtrigger_condition_table", default=None
)


class RowField(ColumnClause[Any]):
    """A field of the ``OLD`` or ``NEW`` row, named by attribute or column name."""

    __visit_name__ = "pgtrigger_row_field"
    inherit_cache = True  # the name ("OLD.status") is the whole cache key

    def __init__(self, row: str, field: str) -> None:
        super().__init__(f"{row}.{field}", type_=NullType())
        self.row = row
        self.field = field


@compiles(RowField)
def _compile_row_field(element: RowField, compiler: Any, **kw: Any) -> str:
    table = _compiling_for.get()
    if table is None:  # compiled on its own (repr, equality): the name as written
        return f"{element.row}.{sqltext.ident(element.field)}"
    what = f"condition field ({element.row}.{element.field})"
    column = table.field(element.field, what=what).column
    return f"{element.row}.{sqltext.ident(column)}"


class Row:
    """``OLD`` or ``NEW``: ``OLD.status`` (or ``OLD["status"]``) is that field of the row."""

    __slots__ = ("_row",)

    def __init__(self, row: str) -> None:
        self._row = row

    def __getattr__(self, field: str) -> RowField:
        if field.startswith("__"):
            raise AttributeError(field)
        return RowField(self._row, field)

    def __getitem__(self, field: str) -> RowField:
        if not isinstance(field, str) or not field:
            raise DefinitionError(f"{self._row}[...] takes a field name, got {field!r}")
        return RowField(self._row, field)

    def __repr__(self) -> str:
        return f"pgtrigger.sqla.{self._row}"


OLD = Row("OLD")
NEW = Row("NEW")


@functools.cache
def _dialect() -> Any:
    """PostgreSQL's compiler with every value written by ``pgtrigger.sqltext``; no driver, no
    server, "named" parameters (no "%" doubling): the same text everywhere. Built on first use
    (the dialect module is not needed to declare models)."""
    from sqlalchemy.dialects.postgresql.base import PGCompiler, PGDialect

    class ConditionCompiler(PGCompiler):
        def render_literal_value(self, value: Any, type_: Any) -> str:
            return sqltext.literal(value)

    class ConditionDialect(PGDialect):
        statement_compiler = ConditionCompiler

    return ConditionDialect(paramstyle="named")


def compile_expression(expression: ClauseElement, table: TableDescription | None) -> str:
    """``expression`` as literal SQL, its fields resolved against ``table`` (when given)."""
    token = _compiling_for.set(table)
    try:
        compiled = expression.compile(dialect=_dialect(), compile_kwargs={"literal_binds": True})
    finally:
        _compiling_for.reset(token)
    return str(compiled)


class Expression(Condition):
    """A condition written as a SQLAlchemy expression over ``OLD`` and ``NEW``."""

    def __init__(self, expression: Any) -> None:
        if not isinstance(expression, ClauseElement):
            raise DefinitionError(
                "pgtrigger.sqla.when() takes a SQLAlchemy expression over pgtrigger.sqla.OLD"
                f" and NEW (e.g. when(OLD.status == 'published')), got {expression!r}"
            )
        self.expression = expression
        self.sql = None

    def resolve(self, model: Any) -> str:
        return compile_expression(self.expression, describe(model))

    def check(self, trigger: Any) -> None:
        label = f'Trigger "{trigger.name or type(trigger).__name__}"'
        elements = list(visitors.iterate(self.expression))
        subquery = next((e for e in elements if isinstance(e, (SelectBase, ScalarSelect))), None)
        if subquery is not None and not _runs_in_body(trigger):
            raise DefinitionError(
                f"{label}: a trigger's WHEN condition cannot contain a subquery (PostgreSQL"
                " refuses it); check it in the function body, or use a statement-level"
                " pgtrigger.Composer, whose condition filters the transition tables"
            )
        for element in elements:
            if isinstance(element, BindParameter):
                _check_value(element, label)
            elif (
                subquery is None
                and isinstance(element, ColumnClause)
                and not isinstance(element, RowField)
                and not element.is_literal
            ):
                raise DefinitionError(
                    f"{label}: the condition refers to column {element}, not to a row of the"
                    f" trigger: write pgtrigger.sqla.OLD.{element.key} or NEW.{element.key}"
                )

    def _text(self) -> str:
        try:
            return compile_expression(self.expression, None)
        except Exception:  # a value check() would refuse: still comparable, by identity
            return f"<expression {id(self.expression)}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other._text() == self._text()

    def __hash__(self) -> int:
        return hash(("Expression", self._text()))

    def __repr__(self) -> str:
        return f"pgtrigger.sqla.when({self._text()!r})"


def when(expression: Any) -> Expression:
    """A trigger condition from a SQLAlchemy expression: ``when(OLD.status != NEW.status)``."""
    return Expression(expression)


def _runs_in_body(trigger: Any) -> bool:
    """Does the condition end up in the function body rather than in WHEN? (A statement-level
    Composer filters its transition tables with it.)"""
    from pgtrigger.contrib import Composer

    return isinstance(trigger, Composer) and trigger.level == Statement


def _check_value(bind: BindParameter[Any], label: str) -> None:
    if bind.callable is not None or bind.required:
        raise DefinitionError(
            f"{label}: condition parameter {bind.key!r} has no value of its own (a trigger"
            " condition is fixed when it is installed); write the value itself"
        )
    value: Any = bind.value
    values = list(value) if bind.expanding else [value]
    for value in values:
        try:
            sqltext.literal(value)
        except CompileError as exc:
            raise DefinitionError(f"{label}: condition value {value!r}: {exc}") from None


# -- fields given as attributes or columns ------------------------------------------------------
def _field_name(target: Any, table: TableDescription | None, what: str) -> str:
    if isinstance(target, QueryableAttribute):
        prop = getattr(target, "property", None)
        if not isinstance(prop, ColumnProperty):
            raise CompileError(f"{what} {target} is not a column attribute")
        _check_table(prop.columns[0], table, what, str(target))
        return str(target.key)
    column = target.column if isinstance(target, MappedColumn) else target
    if not isinstance(column, Column) or column.name is None:
        raise CompileError(
            f"{what} {target!r} has no column name yet (a mapped_column of a mixin?);"
            " name the field with a string"
        )
    _check_table(column, table, what, column.name)
    return str(column.name)


def _check_table(column: Any, table: TableDescription | None, what: str, shown: str) -> None:
    owner = getattr(column, "table", None)
    if table is not None and isinstance(owner, Table) and owner.name != table.name:
        raise CompileError(
            f"{what} {shown} is a column of table {owner.name!r}, not of {table.display_name!r}"
        )


def _coerce_field(value: Any) -> FieldRef | None:
    if isinstance(value, (QueryableAttribute, MappedColumn, Column)):
        return FieldRef(value, _field_name)
    return None


core_table.register_field_coercer(_coerce_field)
