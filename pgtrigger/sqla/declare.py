"""Triggers on SQLAlchemy tables: ``__table_args__``, ``Table(...)`` and ``register()``.

A trigger placed among a table's arguments is attached here (SQLAlchemy calls
``_set_parent_with_dispatch`` on every table argument). The triggers of a table are kept in
a weak mapping, never in ``Table.info`` (Alembic would render that into migrations).
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Column, Table, event, inspect
from sqlalchemy.orm import Mapper, MapperEvents
from sqlalchemy.orm.mapper import _mapper_registries

from pgtrigger import registry as trigger_registry
from pgtrigger import table as core_table
from pgtrigger.errors import CompileError, RegistrationError
from pgtrigger.table import FieldDescription, TableDescription
from pgtrigger.triggers import Trigger

_triggers: weakref.WeakKeyDictionary[Table, list[Trigger]] = weakref.WeakKeyDictionary()
_mappers: weakref.WeakKeyDictionary[Table, Mapper[Any]] = weakref.WeakKeyDictionary()
_descriptions: weakref.WeakKeyDictionary[Table, tuple[Any, TableDescription]] = (
    weakref.WeakKeyDictionary()
)


def to_table(target: Any) -> Table:
    """A ``Table`` from a Table, a mapped class or a declarative class being built."""
    if isinstance(target, Table):
        return target
    found = getattr(target, "__table__", None)
    if isinstance(found, Table):
        return found
    raise CompileError(f"Expected a SQLAlchemy Table or mapped class, got {target!r}")


_listening = False


def attach(trigger: Trigger, table: Table) -> None:
    """Attach ``trigger`` to ``table``: registered under its URI, installed by create_all."""
    if not isinstance(table, Table):
        raise RegistrationError(
            f'Trigger "{trigger.name}" can only be placed among a Table\'s arguments, not on {table!r}'
        )
    existing = _triggers.get(table)
    if existing is None:
        existing = _triggers[table] = []
        # Copies made by table.to_metadata() get the triggers too. (A propagate=True listener,
        # which to_metadata() copies, costs 70-190 us per table: 10 times the start-up budget
        # of registering a table's triggers.)
        table.__dict__["to_metadata"] = _CopyKeepingTriggers(table)
    if trigger in existing:
        return  # Table(..., extend_existing=True) passes the same arguments again
    for other in existing:
        if other.name == trigger.name:
            raise RegistrationError(
                f'Trigger name "{trigger.name}" is used twice on table "{_label(table)}"'
            )
    _register(trigger, table)
    existing.append(trigger)
    global _listening
    if not _listening:  # ddl imports this module: imported here, once
        from pgtrigger.sqla import ddl

        ddl.listen()
        _listening = True


def _register(trigger: Trigger, table: Table) -> None:
    """``trigger.register(table)``, minus the layers a plain trigger does not need.

    Start-up registers every declared trigger, in between SQLAlchemy's own work: the URI is
    built from the table directly and hashed once. Subclasses that compute their own URI,
    pgid or registration go through their methods.
    """
    cls = type(trigger)
    if (
        cls.register is not Trigger.register
        or cls.get_uri is not Trigger.get_uri
        or cls.get_pgid is not Trigger.get_pgid
    ):
        trigger.register(table)
        return
    uri = f"{_label(table)}:{trigger.name}"
    try:
        trigger_registry.set(
            uri, model=table, trigger=trigger, pgid=trigger._pgid_of_uri(uri, PGID_DIGITS)
        )
    except RegistrationError:
        if not _registered_as(uri, trigger):
            raise
        # A copy of a table under the same name (to_metadata() into another MetaData): the
        # URI and pgid are the original's; the registry keeps the original.


def _registered_as(uri: str, trigger: Trigger) -> bool:
    try:
        return trigger_registry.registered(uri)[0][1] is trigger
    except LookupError:
        return False


class _CopyKeepingTriggers:
    """``table.to_metadata`` for a table with triggers: the copy gets its triggers."""

    __slots__ = ("_table",)

    def __init__(self, table: Table) -> None:
        self._table = weakref.ref(table)

    def __call__(self, *args: Any, **kwargs: Any) -> Table:
        table = self._table()
        assert table is not None  # called through the table itself
        copy = Table.to_metadata(table, *args, **kwargs)
        for trigger in triggers_of(table):
            attach(trigger, copy)
        return copy


def triggers_of(target: Any) -> list[Trigger]:
    """The triggers declared on a table or mapped class."""
    return list(_triggers.get(to_table(target), ()))


def tables_with_triggers() -> list[Table]:
    return list(_triggers.keys())


def register(target: Any, *triggers: Trigger) -> Any:
    """Attach triggers to a table you do not declare (``register(users_table, Protect(...))``)."""
    table = to_table(target)
    for trigger in triggers:
        attach(trigger, table)
    return target


def _label(table: Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


#: Hex digits of the URI hash in SQLAlchemy pgids: django-pgtrigger's 5 collide for one name
#: on a few hundred tables (a mixin); 12 make that a one-in-billions event. Long trigger names
#: get fewer (at least 5): a pgid is at most 63 bytes. The same as a TableDescription's.
PGID_DIGITS = core_table.PGID_DIGITS


def pgid_digits_of(target: Any) -> int | None:
    return PGID_DIGITS if label_table(target) is not None else None


def label_table(target: Any) -> str | None:
    """The URI prefix of a Table or mapped class, without describing it (registration)."""
    table = target if isinstance(target, Table) else getattr(target, "__table__", None)
    return _label(table) if isinstance(table, Table) else None


def _index_mapper(mapper: Mapper[Any], class_: Any = None) -> None:
    """Remember which mapper maps a table (the first one: a single-table subclass shares it)."""
    table = mapper.local_table
    if isinstance(table, Table):
        known = _mappers.get(table)
        if known is None or _disposed(known):
            _mappers[table] = mapper


def _disposed(mapper: Mapper[Any]) -> bool:
    return inspect(mapper.class_, raiseerr=False) is not mapper


def _index_existing_mappers() -> None:
    """Index the mappers built before this module was imported (later ones: the event)."""
    for registry in list(_mapper_registries):
        for manager in list(getattr(registry, "_managers", ())):
            if manager.is_mapped:
                _index_mapper(manager.mapper)


def _mapper_for(table: Table) -> Mapper[Any] | None:
    """The mapper of ``table``'s class, once it exists (attribute names come from it).

    A dictionary lookup: an index kept by a mapper event, not a scan of every mapper per
    table (which made describing 500 tables quadratic).
    """
    found = _mappers.get(table)
    if found is not None and _disposed(found):
        del _mappers[table]
        _index_existing_mappers()  # a registry was disposed: another mapper may map it now
        found = _mappers.get(table)
    return found


SchemaMap = Mapping[str | None, str | None]
_translation: contextvars.ContextVar[SchemaMap | None] = contextvars.ContextVar(
    "pgtrigger_schema_translation", default=None
)


@contextlib.contextmanager
def translated(schema_map: SchemaMap | None) -> Iterator[None]:
    """Describe tables under a ``schema_translate_map`` while inside (None: as declared).

    URIs and pgids stay the code's (``post:name``); only the schema the SQL names changes.
    """
    token = _translation.set(schema_map or None)
    try:
        yield
    finally:
        _translation.reset(token)


def effective_schema(table: Table) -> str | None:
    """The schema ``table`` lives in under the current translation."""
    schema_map = _translation.get()
    if schema_map and table.schema in schema_map:
        return schema_map[table.schema]
    return table.schema


def _is_auto(column: Column[Any]) -> bool:
    return column.onupdate is not None or column.server_onupdate is not None


def describe_table(target: Any) -> TableDescription | None:
    """The core's view of a table; attribute names come from the mapper when there is one."""
    if isinstance(target, Table):
        table = target
    elif isinstance(getattr(target, "__table__", None), Table):
        table = target.__table__
    else:
        return None
    mapper = _mapper_for(table)
    schema = effective_schema(table)
    # Tables only grow (columns added, a mapper found later): both are part of the key, and
    # so is the schema a translate map puts the table in.
    key = (len(table.columns), id(mapper) if mapper is not None else None, schema)
    cached = _descriptions.get(table)
    if cached is not None and cached[0] == key:
        return cached[1]
    names: dict[str, str] = {}
    if mapper is not None:
        for prop in mapper.column_attrs:
            for col in prop.columns:
                if isinstance(col, Column) and col.table is table:
                    names.setdefault(col.name, prop.key)
    fields = tuple(
        FieldDescription(
            name=names.get(col.name, col.key),
            column=col.name,
            nullable=bool(col.nullable),
            auto_timestamp=_is_auto(col),
            sql_type=getattr(col.type, "__visit_name__", None),
            source=col,
        )
        for col in table.columns
    )
    description = TableDescription(
        name=table.name,
        schema=schema,
        primary_key=tuple(col.name for col in table.primary_key.columns),
        fields=fields,
        label=_label(table),
        template="v2",
        target=table,
    )
    _descriptions[table] = (key, description)
    return description


_index_existing_mappers()
event.listen(
    Mapper,
    # after_mapper_constructed is SQLAlchemy 2.0.2+; instrument_class fires in every version.
    "after_mapper_constructed"
    if hasattr(MapperEvents, "after_mapper_constructed")
    else "instrument_class",
    _index_mapper,
)
core_table.register_describer(describe_table, label=label_table)
core_table.register_pgid_digits(pgid_digits_of)
