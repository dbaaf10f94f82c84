"""Ready-made triggers: Composer, Protect, ReadOnly, FSM, SoftDelete, UpdateSearchVector.

Under template v1 each produces django-pgtrigger's exact text wherever that text worked, so
switching projects see no migration churn. Definitions it could not express or got wrong
(quoted values, FSM states that break its array literal, None or integer FSM states, reserved
words as SoftDelete columns, SQL expressions) compile to correct, safely quoted SQL under
either template. Under v2 the rules live in the ``WHEN`` clause as far as Postgres allows,
so rows that pass never enter PL/pgSQL.
"""

from __future__ import annotations

import decimal
import enum
import functools
import operator
from typing import Any

from pgtrigger import compiler, sqltext
from pgtrigger.clauses import (
    After,
    Before,
    Delete,
    Firing,
    Insert,
    Operation,
    Referencing,
    Row,
    Statement,
    Update,
    UpdateOf,
    When,
)
from pgtrigger.conditions import AnyChange, Condition, F, filter_q
from pgtrigger.errors import CompileError, DefinitionError
from pgtrigger.table import TableDescription, describe, field_arg
from pgtrigger.triggers import Func, Trigger, compiling_template

_unset: Any = object()
#: What PostgreSQL's array input trims around an unquoted element.
_ARRAY_SPACE = " \t\n\r\v\f"


def _column(model: Any, field: Any, what: str = "field") -> str:
    return describe(model).field(field, what=what).column


class Composer(Trigger):
    """A trigger that works at row or statement level.

    At statement level it declares the transition tables the operation allows
    (``old_values`` / ``new_values``) and gives ``Func`` templates ``cond_old_values``,
    ``cond_new_values`` and ``cond_joined_values``: the transition tables filtered by the
    condition, joined on the primary key when the condition needs both.
    """

    func: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.referencing is not None:
            raise self._error("Composer triggers do not support referencing declarations.")
        if self.level == Statement:
            # Postgres offers transition tables for a single event only.
            assert self.operation is not None
            events = [op for op in self.operation]
            if len(events) == 1 and not isinstance(events[0], UpdateOf):
                event = events[0].event
                if event == "UPDATE":
                    self.referencing = Referencing(old="old_values", new="new_values")
                elif event == "DELETE":
                    self.referencing = Referencing(old="old_values")
                elif event == "INSERT":
                    self.referencing = Referencing(new="new_values")
            if self.referencing and self.when != After:
                raise self._error(
                    "statement-level Composer triggers read transition tables, which only"
                    " AFTER triggers have: set when=pgtrigger.After"
                )

    def get_func(self, model: Any) -> Any:
        if isinstance(self.func, dict):
            return self.func[Statement if self.level == Statement else Row]
        return super().get_func(model)

    def render_condition(self, model: Any) -> str:
        return "" if self.level == Statement else super().render_condition(model)

    def get_func_template_kwargs(self, model: Any) -> dict[str, Any]:
        kwargs = super().get_func_template_kwargs(model)
        if self.level != Statement:
            return kwargs
        condition = Trigger.render_condition(self, model)
        condition = sqltext.rename_row_references(condition, "old_values", "new_values")
        if condition.startswith("WHEN "):
            condition = f"WHERE {condition[5:]}"
        table = describe(model)
        both = bool(self.referencing and self.referencing.old and self.referencing.new)
        pk_columns = table.primary_key_columns() if both else table.primary_key
        old_pk = ", ".join(f"old_values.{sqltext.legacy_column(col)}" for col in pk_columns)
        new_pk = ", ".join(f"new_values.{sqltext.legacy_column(col)}" for col in pk_columns)
        # v2 names the built-in operator (the body resolves names with the writer's path).
        equals = "=" if compiling_template(model) == "v1" else "OPERATOR(pg_catalog.=)"
        joined = f"old_values JOIN new_values ON ({old_pk}) {equals} ({new_pk}) {condition}"
        if both and compiling_template(model) == "v1":
            # django-pgtrigger's test, values included; kept where it only picks a join that
            # is not needed (with one transition table it refused the trigger instead).
            uses_new, uses_old = "new_values." in condition, "old_values." in condition
        else:
            uses_new = sqltext.references(condition, "new_values")
            uses_old = sqltext.references(condition, "old_values")
        if uses_new and uses_old:
            cond_old, cond_new = joined, joined
        elif uses_new:
            cond_old, cond_new = joined, f"new_values {condition}"
        elif uses_old:
            cond_old, cond_new = f"old_values {condition}", joined
        else:
            cond_old, cond_new = f"old_values {condition}", f"new_values {condition}"
        return {
            **kwargs,
            "cond_joined_values": joined,
            "cond_old_values": cond_old,
            "cond_new_values": cond_new,
        }

    def render_func(self, model: Any) -> str:
        rendered = super().render_func(model)
        if self.level == Statement:
            has_old = bool(self.referencing and self.referencing.old)
            has_new = bool(self.referencing and self.referencing.new)
            # Only code counts: a string value may well hold "new_values.".
            if not has_new and sqltext.references(rendered, "new_values"):
                raise CompileError(
                    f'Composer trigger references NEW values, but operation "{self.operation}"'
                    " doesn't allow for that."
                )
            if not has_old and sqltext.references(rendered, "old_values"):
                raise CompileError(
                    f'Composer trigger references OLD values, but operation "{self.operation}"'
                    " doesn't allow for that."
                )
            # Checked here, after the body (django-pgtrigger's order), not at definition.
            if self.condition is not None and not self.referencing:
                raise CompileError(
                    "a statement-level condition needs transition tables, which Postgres"
                    f' offers for a single INSERT, UPDATE or DELETE, not "{self.operation}"'
                )
        return rendered


def _operation_words(operation: Operation | None) -> str:
    return str(operation).lower()


def _protect_message(operation: Operation | None) -> str:
    # 'pgtrigger: Cannot update rows from % table': users match on this text.
    return f"pgtrigger: Cannot {_operation_words(operation)} rows from % table"


class Protect(Composer):
    """Raise an exception for the given operations (row or statement level)."""

    when: When = Before

    def __init__(self, **kwargs: Any) -> None:
        if str(kwargs.get("level") or self.level).upper() == "STATEMENT":
            kwargs["when"] = After  # statement-level protection inspects transition tables
        super().__init__(**kwargs)

    def get_func(self, model: Any) -> Any:
        if self.level == Row:
            return self.format_sql(
                f"""
                RAISE EXCEPTION
                    '{_protect_message(self.operation)}',
                TG_TABLE_NAME;
                """
            )
        if not self.referencing:
            # Several events (or TRUNCATE): no transition table tells whether rows were
            # touched, so any such statement is refused.
            return self.format_sql(
                f"""
                RAISE EXCEPTION
                    '{_protect_message(self.operation)}',
                TG_TABLE_NAME;
                RETURN NULL;
                """
            )
        if self.referencing.new and self.referencing.old:
            transition_table = "cond_joined_values"
        elif self.referencing.new:
            transition_table = "cond_new_values"
        else:
            transition_table = "cond_old_values"
        # Whitespace matters: the v1 hash covers it.
        return Func(
            f"""
                IF EXISTS (SELECT 1 FROM {{{transition_table}}}) THEN
                    RAISE EXCEPTION
                        '{_protect_message(self.operation)}',
                    TG_TABLE_NAME;
                END IF;
                RETURN NULL;
                """
        )

    def v2_search_path(self, model: Any) -> str | None:
        """Statement-level bodies evaluate the condition (and the join of the transition
        tables) at run time: pinned to built-ins, so no one else's operator takes part. Once
        per statement, so it costs nothing per row."""
        pinned = super().v2_search_path(model)
        if pinned is None and self.level == Statement and self.referencing:
            return compiler.INSTALL_SEARCH_PATH
        return pinned


class ReadOnly(Protect):
    """Refuse updates that change the given fields (default: every field).

    ``fields`` protects only those; ``exclude`` protects all but those.
    """

    fields: list[Any] | None = None
    exclude: list[Any] | None = None
    operation: Operation = Update

    def __init__(
        self,
        *,
        fields: list[Any] | None = None,
        exclude: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.fields = fields or self.fields
        self.exclude = exclude or self.exclude
        if self.fields and self.exclude:
            raise DefinitionError(
                f'Trigger "{kwargs.get("name") or self.name}": Must provide only one of'
                ' "fields" or "exclude" to ReadOnly trigger'
            )
        for attr in ("fields", "exclude"):
            value = getattr(self, attr)
            if value is None:
                continue
            label = kwargs.get("name") or self.name
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise DefinitionError(
                    f'Trigger "{label}": "{attr}" must be a list of field names, got {value!r}'
                )
            setattr(self, attr, [field_arg(v, f'Trigger "{label}": "{attr}"') for v in value])
        super().__init__(**kwargs)

    def get_condition(self, model: Any) -> Condition:
        table = describe(model)
        user_condition = self.condition
        if not self.fields and not self.exclude:
            protected: Condition = AnyChange()  # every field (per column under v2)
        else:
            if self.exclude:
                excluded = {
                    table.field(f, what="ReadOnly exclude field").name for f in self.exclude
                }
                names = [f for f in table.field_names if f not in excluded]
                if not names:
                    raise CompileError("ReadOnly excludes every field; nothing left to protect")
            else:
                names = [table.field(f, what="ReadOnly field").name for f in self.fields or []]
            protected = functools.reduce(
                operator.or_, [filter_q(f"old__{n}__df", F(f"new__{n}")) for n in names]
            )
        if user_condition is None:
            return protected
        return _And(protected, user_condition)


class _And(Condition):
    """Two conditions that must both hold."""

    def __init__(self, left: Condition, right: Condition) -> None:
        self.left, self.right = left, right
        self.sql = None

    def resolve(self, model: Any) -> str:
        return f"(({self.left.resolve(model)}) AND ({self.right.resolve(model)}))"

    def __hash__(self) -> int:
        return hash((self.left, self.right))


_FSM_VALUE_TYPES = (str, int, decimal.Decimal, enum.Enum, type(None))


def _check_fsm_text(label: str, value: str, separator: Any) -> None:
    """django-pgtrigger's rules and words: no quotes, no separator inside a value."""
    if "'" in value or '"' in value:
        raise DefinitionError(f'Trigger "{label}": FSM transition value "{value}" contains quotes')
    if isinstance(separator, str) and separator and separator in value:
        raise DefinitionError(
            f'Trigger "{label}": FSM value "{value}" contains separator "{separator}".'
            ' Configure your trigger with a different "separator" attribute'
        )


class FSM(Trigger):
    """Only allow the listed transitions of a field: ``transitions=[("draft", "published")]``.

    Works for text, integer, enum and nullable fields (``None`` is a state); values may
    contain quotes or the separator. Rows whose field does not change pass untouched.

    Template v1 keeps django-pgtrigger's text (``CONCAT(OLD.f, sep, NEW.f)`` looked up in a
    ``text[]``) for all-string transitions it could hold, and with it one quirk: CONCAT reads
    NULL as ``''``, so on a nullable field declaring ``'' -> x`` also allows ``NULL -> x``
    (and ``x -> ''`` allows ``x -> NULL``). Declare a ``None`` transition or use template v2
    to tell NULL from ``''``; both compare states with ``IS NOT DISTINCT FROM``.
    """

    when: When = Before
    operation: Operation = Update
    field: Any = None
    transitions: list[tuple[Any, Any]] | None = None
    separator: str = ":"

    def __init__(
        self,
        *,
        name: str | None = None,
        condition: Condition | None = None,
        field: Any = None,
        transitions: list[tuple[Any, Any]] | None = None,
        separator: str | None = None,
        ignorable: bool | None = None,
        ignorable_by: str | None = None,
        search_path: list[str] | tuple[str, ...] | None = None,
        firing: Firing | str | None = None,
    ) -> None:
        self.field = field or self.field
        self.transitions = transitions or self.transitions
        self.separator = separator or self.separator
        label = name or self.name or "FSM"
        if not self.field:
            raise DefinitionError(f'Trigger "{label}": Must provide "field" for FSM')
        self.field = field_arg(self.field, f'Trigger "{label}": FSM "field"')
        if not self.transitions:
            raise DefinitionError(f'Trigger "{label}": Must provide "transitions" for FSM')
        pairs = []
        for pair in self.transitions:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise DefinitionError(
                    f'Trigger "{label}": FSM transitions are (from, to) pairs, got {pair!r}'
                )
            for value in pair:
                if isinstance(value, bool) or not isinstance(value, _FSM_VALUE_TYPES):
                    raise DefinitionError(
                        f'Trigger "{label}": FSM transition value {value!r} must be a str,'
                        " int, Decimal, Enum or None"
                    )
                if isinstance(value, str):
                    sqltext.check_text(value, f'Trigger "{label}": FSM transition value')
                    _check_fsm_text(label, value, self.separator)
            pairs.append((pair[0], pair[1]))
        self.transitions = pairs
        if not isinstance(self.separator, str) or len(self.separator) != 1:
            raise DefinitionError(
                f'Trigger "{label}": Separator "{self.separator}" must be a single character'
            )
        if self.separator in ('"', "'"):
            raise DefinitionError(f'Trigger "{label}": Separator must not have quotes')
        super().__init__(
            name=name,
            condition=condition,
            ignorable=ignorable,
            ignorable_by=ignorable_by,
            search_path=search_path,
            firing=firing,
        )

    def _django_expressible(self) -> bool:
        """Did django-pgtrigger's text work for this FSM? Then v1 must produce that text.

        It pastes the field name into a RAISE format string and each ``from<sep>to`` into a
        ``text[]`` literal, unescaped: anything those would misread takes the exact path.
        """
        field = str(self.field)
        if "'" in field or "%" in field:
            return False
        for old, new in self.transitions or []:
            if not (isinstance(old, str) and isinstance(new, str)):
                return False
            if any("'" in v or '"' in v or self.separator in v for v in (old, new)):
                return False
            element = f"{old}{self.separator}{new}"
            if (
                any(c in element for c in ",{}\\")
                or element != element.strip(_ARRAY_SPACE)
                or element.upper() == "NULL"
            ):
                return False
        return True

    def format_sql(self, sql: str) -> str:
        # Values and quoted names keep their line breaks (django-pgtrigger's joined them).
        return sqltext.format_sql(sql)

    def _allowed(self, column: str) -> str:
        col = sqltext.ident(column)
        return " OR ".join(
            f"(OLD.{col} IS NOT DISTINCT FROM {sqltext.literal(old)}"
            f" AND NEW.{col} IS NOT DISTINCT FROM {sqltext.literal(new)})"
            for old, new in self.transitions or []
        )

    def _field_name(self, table: TableDescription) -> str:
        """The field as messages name it: as written, or the attribute a reference names."""
        if isinstance(self.field, str):
            return self.field
        return table.field(self.field, what="FSM field").name

    def _raise(self, column: str, field: str) -> str:
        col = sqltext.ident(column)
        message = f'pgtrigger: Invalid transition of field "{field}" from "%" to "%" on table %'
        field_text = field.replace("%", "%%")
        message = message.replace(f'"{field}"', f'"{field_text}"', 1)
        return f"RAISE EXCEPTION {sqltext.string(message)}, OLD.{col}, NEW.{col}, TG_TABLE_NAME;"

    def get_declare(self, model: Any) -> list[tuple[str, str]]:
        return [("_is_valid_transition", "BOOLEAN")] if self._django_expressible() else []

    def get_func(self, model: Any) -> Any:
        column = _column(model, self.field, "FSM field")
        if self._django_expressible():
            col = sqltext.legacy_column(column)
            uris = (
                "{" + ",".join(f"{o}{self.separator}{n}" for o, n in self.transitions or []) + "}"
            )
            return self.format_sql(
                f"""
                SELECT CONCAT(OLD.{col}, '{self.separator}', NEW.{col}) = ANY('{uris}'::text[])
                    INTO _is_valid_transition;

                IF (_is_valid_transition IS FALSE AND OLD.{col} IS DISTINCT FROM NEW.{col}) THEN
                    RAISE EXCEPTION
                        'pgtrigger: Invalid transition of field "{self._field_name(describe(model))}" from "%" to "%" on table %',
                        OLD.{col},
                        NEW.{col},
                        TG_TABLE_NAME;
                ELSE
                    RETURN NEW;
                END IF;
                """
            )
        col = sqltext.ident(column)
        return (
            f"IF OLD.{col} IS DISTINCT FROM NEW.{col} AND NOT ({self._allowed(column)}) THEN"
            f" {self._raise(column, self._field_name(describe(model)))} END IF; RETURN NEW;"
        )

    def compile_v2(self, model: Any, table: TableDescription) -> compiler.UpsertSql:
        column = table.field(self.field, what="FSM field").column
        col = sqltext.ident(column)
        rule = f"OLD.{col} IS DISTINCT FROM NEW.{col} AND NOT ({self._allowed(column)})"
        user = super().v2_condition(model)
        condition = f"{rule} AND {user}" if user else rule
        self._check_condition(condition)
        return compiler.UpsertTriggerSqlV2(
            pgid=self.get_pgid(model),
            table=table.name,
            schema=table.schema,
            func=f"{self._raise(column, self._field_name(table))}\nRETURN NEW;",
            when=self.when,
            operation=self.operation,
            level=self.level,
            condition=condition,
            **self.v2_options(model),
        )


class SoftDelete(Trigger):
    """Turn deletes into an update of ``field`` to ``value`` (default ``False``).

    ``value`` may be a bool, str, int, None, any literal pgtrigger can quote, or a trusted
    SQL expression: ``SoftDelete(field="deleted_at", value=pgtrigger.Sql("NOW()"))``.
    """

    when: When = Before
    operation: Operation = Delete
    field: Any = None
    value: Any = False

    def __init__(
        self,
        *,
        name: str | None = None,
        condition: Condition | None = None,
        field: Any = None,
        value: Any = _unset,
        ignorable: bool | None = None,
        ignorable_by: str | None = None,
        search_path: list[str] | tuple[str, ...] | None = None,
        firing: Firing | str | None = None,
    ) -> None:
        self.field = field or self.field
        self.value = value if value is not _unset else self.value
        label = name or self.name or "SoftDelete"
        if not self.field:
            raise DefinitionError(f'Trigger "{label}": Must provide "field" for soft delete')
        self.field = field_arg(self.field, f'Trigger "{label}": SoftDelete "field"')
        try:
            sqltext.literal(self.value)
        except CompileError as exc:
            raise DefinitionError(f'Trigger "{label}": SoftDelete value: {exc}') from None
        super().__init__(
            name=name,
            condition=condition,
            ignorable=ignorable,
            ignorable_by=ignorable_by,
            search_path=search_path,
            firing=firing,
        )

    def _django_value(self) -> str | None:
        """django-pgtrigger's rendering of the value, where it rendered it correctly."""
        value = self.value
        if value is None:
            return "NULL"
        if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, enum.Enum)):
            return str(value)
        if isinstance(value, str) and not isinstance(value, enum.Enum):
            if "'" in value or "\\" in value or "\x00" in value:
                return None
            return f"'{value}'"
        return None

    def _sql(self, model: Any, table: TableDescription, legacy: bool) -> str:
        column = table.field(self.field, what="SoftDelete field").column
        pk_cols = table.primary_key_columns()
        django_value = self._django_value() if legacy else None
        # django-pgtrigger wrote the column bare: its text only where bare means that column.
        if legacy and django_value is not None and sqltext.can_be_bare(column):
            set_column, value, quote = column, django_value, sqltext.legacy_column
            table_sql = sqltext.legacy_quote(table.v1_name)
        else:
            set_column, value = sqltext.ident(column), sqltext.literal(self.value)
            quote = sqltext.ident
            table_sql = table.sql_name if not legacy else sqltext.legacy_quote(table.v1_name)
        table_pk = ",".join(quote(col) for col in pk_cols)
        old_pk = ",".join(f"OLD.{quote(col)}" for col in pk_cols)
        if len(pk_cols) > 1:
            table_pk, old_pk = f"({table_pk})", f"({old_pk})"
        # v2 names the built-in operator: the body runs with the writer's search path, where
        # an operator someone else created for the key's type would otherwise win.
        equals = "=" if legacy else "OPERATOR(pg_catalog.=)"
        return self.format_sql(
            f"""
            UPDATE {table_sql}
            SET {set_column} = {value}
            WHERE {table_pk} {equals} {old_pk};
            RETURN NULL;
            """
        )

    def get_func(self, model: Any) -> Any:
        legacy = compiling_template(model) == "v1"
        return self._sql(model, describe(model), legacy=legacy)

    def format_sql(self, sql: str) -> str:
        # Values and quoted names keep their line breaks (django-pgtrigger's joined them).
        return sqltext.format_sql(sql)


class UpdateSearchVector(Trigger):
    """Keep a ``tsvector`` field up to date from document fields (``tsvector_update_trigger``).

    Under v1, as in django-pgtrigger, it cannot be ignored. Under v2 ``pgtrigger.ignore``
    works for it too: the ignore check sits in the trigger's WHEN clause.
    """

    when: When = Before
    vector_field: str | None = None
    document_fields: list[str] | None = None
    config_name: str = "pg_catalog.english"

    def __init__(
        self,
        *,
        name: str | None = None,
        vector_field: str | None = None,
        document_fields: list[str] | None = None,
        config_name: str | None = None,
        ignorable: bool | None = None,
        ignorable_by: str | None = None,
        firing: Firing | str | None = None,
    ) -> None:
        self.vector_field = vector_field or self.vector_field
        self.document_fields = document_fields or self.document_fields
        self.config_name = config_name or self.config_name
        label = name or self.name or "UpdateSearchVector"
        if not self.vector_field:
            raise DefinitionError(
                f'Trigger "{label}": Must provide "vector_field" to update search vector'
            )
        if not self.document_fields or isinstance(self.document_fields, str):
            raise DefinitionError(
                f'Trigger "{label}": Must provide "document_fields" to update search vector'
            )
        if not self.config_name:
            raise DefinitionError(
                f'Trigger "{label}": Must provide "config_name" to update search vector'
            )
        super().__init__(
            name=name,
            operation=Insert | UpdateOf(*self.document_fields),
            ignorable=ignorable,
            ignorable_by=ignorable_by,
            firing=firing,
        )

    def ignore(self, model: Any) -> None:
        raise RuntimeError(f"Cannot ignore {self.__class__.__name__} triggers")

    def get_func(self, model: Any) -> Any:
        return ""

    def render_func(self, model: Any) -> str:
        return ""

    def render_execute(self, model: Any) -> str:
        table = describe(model)
        document_cols = [
            table.field(f, what="document field").column for f in self.document_fields or []
        ]
        vector_col = table.field(self.vector_field or "", what="vector field").column
        return (
            f"tsvector_update_trigger({sqltext.legacy_column(vector_col)},"
            f" {sqltext.legacy_quote(self.config_name)},"
            f" {', '.join(sqltext.legacy_column(c) for c in document_cols)})"
        )

    def v2_execute(self, model: Any) -> str | None:
        table = describe(model)
        document_cols = [
            table.field(f, what="document field").column for f in self.document_fields or []
        ]
        vector_col = table.field(self.vector_field or "", what="vector field").column
        args = [vector_col, self.config_name, *document_cols]
        args_sql = ", ".join(sqltext.string(a) for a in args)
        return f"pg_catalog.tsvector_update_trigger({args_sql})"


__all__ = ["FSM", "Composer", "Protect", "ReadOnly", "SoftDelete", "UpdateSearchVector"]
