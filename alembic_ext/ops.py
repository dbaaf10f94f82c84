"""Migration operations: ``op.create_pgtrigger``, ``op.drop_pgtrigger``, ``op.replace_pgtrigger``.

Each op carries a frozen trigger: a compiled ``pgtrigger.compiler.Trigger`` (its template is
frozen once released) or a ``Snapshot`` read from the database, so later edits to models never
change what an old migration does. Execution is separate (``Operations.implementation_for``)
and sends SQL unmangled: no ``text()`` bind parameters, no ``%`` doubling; in ``--sql`` mode the
SQL is written out as is.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import MigrateOperation, Operations

from alembic_ext import batch
from alembic_ext.snapshot import Snapshot
from pgtrigger import compiler, sqltext

Frozen = compiler.Trigger | Snapshot


def _uninstall(trigger: Frozen) -> str:
    return trigger.uninstall_sql


@Operations.register_operation("create_pgtrigger")
class CreatePgTriggerOp(MigrateOperation):
    """Install a trigger (and its function)."""

    def __init__(self, uri: str, trigger: Frozen) -> None:
        self.uri = uri
        self.trigger = trigger

    @classmethod
    def create_pgtrigger(cls, operations: Operations, uri: str, trigger: Frozen) -> Any:
        return operations.invoke(cls(uri, trigger))

    def reverse(self) -> DropPgTriggerOp:
        return DropPgTriggerOp(self.uri, self.trigger)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_pgtrigger", self.uri, self.trigger.pgid, self.trigger.hash)


@Operations.register_operation("drop_pgtrigger")
class DropPgTriggerOp(MigrateOperation):
    """Drop a trigger (and its function); ``trigger`` is what ``downgrade`` puts back."""

    def __init__(self, uri: str, trigger: Frozen) -> None:
        self.uri = uri
        self.trigger = trigger

    @classmethod
    def drop_pgtrigger(cls, operations: Operations, uri: str, trigger: Frozen) -> Any:
        return operations.invoke(cls(uri, trigger))

    def reverse(self) -> CreatePgTriggerOp:
        return CreatePgTriggerOp(self.uri, self.trigger)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("remove_pgtrigger", self.uri, self.trigger.pgid, self.trigger.hash)


@Operations.register_operation("replace_pgtrigger")
class ReplacePgTriggerOp(MigrateOperation):
    """Replace an installed trigger with a new version; ``previous`` is the one it replaces."""

    def __init__(self, uri: str, trigger: Frozen, previous: Frozen) -> None:
        self.uri = uri
        self.trigger = trigger
        self.previous = previous

    @classmethod
    def replace_pgtrigger(
        cls, operations: Operations, uri: str, trigger: Frozen, previous: Frozen
    ) -> Any:
        return operations.invoke(cls(uri, trigger, previous))

    def reverse(self) -> ReplacePgTriggerOp:
        return ReplacePgTriggerOp(self.uri, self.previous, self.trigger)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("replace_pgtrigger", self.uri, self.previous.hash, self.trigger.hash)


def _server_version(operations: Operations) -> int | None:
    if operations.migration_context.as_sql:
        return None
    from pgtrigger.sqla.executor import server_version

    return server_version(operations.get_bind().dialect)


def run_sql(operations: Operations, sql: str) -> None:
    """Send pgtrigger SQL through the migration: verbatim, online or offline."""
    context = operations.migration_context
    if context.as_sql:
        context.impl.static_output(sql.strip() + "\n")
        return
    from pgtrigger.sqla.executor import ConnectionExecutor

    ConnectionExecutor(operations.get_bind()).execute(sql)


def _install_sql(operations: Operations, trigger: Frozen) -> str:
    """Online, a compiled trigger's names are qualified with the schema its table is in (so
    the install runs with only built-ins on the search path; see docs/security.md)."""
    version = _server_version(operations)
    if operations.migration_context.as_sql or not isinstance(trigger, compiler.Trigger):
        return trigger.install_sql_for(version)
    from pgtrigger import engine
    from pgtrigger.sqla.executor import ConnectionExecutor

    return engine.install_sql(ConnectionExecutor(operations.get_bind()), trigger, version)


@Operations.implementation_for(CreatePgTriggerOp)
def _create(operations: Operations, operation: CreatePgTriggerOp) -> None:
    run_sql(operations, _install_sql(operations, operation.trigger))


@Operations.implementation_for(DropPgTriggerOp)
def _drop(operations: Operations, operation: DropPgTriggerOp) -> None:
    run_sql(operations, _uninstall(operation.trigger))


@Operations.implementation_for(ReplacePgTriggerOp)
def _replace(operations: Operations, operation: ReplacePgTriggerOp) -> None:
    sql = _install_sql(operations, operation.trigger)
    previous = operation.previous
    if previous.is_constraint and not operation.trigger.is_constraint:
        # CREATE OR REPLACE TRIGGER cannot replace a constraint trigger: drop it first (the
        # migration's transaction hides the gap).
        sql = (
            f"DROP TRIGGER IF EXISTS {sqltext.ident(previous.pgid)} ON {previous.quoted_table};\n"
            + sql
        )
    run_sql(operations, sql)


# Migration scripts import this module: re-creating batches in them keep their triggers
# whatever env.py does.
batch.install()
