"""Compile ``pgtrigger.Q`` through Django's own query machinery.

Every lookup a Django field supports (foreign keys, dates, JSON...) then works in trigger
conditions, and the SQL is exactly what django-pgtrigger produced (v1 hashes match).
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import FieldError
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.expressions import Col
from django.db.models.fields.related import RelatedField
from django.db.models.sql import Query
from django.db.models.sql.datastructures import BaseTable

from pgtrigger import conditions, sqltext
from pgtrigger.errors import CompileError
from pgtrigger.table import TableDescription


class ConditionFieldError(CompileError, FieldError):
    """A condition names a field Django cannot resolve: also Django's ``FieldError``."""


class RowF(models.F):
    """``F("new__field")`` as a column of the OLD or NEW row."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.row_alias = conditions.ROW_ALIASES[name[:3]]
        self.col_name = name[5:]

    def resolve_expression(self, query: Any = None, *args: Any, **kwargs: Any) -> Col:
        return Col(alias=self.row_alias, target=query.model._meta.get_field(self.col_name))


class _RowQuery(Query):
    """A query whose filters read the ``OLD`` and ``NEW`` rows of a trigger."""

    def build_lookup(self, lookups: Any, lhs: Any, rhs: Any) -> Any:
        # Django refuses custom lookups on relations; IS DISTINCT FROM is fine on their ids.
        if lookups == ["df"] and isinstance(lhs.output_field, RelatedField):
            lhs = copy.deepcopy(lhs)
            lhs.output_field = models.IntegerField(null=lhs.output_field.null)
        return super().build_lookup(lookups, lhs, rhs)

    def build_filter(self, filter_expr: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(filter_expr, models.Q):
            return super().build_filter(filter_expr, *args, **kwargs)
        key, value = filter_expr
        alias = conditions.ROW_ALIASES[key[:3]]
        node, _ = super().build_filter((key[5:], value), *args, **kwargs)
        self.alias_map[alias] = BaseTable(alias, alias)
        for child in node.children:
            child.lhs = Col(
                alias=alias, target=child.lhs.target, output_field=child.lhs.output_field
            )
        return node, {alias}


def _to_django(q: conditions.Q) -> models.Q:
    children: list[Any] = []
    for child in q.children:
        if isinstance(child, conditions.Q):
            children.append(_to_django(child))
        else:
            key, value = child
            children.append((key, RowF(value.name) if isinstance(value, conditions.F) else value))
    return models.Q(*children, _connector=q.connector, _negated=q.negated)


def _literal(value: Any) -> str:
    try:
        import psycopg.adapt

        if value is None:
            return "NULL"
        literal: bytes = psycopg.adapt.Transformer().as_literal(value)
        return literal.decode()
    except ImportError:
        import psycopg2.extensions

        quoted: bytes = psycopg2.extensions.adapt(value).getquoted()
        return quoted.decode()


def _check_values(q: conditions.Q) -> None:
    """Refuse text Postgres cannot store (NUL) naming the filter, before Django sees it."""
    for child in q.children:
        if isinstance(child, conditions.Q):
            _check_values(child)
        elif isinstance(child, tuple) and len(child) == 2 and isinstance(child[1], str):
            sqltext.check_text(child[1], f"Filter expression {child[0]!r}: value {child[1]!r}")


def compile_q(q: conditions.Q, table: TableDescription) -> str:
    """SQL of ``q`` for the model ``table`` describes."""
    _check_values(q)
    model = table.target
    query = _RowQuery(model)
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        where = _to_django(q).resolve_expression(query)
        sql, params = where.as_sql(
            compiler=query.get_compiler(DEFAULT_DB_ALIAS), connection=connection
        )
    except CompileError:
        raise
    except FieldError as exc:  # an unknown field: still Django's FieldError for its handlers
        raise ConditionFieldError(f"condition {q!r}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # EmptyResultSet...: name what failed
        raise CompileError(f"condition {q!r}: {type(exc).__name__}: {exc}") from None
    sql = sql.replace('"OLD"', "OLD").replace('"NEW"', "NEW")
    compiled: str = sql % tuple(_literal(p) for p in params)
    return compiled


@models.ForeignKey.register_lookup
@models.Field.register_lookup
class IsDistinctFrom(models.Lookup):
    """``field__df``: IS DISTINCT FROM."""

    lookup_name = "df"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return conditions.IsDistinctFrom.render(lhs, rhs), [*lhs_params, *rhs_params]


@models.ForeignKey.register_lookup
@models.Field.register_lookup
class IsNotDistinctFrom(models.Lookup):
    """``field__ndf``: IS NOT DISTINCT FROM."""

    lookup_name = "ndf"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return conditions.IsNotDistinctFrom.render(lhs, rhs), [*lhs_params, *rhs_params]
