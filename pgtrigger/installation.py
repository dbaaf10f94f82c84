"""``pgtrigger.install()`` and friends: dispatched to the integration that owns the triggers.

The core has no connection of its own. The Django integration registers a backend using
Django's databases (``database=`` an alias); ``bind=`` (an Engine, Connection or their asyncio
kinds) sends the call to ``pgtrigger.sqla`` instead. The signatures are explicit: a misspelt
option (``schema=`` for ``schemas=``, ``databse=``) is a ``TypeError`` at the call, never
silently ignored. The engine that does the work for both is ``pgtrigger.engine``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pgtrigger.clauses import Timing
from pgtrigger.errors import PgTriggerError

LOGGER = logging.getLogger("pgtrigger")


class Backend(Protocol):
    """What an integration offers ``pgtrigger.install()`` & co. (Django's ``database=``)."""

    def install(
        self,
        *uris: str,
        database: str | None,
        schemas: Sequence[str] | None,
        force: bool,
        prune: bool | None,
        lock_timeout: str | None,
    ) -> Any: ...

    def uninstall(
        self,
        *uris: str,
        database: str | None,
        schemas: Sequence[str] | None,
        lock_timeout: str | None,
    ) -> Any: ...

    def enable(self, *uris: str, database: str | None, schemas: Sequence[str] | None) -> Any: ...

    def disable(self, *uris: str, database: str | None, schemas: Sequence[str] | None) -> Any: ...

    def prune(self, *, database: str | None, schemas: Sequence[str] | None) -> Any: ...

    def prunable(self, *, database: str | None, schemas: Sequence[str] | None) -> list[Any]: ...

    def constraints(self, timing: Timing, *uris: str, databases: Sequence[str] | None) -> None: ...

    def allow_migrate(self, model: Any, database: str | None) -> bool: ...

    def exec_sql(self, sql: str, database: str | None, fetchall: bool) -> Any: ...

    def trigger_status(
        self, trigger: Any, model: Any, database: str | None
    ) -> tuple[str, bool | None]: ...

    def trigger_action(
        self, action: str, trigger: Any, model: Any, database: str | None
    ) -> None: ...


_backends: list[Backend] = []


def add_backend(backend: Backend) -> None:
    """Called by an integration when it loads."""
    if backend not in _backends:
        _backends.append(backend)


def backends() -> list[Backend]:
    """The registered backends (a copy), for ``set_backends``."""
    return list(_backends)


def set_backends(new: list[Backend]) -> None:
    """Replace the registered backends, e.g. to isolate tests."""
    _backends[:] = new


def _backend() -> Backend:
    if _backends:
        return _backends[-1]
    raise PgTriggerError(
        'No pgtrigger integration can run this: add "pgtrigger" to Django\'s INSTALLED_APPS,'
        " or pass bind=<SQLAlchemy engine or connection> (or call pgtrigger.sqla.install(bind))"
    )


def _sqla() -> Any:
    from pgtrigger.sqla import manage

    return manage


def _no_database_with_bind(database: str | None, function: str) -> None:
    if database is not None:
        raise TypeError(
            f"pgtrigger.{function}() takes database= (a Django alias) or bind= (a SQLAlchemy"
            " engine or connection), not both"
        )


def install(
    *uris: str,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    force: bool = False,
    prune: bool | None = None,
    lock_timeout: str | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> Any:
    """Install missing or outdated triggers (all registered ones when no URI is given, then
    pruning orphans unless ``prune=False``; Django's PGTRIGGER_PRUNE_ON_INSTALL decides its
    default)."""
    if bind is not None:
        _no_database_with_bind(database, "install")
        return _sqla().install(
            bind,
            *uris,
            schema=schemas,
            metadata=metadata,
            prune=prune,
            force=force,
            lock_timeout=lock_timeout,
        )
    return _backend().install(
        *uris,
        database=database,
        schemas=schemas,
        force=force,
        prune=prune,
        lock_timeout=lock_timeout,
    )


def uninstall(
    *uris: str,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    lock_timeout: str | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> Any:
    """Uninstall triggers (all registered ones when no URI is given)."""
    if bind is not None:
        _no_database_with_bind(database, "uninstall")
        return _sqla().uninstall(
            bind, *uris, schema=schemas, metadata=metadata, lock_timeout=lock_timeout
        )
    return _backend().uninstall(
        *uris, database=database, schemas=schemas, lock_timeout=lock_timeout
    )


def enable(
    *uris: str,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> Any:
    """Enable installed triggers."""
    if bind is not None:
        _no_database_with_bind(database, "enable")
        return _sqla().enable(bind, *uris, schema=schemas, metadata=metadata)
    return _backend().enable(*uris, database=database, schemas=schemas)


def disable(
    *uris: str,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> Any:
    """Disable installed triggers (for everyone; ``pgtrigger.ignore`` is per context)."""
    if bind is not None:
        _no_database_with_bind(database, "disable")
        return _sqla().disable(bind, *uris, schema=schemas, metadata=metadata)
    return _backend().disable(*uris, database=database, schemas=schemas)


def prune(
    *,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> Any:
    """Drop pgtrigger triggers that no code declares anymore."""
    if bind is not None:
        _no_database_with_bind(database, "prune")
        return _sqla().prune(bind, schema=schemas, metadata=metadata)
    return _backend().prune(database=database, schemas=schemas)


def prunable(
    *,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> list[Any]:
    """The triggers ``prune`` would drop."""
    if bind is not None:
        _no_database_with_bind(database, "prunable")
        found: list[Any] = _sqla().prunable(bind, schema=schemas, metadata=metadata)
        return found
    return _backend().prunable(database=database, schemas=schemas)


def ls(
    *uris: str,
    database: str | None = None,
    schemas: Sequence[str] | None = None,
    bind: Any = None,
    metadata: Any = None,
) -> list[Any]:
    """Installation status of the triggers (``engine.Status`` rows): the URIs given, or every
    registered trigger followed by the orphans ``prune`` would drop."""
    if bind is not None:
        _no_database_with_bind(database, "ls")
        rows: list[Any] = _sqla().ls(bind, *uris, schema=schemas, metadata=metadata)
        return rows
    backend_ls = getattr(_backend(), "ls", None)
    if backend_ls is None:
        raise PgTriggerError("This integration offers no ls(); pass bind=")
    listed: list[Any] = backend_ls(*uris, database=database, schemas=schemas)
    return listed


def allow_migrate(model: Any, database: str | None = None) -> bool:
    """May triggers go on ``model`` in ``database``? (True where no integration decides.)"""
    decide = getattr(_backends[-1], "allow_migrate", None) if _backends else None
    return True if decide is None else bool(decide(model, database))


def exec_sql(sql: str, database: str | None = None, fetchall: bool = False) -> Any:
    """Run SQL on an integration's database (Django's ``pgtrigger.utils.exec_sql``)."""
    return _backend().exec_sql(sql, database, fetchall)


def trigger_status(trigger: Any, model: Any, database: str | None = None) -> Any:
    """(status, enabled) of one trigger on one model (django-pgtrigger's per-trigger API)."""
    return _backend().trigger_status(trigger, model, database)


def trigger_action(action: str, trigger: Any, model: Any, database: str | None = None) -> None:
    """install / uninstall / enable / disable one trigger on one model."""
    _backend().trigger_action(action, trigger, model, database)


def constraints(timing: Timing, *uris: str, databases: Sequence[str] | None = None) -> None:
    """``SET CONSTRAINTS`` for deferrable triggers in the current transaction of every
    PostgreSQL database (Django); SQLAlchemy users call ``pgtrigger.sqla.constraints``."""
    _backend().constraints(timing, *uris, databases=databases)
