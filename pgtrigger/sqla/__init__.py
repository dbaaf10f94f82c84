"""SQLAlchemy integration: triggers in ``__table_args__``, installed by ``create_all``.

```python
class Post(Base):
    __tablename__ = "post"
    ...
    __table_args__ = (pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),)
```

Importing this module (``import pgtrigger.sqla``; placing a trigger among a table's
arguments does it for you) hooks every Engine so that ``pgtrigger.ignore`` and
``pgtrigger.schema`` apply to its connections.
"""

from __future__ import annotations

from typing import Any

from pgtrigger import registry
from pgtrigger import runtime as core_runtime
from pgtrigger.clauses import Timing
from pgtrigger.sqla.declare import describe_table, register, tables_with_triggers, triggers_of
from pgtrigger.sqla.expressions import NEW, OLD, Expression, when
from pgtrigger.sqla.manage import (
    disable,
    enable,
    install,
    ls,
    prunable,
    prune,
    targets,
    uninstall,
)
from pgtrigger.sqla.runtime import install_hooks

install_hooks()


_INSTALLED_CONSTRAINTS = (
    "SELECT tgname FROM pg_trigger WHERE tgconstraint <> 0 AND tgname = ANY(:names) ORDER BY 1"
)


def constraints(timing: Timing, *uris: str, bind: Any) -> Any:
    """``SET CONSTRAINTS`` for deferrable triggers, in ``bind``'s current transaction.

    ``bind`` is a Connection, Session, AsyncConnection or AsyncSession (then await the
    result). With no URI: every registered deferrable trigger installed in that database.
    """
    from sqlalchemy import text

    pgids = core_runtime.deferrable_pgids(*uris)
    if uris:
        return bind.execute(text(core_runtime.constraints_sql(timing, pgids)))
    find = text(_INSTALLED_CONSTRAINTS)
    if type(bind).__module__.startswith("sqlalchemy.ext.asyncio"):

        async def run_async() -> None:
            found = (await bind.execute(find, {"names": pgids})).scalars().all()
            if found:
                await bind.execute(text(core_runtime.constraints_sql(timing, found)))

        return run_async()
    found = bind.execute(find, {"names": pgids}).scalars().all()
    if found:
        bind.execute(text(core_runtime.constraints_sql(timing, found)))
    return None


def registered(*uris: str) -> list[tuple[Any, Any]]:
    """(table, trigger) pairs of SQLAlchemy tables, for the URIs given or all of them."""
    from sqlalchemy import Table

    return [(t, trig) for t, trig in registry.registered(*uris) if isinstance(t, Table)]


__all__ = [
    "NEW",
    "OLD",
    "Expression",
    "constraints",
    "describe_table",
    "disable",
    "enable",
    "install",
    "ls",
    "prunable",
    "prune",
    "register",
    "registered",
    "tables_with_triggers",
    "targets",
    "triggers_of",
    "uninstall",
    "when",
]
