"""Render pgtrigger ops into migration scripts: self-contained Python, no model imports."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext

from alembic_ext.ops import CreatePgTriggerOp, DropPgTriggerOp, ReplacePgTriggerOp
from alembic_ext.snapshot import Snapshot
from pgtrigger import compiler


def _value(value: Any, indent: str) -> str:
    if isinstance(value, str) and "\n" in value:
        return (
            "(\n"
            + "".join(f"{indent}    {line!r}\n" for line in value.splitlines(keepends=True))
            + f"{indent})"
        )
    return repr(value)


def _call(path: str, kwargs: dict[str, Any], indent: str) -> str:
    inner = indent + "    "
    args = "".join(f"{inner}{key}={_value(val, inner)},\n" for key, val in kwargs.items())
    return f"{path}(\n{args}{indent})"


def render_frozen(trigger: Any, autogen_context: AutogenContext, indent: str = "    ") -> str:
    """Python source that rebuilds ``trigger`` exactly (a compiled trigger or a snapshot)."""
    autogen_context.imports.add("import alembic_ext.ops  # noqa: F401 (registers op.*_pgtrigger)")
    if isinstance(trigger, Snapshot):
        autogen_context.imports.add("from alembic_ext.snapshot import Snapshot")
        return _call("Snapshot", dict(vars(trigger)), indent)
    if isinstance(trigger, compiler.Trigger):
        autogen_context.imports.add("import pgtrigger.compiler")
        path, _, sql_kwargs = trigger.sql.deconstruct()
        sql = _call(path, sql_kwargs, indent + "    ")
        return f"pgtrigger.compiler.Trigger(\n{indent}    name={trigger.name!r},\n{indent}    sql={sql},\n{indent})"
    raise TypeError(f"Cannot render {trigger!r} into a migration")


@renderers.dispatch_for(CreatePgTriggerOp)
def _render_create(autogen_context: AutogenContext, op: CreatePgTriggerOp) -> str:
    return f"op.create_pgtrigger(\n    {op.uri!r},\n    {render_frozen(op.trigger, autogen_context)},\n)"


@renderers.dispatch_for(DropPgTriggerOp)
def _render_drop(autogen_context: AutogenContext, op: DropPgTriggerOp) -> str:
    return (
        f"op.drop_pgtrigger(\n    {op.uri!r},\n    {render_frozen(op.trigger, autogen_context)},\n)"
    )


@renderers.dispatch_for(ReplacePgTriggerOp)
def _render_replace(autogen_context: AutogenContext, op: ReplacePgTriggerOp) -> str:
    return (
        f"op.replace_pgtrigger(\n    {op.uri!r},\n"
        f"    trigger={render_frozen(op.trigger, autogen_context)},\n"
        f"    previous={render_frozen(op.previous, autogen_context)},\n)"
    )
