"""Install, uninstall, enable, disable, prune and list the triggers of SQLAlchemy tables.

Every call reads the catalog once and runs its SQL in one transaction on ``bind``: an Engine
(a transaction is opened and committed), a Connection (inside its transaction, or a new one
committed on success), an AsyncEngine or an AsyncConnection (awaitable variants: ``a``-prefixed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection, Engine

from pgtrigger import engine, registry
from pgtrigger.sqla import declare
from pgtrigger.sqla.executor import ConnectionExecutor

T = TypeVar("T")


def _declared() -> frozenset[str]:
    """Every pgid code declares (any MetaData): none of them is an orphan."""
    return registry.all_pgids()


Schemas = str | Sequence[str] | None


def _schemas(schema: Schemas) -> list[str] | None:
    if schema is None:
        return None
    return [schema] if isinstance(schema, str) else list(schema)


def _tables(metadata: MetaData | Iterable[Table] | None) -> set[Table] | None:
    if metadata is None:
        return None
    if isinstance(metadata, MetaData):
        return set(metadata.tables.values())
    return {declare.to_table(t) for t in metadata}


def targets(*uris: str, metadata: MetaData | Iterable[Table] | None = None) -> list[engine.Target]:
    """Compiled targets for the URIs given, or every trigger on SQLAlchemy tables."""
    tables = _tables(metadata)
    if uris:
        pairs = [(uri, *registry.registered(uri)[0]) for uri in uris]
    else:
        pairs = [(uri, model, trigger) for uri, model, trigger, _ in registry.items()]
    result = []
    for uri, model, trigger in pairs:
        if not isinstance(model, Table) or (tables is not None and model not in tables):
            continue
        result.append(engine.Target(uri, trigger.compile(model)))
    return result


def _run(bind: Any, work: Callable[[ConnectionExecutor], T], read_only: bool = False) -> T:
    if isinstance(bind, Engine):
        if read_only:  # one catalog query: consistent on its own, no transaction needed
            with bind.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
                return work(ConnectionExecutor(connection))
        with bind.begin() as connection:
            return work(ConnectionExecutor(connection))
    if isinstance(bind, Connection):
        if bind.in_transaction():
            if read_only:
                return work(ConnectionExecutor(bind))
            with bind.begin_nested():
                return work(ConnectionExecutor(bind))
        with bind.begin():
            return work(ConnectionExecutor(bind))
    raise TypeError(
        f"bind must be a SQLAlchemy Engine or Connection (use the a-prefixed functions for"
        f" async ones), got {bind!r}"
    )


def ls(bind: Any, *uris: str, schema: Schemas = None, metadata: Any = None) -> list[engine.Status]:
    """Status of each declared trigger (per schema), then (with no URI) the orphans to prune."""
    declared = targets(*uris, metadata=metadata)
    return _run(
        bind,
        lambda ex: engine.ls(ex, declared, _schemas(schema), not uris, _declared()),
        read_only=True,
    )


def install(
    bind: Any,
    *uris: str,
    schema: Schemas = None,
    metadata: Any = None,
    prune: bool | None = None,
    force: bool = False,
    lock_timeout: str | None = None,
) -> list[engine.Status]:
    """Install missing or outdated triggers; with no URI, also prune orphans (``prune=False``
    to keep them)."""
    declared = targets(*uris, metadata=metadata)
    do_prune = (not uris) if prune is None else prune
    return _run(
        bind,
        lambda ex: engine.install(
            ex,
            declared,
            schemas=_schemas(schema),
            force=force,
            prune=do_prune,
            lock_timeout=lock_timeout,
            declared_pgids=_declared(),
        ),
    )


def uninstall(
    bind: Any,
    *uris: str,
    schema: Schemas = None,
    metadata: Any = None,
    lock_timeout: str | None = None,
) -> list[engine.Status]:
    """Drop triggers (and their functions)."""
    declared = targets(*uris, metadata=metadata)
    return _run(
        bind,
        lambda ex: engine.uninstall(
            ex, declared, schemas=_schemas(schema), lock_timeout=lock_timeout
        ),
    )


def enable(
    bind: Any, *uris: str, schema: Schemas = None, metadata: Any = None
) -> list[engine.Status]:
    declared = targets(*uris, metadata=metadata)
    return _run(bind, lambda ex: engine.set_enabled(ex, declared, True, schemas=_schemas(schema)))


def disable(
    bind: Any, *uris: str, schema: Schemas = None, metadata: Any = None
) -> list[engine.Status]:
    declared = targets(*uris, metadata=metadata)
    return _run(bind, lambda ex: engine.set_enabled(ex, declared, False, schemas=_schemas(schema)))


def prunable(bind: Any, schema: Schemas = None, metadata: Any = None) -> list[engine.Status]:
    """pgtrigger triggers in the database that no declared trigger matches."""
    return [row for row in ls(bind, schema=schema, metadata=metadata) if row.status == engine.PRUNE]


def prune(bind: Any, schema: Schemas = None, metadata: Any = None) -> list[engine.Status]:
    declared = targets(metadata=metadata)
    return _run(
        bind,
        lambda ex: engine.prune(ex, declared, schemas=_schemas(schema), declared_pgids=_declared()),
    )


# -- asyncio: the same functions accept AsyncEngine / AsyncConnection and return awaitables --
def _is_async(bind: Any) -> bool:
    module = type(bind).__module__
    return module.startswith("sqlalchemy.ext.asyncio")


async def _arun(bind: Any, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    if isinstance(bind, AsyncEngine):
        async with bind.connect() as connection:
            return await connection.run_sync(lambda sync: func(sync, *args, **kwargs))
    if isinstance(bind, AsyncConnection):
        return await bind.run_sync(lambda sync: func(sync, *args, **kwargs))
    raise TypeError(f"bind must be an AsyncEngine or AsyncConnection, got {bind!r}")


def _async_aware(func: Callable[..., T]) -> Callable[..., Any]:
    def wrapper(bind: Any, *args: Any, **kwargs: Any) -> Any:
        if _is_async(bind):
            return _arun(bind, func, *args, **kwargs)
        return func(bind, *args, **kwargs)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


ls = _async_aware(ls)
install = _async_aware(install)
uninstall = _async_aware(uninstall)
enable = _async_aware(enable)
disable = _async_aware(disable)
prune = _async_aware(prune)
prunable = _async_aware(prunable)
