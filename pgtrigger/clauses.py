"""The clauses of a ``CREATE TRIGGER`` statement: level, when, operation, timing, referencing.

Same names, values and ``str()`` forms as django-pgtrigger, so migration files that build
them (``pgtrigger.Operation(name="UPDATE")``) keep loading. Clauses compare by value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pgtrigger.errors import DefinitionError

if TYPE_CHECKING:
    from pgtrigger.table import FieldRef, TableDescription


class _Primitive:
    """A keyword clause with a fixed set of values."""

    values: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str) -> None:
        if name not in self.values:
            raise DefinitionError(
                f"Invalid {type(self).__name__} {name!r}; expected one of {', '.join(self.values)}"
            )
        self.name = name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"pgtrigger.{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Primitive) and type(other) is type(self) and other.name == self.name
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))


class Level(_Primitive):
    values = ("ROW", "STATEMENT")


Row = Level("ROW")
"""Row-level triggers (the default)."""

Statement = Level("STATEMENT")
"""Statement-level triggers."""


class When(_Primitive):
    values = ("BEFORE", "AFTER", "INSTEAD OF")


Before = When("BEFORE")
After = When("AFTER")
InsteadOf = When("INSTEAD OF")


class Timing(_Primitive):
    values = ("IMMEDIATE", "DEFERRED")


Immediate = Timing("IMMEDIATE")
"""Deferrable triggers that fire right after the statement unless deferred."""

Deferred = Timing("DEFERRED")
"""Deferrable triggers that fire at the end of the transaction."""


class Firing(_Primitive):
    """When the trigger fires under logical replication (``pg_trigger.tgenabled``).

    A session's ``session_replication_role`` is ``origin`` for ordinary writes and
    ``replica`` in a logical replication apply worker (the subscriber applying changes).
    """

    values = ("ORIGIN", "REPLICA", "ALWAYS", "DISABLED")
    #: ``pg_trigger.tgenabled`` for each value.
    codes: ClassVar[dict[str, str]] = {
        "ORIGIN": "O",
        "REPLICA": "R",
        "ALWAYS": "A",
        "DISABLED": "D",
    }
    #: What ``ALTER TABLE ... <keywords> TRIGGER`` says for each value.
    keywords: ClassVar[dict[str, str]] = {
        "ORIGIN": "ENABLE",
        "REPLICA": "ENABLE REPLICA",
        "ALWAYS": "ENABLE ALWAYS",
        "DISABLED": "DISABLE",
    }

    @property
    def code(self) -> str:
        """The ``pg_trigger.tgenabled`` character."""
        return self.codes[self.name]

    @property
    def keyword(self) -> str:
        """``ENABLE``, ``ENABLE REPLICA``, ``ENABLE ALWAYS`` or ``DISABLE``."""
        return self.keywords[self.name]

    @classmethod
    def from_code(cls, code: str) -> Firing:
        """The firing a ``tgenabled`` character stands for."""
        for name, known in cls.codes.items():
            if known == code:
                return cls(name)
        raise DefinitionError(f"Unknown pg_trigger.tgenabled value {code!r}")


Origin = Firing("ORIGIN")
"""Fires for ordinary writes, not when a logical replication subscriber applies changes (the
default, PostgreSQL's ``ENABLE TRIGGER``)."""

Replica = Firing("REPLICA")
"""Fires only when a logical replication subscriber applies changes (``ENABLE REPLICA``)."""

Always = Firing("ALWAYS")
"""Fires for ordinary writes and replicated ones alike (``ENABLE ALWAYS``)."""

Disabled = Firing("DISABLED")
"""Installed but switched off (``DISABLE TRIGGER``) until ``pgtrigger enable``."""


class Operation(_Primitive):
    """One event (INSERT, UPDATE, DELETE, TRUNCATE); combine with ``|``."""

    values = ("UPDATE", "DELETE", "TRUNCATE", "INSERT")

    def __or__(self, other: Operation) -> Operations:
        if not isinstance(other, Operation):
            return NotImplemented
        return Operations(*self, *other)

    def __iter__(self) -> Iterator[Operation]:
        return iter([self])

    def __contains__(self, other: object) -> bool:
        return any(op == other or op.event == getattr(other, "event", None) for op in self)

    @property
    def event(self) -> str:
        """The event keyword, ``UPDATE`` for ``UpdateOf`` too."""
        return self.name

    def render(self, table: TableDescription | None = None) -> str:
        """The SQL of the operation; ``UpdateOf`` resolves fields against the table."""
        return str(self)


class Operations(Operation):
    """Several operations OR-ed together (``pgtrigger.Update | pgtrigger.Delete``)."""

    def __init__(self, *operations: Operation) -> None:
        flat: list[Operation] = []
        for operation in operations:
            if not isinstance(operation, Operation):
                raise DefinitionError(f"Operations() takes Operation objects, got {operation!r}")
            for op in operation:
                if op.event in {o.event for o in flat}:
                    raise DefinitionError(f"Operation {op.event} is listed twice")
                flat.append(op)
        if not flat:
            raise DefinitionError("Operations() needs at least one operation")
        self.operations = tuple(flat)
        self.name = str(self)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __str__(self) -> str:
        return " OR ".join(str(operation) for operation in self.operations)

    def __repr__(self) -> str:
        return " | ".join(repr(op) for op in self.operations)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Operations) and other.operations == self.operations

    def __hash__(self) -> int:
        return hash(self.operations)

    @property
    def event(self) -> str:
        return str(self)

    def render(self, table: TableDescription | None = None) -> str:
        return " OR ".join(op.render(table) for op in self.operations)


Update = Operation("UPDATE")
Delete = Operation("DELETE")
Truncate = Operation("TRUNCATE")
Insert = Operation("INSERT")


class UpdateOf(Operation):
    """``UPDATE OF col, ...``: fire only when one of these fields is an UPDATE target."""

    def __init__(self, *columns: str | FieldRef) -> None:
        from pgtrigger.table import field_arg

        if not columns:
            raise DefinitionError("Must provide at least one column to UpdateOf()")
        self.columns = tuple(field_arg(column, "UpdateOf()") for column in columns)
        self.name = "UPDATE"

    @property
    def event(self) -> str:
        return "UPDATE"

    def __str__(self) -> str:
        from pgtrigger import sqltext

        return "UPDATE OF " + ", ".join(sqltext.legacy_quote(str(col)) for col in self.columns)

    def __repr__(self) -> str:
        return f"pgtrigger.UpdateOf({', '.join(repr(c) for c in self.columns)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UpdateOf) and other.columns == self.columns

    def __hash__(self) -> int:
        return hash(("UpdateOf", self.columns))

    def render(self, table: TableDescription | None = None) -> str:
        if table is None:
            return str(self)
        from pgtrigger import sqltext

        columns = [table.field(col, what="UpdateOf field").column for col in self.columns]
        return "UPDATE OF " + ", ".join(sqltext.ident(col, "UpdateOf column") for col in columns)


class Referencing:
    """The ``REFERENCING`` clause of a statement-level trigger (transition tables)."""

    def __init__(self, *, old: str | None = None, new: str | None = None) -> None:
        if not old and not new:
            raise DefinitionError(
                'Must provide either "old" and/or "new" to the referencing construct of a trigger'
            )
        for alias in (old, new):
            if alias is not None and (not isinstance(alias, str) or not alias.isidentifier()):
                raise DefinitionError(
                    f"Referencing alias {alias!r} must be a plain identifier (letters, digits, _)"
                )
        self.old = old
        self.new = new

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Referencing) and (self.old, self.new) == (other.old, other.new)

    def __hash__(self) -> int:
        return hash(("Referencing", self.old, self.new))

    def __repr__(self) -> str:
        return f"pgtrigger.Referencing(old={self.old!r}, new={self.new!r})"

    def __str__(self) -> str:
        # django-pgtrigger's exact text (trailing spaces included): the v1 hash depends on it.
        ref = "REFERENCING"
        if self.old:
            ref += f" OLD TABLE AS {self.old} "
        if self.new:
            ref += f" NEW TABLE AS {self.new} "
        return ref


def coerce_clause(value: Any, kind: type[_Primitive], attribute: str, trigger: str) -> Any:
    """Accept a clause object or its keyword string; name the attribute when it is neither."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            if kind is Operation:
                parts = [Operation(part.strip().upper()) for part in value.split(" OR ")]
                return parts[0] if len(parts) == 1 else Operations(*parts)
            return kind(value.upper())
        except DefinitionError:
            pass
    raise DefinitionError(f'Trigger "{trigger}": Invalid "{attribute}" attribute: {value!r}')
