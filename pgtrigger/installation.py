"""``pgtrigger.install()`` and friends: dispatched to the integration that owns the triggers.

The core has no connection of its own. The Django integration registers a backend using
Django's databases; SQLAlchemy users call ``pgtrigger.sqla.install(bind, ...)`` (or pass
``bind=`` here). The engine that does the work for both is ``pgtrigger.engine``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pgtrigger.clauses import Timing
from pgtrigger.errors import PgTriggerError

LOGGER = logging.getLogger("pgtrigger")


class Backend(Protocol):
    def accepts(self, options: dict[str, Any]) -> bool: ...

    def install(self, *uris: str, **options: Any) -> Any: ...

    def uninstall(self, *uris: str, **options: Any) -> Any: ...

    def enable(self, *uris: str, **options: Any) -> Any: ...

    def disable(self, *uris: str, **options: Any) -> Any: ...

    def prune(self, **options: Any) -> Any: ...

    def prunable(self, **options: Any) -> list[Any]: ...

    def constraints(self, timing: Timing, *uris: str, **options: Any) -> None: ...


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


def _backend(options: dict[str, Any]) -> Backend:
    for backend in reversed(_backends):
        if backend.accepts(options):
            return backend
    raise PgTriggerError(
        'No pgtrigger integration can run this: add "pgtrigger" to Django\'s INSTALLED_APPS,'
        " or use pgtrigger.sqla.install(bind, ...) / pass bind=<engine or connection>"
    )


def install(*uris: str, **options: Any) -> None:
    """Install triggers (all registered ones when no URI is given, pruning orphans too)."""
    _backend(options).install(*uris, **options)


def uninstall(*uris: str, **options: Any) -> None:
    """Uninstall triggers (all registered ones when no URI is given)."""
    _backend(options).uninstall(*uris, **options)


def enable(*uris: str, **options: Any) -> None:
    """Enable installed triggers."""
    _backend(options).enable(*uris, **options)


def disable(*uris: str, **options: Any) -> None:
    """Disable installed triggers (for everyone; ``pgtrigger.ignore`` is per context)."""
    _backend(options).disable(*uris, **options)


def prune(**options: Any) -> None:
    """Drop pgtrigger triggers that no code declares anymore."""
    _backend(options).prune(**options)


def prunable(**options: Any) -> list[Any]:
    """The triggers ``prune`` would drop."""
    return _backend(options).prunable(**options)


def trigger_status(trigger: Any, model: Any, **options: Any) -> Any:
    """(status, enabled) of one trigger on one model (django-pgtrigger's per-trigger API)."""
    return _backend(options).trigger_status(trigger, model, **options)  # type: ignore[attr-defined]


def trigger_action(action: str, trigger: Any, model: Any, **options: Any) -> None:
    """install / uninstall / enable / disable one trigger on one model."""
    _backend(options).trigger_action(action, trigger, model, **options)  # type: ignore[attr-defined]


def constraints(timing: Timing, *uris: str, **options: Any) -> None:
    """``SET CONSTRAINTS`` for deferrable triggers in the current transaction."""
    _backend(options).constraints(timing, *uris, **options)
