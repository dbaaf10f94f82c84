"""What the compiler knows about a table: the contract between the core and an integration.

An integration (SQLAlchemy, Django) turns its own table or model into a ``TableDescription``;
the compiler never looks at ORM objects itself. Integrations register a *describer* so that
trigger hooks written for django-pgtrigger (``get_func(self, model)``) still receive the
ORM object while the core works from the description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgtrigger import sqltext
from pgtrigger.errors import CompileError, DefinitionError, UnknownFieldError

if TYPE_CHECKING:
    from pgtrigger.conditions import Q

TEMPLATES = ("v1", "v2")


@dataclass(frozen=True)
class FieldDescription:
    """One column as a trigger sees it."""

    name: str
    column: str
    nullable: bool = True
    #: Maintained automatically on write (Django ``auto_now``); ``exclude_auto`` skips it.
    auto_timestamp: bool = False
    #: SQL type, when known (informational, and for casts the compiler may need).
    sql_type: str | None = None
    #: Many-to-many style attributes have no column on this table and cannot be used.
    many_to_many: bool = False
    #: The integration's own field object, handed to ``Func`` templates as ``fields.<name>``.
    source: Any = None


@dataclass(frozen=True)
class TableDescription:
    """A table as the compiler needs it. Build one directly, or let an integration do it."""

    name: str
    fields: tuple[FieldDescription, ...] = ()
    schema: str | None = None
    #: Column names of the primary key (several for a composite key).
    primary_key: tuple[str, ...] = ()
    #: The URI prefix: ``app_label.Model`` (Django), ``table`` or ``schema.table`` (SQLAlchemy).
    label: str | None = None
    #: Default install template for this table's triggers.
    template: str = "v2"
    #: Schema holding django-pgtrigger's ``_pgtrigger_should_ignore`` (v1 only).
    ignore_func_schema: str = "public"
    #: The table name exactly as django-pgtrigger spelled it (``db_table``), for v1 text.
    legacy_name: str | None = None
    #: ``meta`` for ``Func`` templates (Django's ``_meta``); defaults to this description.
    meta: Any = None
    #: The ORM object described (model class, ``Table``), if any.
    target: Any = None
    #: Integration hook compiling a ``Q`` to SQL (Django compiles through its own ORM).
    q_compiler: Callable[[Q, TableDescription], str] | None = None
    #: Is this a view (INSTEAD OF triggers) or a partitioned table?
    kind: str = "table"
    #: Hex digits of the URI hash in the pgid: 12 for every table, 5 for Django models (the
    #: names django-pgtrigger gave installed triggers). A table described by hand gets the
    #: pgid its model or ``Table`` gets, so describing it another way renames nothing.
    pgid_digits: int = 12
    #: Raised for an unknown field name: integrations pass a subclass that is also their
    #: ORM's own error (Django's ``FieldDoesNotExist``), so users' handlers keep working.
    unknown_field_error: type[CompileError] = UnknownFieldError

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise CompileError(
                f"Unknown install template {self.template!r} for table {self.name!r};"
                f" expected one of {', '.join(TEMPLATES)}"
            )
        sqltext.ident(self.name, "table name")
        if self.schema is not None:
            sqltext.ident(self.schema, "schema name")
        for fld in self.fields:
            sqltext.ident(fld.column, f"column of field {fld.name!r} on table {self.name!r}")

    # -- naming -----------------------------------------------------------------------------
    @property
    def uri_prefix(self) -> str:
        if self.label:
            return self.label
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def display_name(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    @property
    def sql_name(self) -> str:
        """The quoted, schema-qualified table name."""
        return sqltext.qualified(self.schema, self.name)

    @property
    def v1_name(self) -> str:
        """The ``table`` argument django-pgtrigger's v1 template would have received."""
        if self.legacy_name is not None:
            return self.legacy_name
        if '"' in self.name or (self.schema and '"' in self.schema):
            return self.sql_name
        return f'{self.schema}"."{self.name}' if self.schema else self.name

    # -- fields -----------------------------------------------------------------------------
    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields if not f.many_to_many]

    def field(self, name: str | FieldRef, what: str = "field") -> FieldDescription:
        """Find a field by attribute name, else by column name; explain what exists if absent.

        ``name`` may be a :class:`FieldRef` (an integration's attribute or column object).
        """
        if isinstance(name, FieldRef):
            name = name.name_for(self, what)
        for fld in self.fields:
            if fld.name == name:
                return self._usable(fld, what)
        if name == "pk" and len(self.primary_key) == 1:
            name = self.primary_key[0]  # Django's alias for the primary key
        by_column = [fld for fld in self.fields if fld.column == name]
        if len(by_column) == 1:
            return self._usable(by_column[0], what)
        import difflib  # error path only: not imported at start-up

        known = sorted({f.name for f in self.fields} | {f.column for f in self.fields})
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise self.unknown_field_error(
            f"{what} {name!r}: table {self.display_name!r} has no field named {name!r}{hint}"
            f" (fields: {', '.join(self.field_names) or 'none'})"
        )

    def _usable(self, fld: FieldDescription, what: str) -> FieldDescription:
        if fld.many_to_many:
            raise CompileError(
                f"{what} {fld.name!r} of table {self.display_name!r} is a many-to-many field;"
                " it has no column on this table and cannot be used in a trigger"
            )
        return fld

    def primary_key_columns(self) -> tuple[str, ...]:
        if not self.primary_key:
            raise CompileError(f"Table {self.display_name!r} has no primary key")
        return self.primary_key

    # -- Func templates ---------------------------------------------------------------------
    def template_context(self) -> dict[str, Any]:
        """``meta``, ``fields`` and ``columns`` for ``Func`` templates."""
        fields = AttrDict({f.name: (f.source if f.source is not None else f) for f in self.fields})
        columns = AttrDict({f.name: f.column for f in self.fields})
        meta = self.meta if self.meta is not None else _DefaultMeta(self)
        return {"meta": meta, "fields": fields, "columns": columns}


class AttrDict(dict[str, Any]):
    """A dict whose keys are also attributes (``{columns.status}`` in a Func template)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class _DefaultMeta:
    """``{meta.db_table}`` and friends for tables that are not Django models.

    A plain class (not a dataclass): building dataclasses costs at import time.
    """

    __slots__ = ("table",)

    def __init__(self, table: TableDescription) -> None:
        self.table = table

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DefaultMeta) and other.table == self.table

    def __hash__(self) -> int:
        return hash(self.table)

    def __repr__(self) -> str:
        return f"_DefaultMeta(table={self.table!r})"

    @property
    def db_table(self) -> str:
        return self.table.v1_name

    @property
    def table_name(self) -> str:
        return self.table.name

    @property
    def schema(self) -> str | None:
        return self.table.schema

    @property
    def sql_name(self) -> str:
        return self.table.sql_name

    @property
    def pk_columns(self) -> tuple[str, ...]:
        return self.table.primary_key


class FieldRef:
    """A field given as an integration's object (a SQLAlchemy mapped attribute, column or
    ``mapped_column()``) instead of its name; named when compiled for a table (in a class
    body the attribute has no name yet)."""

    __slots__ = ("_name_of", "target")

    def __init__(
        self, target: Any, name_of: Callable[[Any, TableDescription | None, str], str]
    ) -> None:
        self.target = target
        self._name_of = name_of

    def name_for(self, table: TableDescription | None, what: str = "field") -> str:
        """The field (or column) name in ``table``; raises CompileError when it is not one."""
        return self._name_of(self.target, table, what)

    def __str__(self) -> str:
        try:
            return self.name_for(None)
        except CompileError:
            return repr(self.target)

    def __repr__(self) -> str:
        return f"pgtrigger.FieldRef({self.target!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldRef) and other.target is self.target

    def __hash__(self) -> int:
        return hash(("FieldRef", id(self.target)))


_field_coercers: list[Callable[[Any], FieldRef | None]] = []


def register_field_coercer(coerce: Callable[[Any], FieldRef | None]) -> None:
    """Let an integration accept its own objects where a field name is expected."""
    if coerce not in _field_coercers:
        _field_coercers.append(coerce)


def field_arg(value: Any, what: str) -> str | FieldRef:
    """A field argument checked at definition time: a non-empty name, or an object an
    integration names (``UpdateOf(Post.status)``, ``SoftDelete(field=Post.is_active)``)."""
    if isinstance(value, str):
        if value:
            return value
    elif isinstance(value, FieldRef):
        return value
    else:
        if not _field_coercers and type(value).__module__.startswith("sqlalchemy."):
            import pgtrigger.sqla  # noqa: F401  (registers its coercer; imported on first use)
        for coerce in _field_coercers:
            found = coerce(value)
            if found is not None:
                return found
    raise DefinitionError(
        f"{what} takes field names (or SQLAlchemy mapped attributes and columns), got {value!r}"
    )


def field_label(value: str | FieldRef) -> str:
    """A field argument as text for messages and for SQL written before a table is known."""
    return value if isinstance(value, str) else str(value)


Describer = Callable[[Any], "TableDescription | None"]
Labeler = Callable[[Any], "str | None"]
_describers: list[Describer] = []
_labelers: list[Labeler] = []

#: Hex digits of the URI hash in a pgid. django-pgtrigger's 5 stay for Django models (installed
#: triggers keep their names); every other table gets ``PGID_DIGITS``, so one trigger name on
#: hundreds of tables (a mixin) does not collide.
DJANGO_PGID_DIGITS = 5
PGID_DIGITS = 12
_pgid_digits: list[Callable[[Any], int | None]] = []


def register_pgid_digits(digits_of: Callable[[Any], int | None]) -> None:
    """Let an integration choose the hash length of its models' pgids (None: not mine)."""
    if digits_of not in _pgid_digits:
        _pgid_digits.append(digits_of)


def pgid_digits(target: Any) -> int:
    """How many hex digits ``target``'s pgids carry: the description's own, an integration's
    answer for its objects, else django-pgtrigger's 5 (Django models)."""
    if isinstance(target, TableDescription):
        return target.pgid_digits
    for digits_of in _pgid_digits:
        found = digits_of(target)
        if found is not None:
            return found
    return DJANGO_PGID_DIGITS


def register_describer(describer: Describer, *, label: Labeler | None = None) -> Describer:
    """Let an integration turn its own objects (models, tables) into descriptions.

    ``label`` returns the URI prefix of such an object (None for others) without describing
    it: registering a trigger needs only its URI, so start-up never describes a table.
    """
    if describer not in _describers:
        _describers.append(describer)
    if label is not None and label not in _labelers:
        _labelers.append(label)
    return describer


def label_of(target: Any) -> str:
    """The URI prefix of ``target`` (``app.Model``, ``[schema.]table``), cheaply."""
    if isinstance(target, TableDescription):
        return target.uri_prefix
    for labeler in _labelers:
        found = labeler(target)
        if found is not None:
            return found
    return describe(target).uri_prefix


def describe(target: Any) -> TableDescription:
    """The description of ``target``: a TableDescription, or an object an integration knows."""
    if isinstance(target, TableDescription):
        return target
    for describer in _describers:
        found = describer(target)
        if found is not None:
            return found
    raise CompileError(
        f"Cannot compile a trigger for {target!r}: pass a pgtrigger.TableDescription, or an"
        " object of an installed integration (a SQLAlchemy Table or mapped class, a Django model)"
    )
