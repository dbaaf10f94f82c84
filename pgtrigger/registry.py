"""Which triggers exist in code: URI -> (model, trigger), with clash detection.

Integrations register triggers here (Django from ``Meta.triggers``, SQLAlchemy from
``__table_args__``). Registration is cheap: the pgid is computed once per URI.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pgtrigger.errors import MalformedURIError, RegistrationError, UnknownTriggerError

if TYPE_CHECKING:
    from pgtrigger.triggers import Trigger

# uri -> (model, trigger, pgid)
_registry: dict[str, tuple[Any, Trigger, str]] = {}
# pgid -> uri
_pgids: dict[str, str] = {}
#: Called with (model, trigger) after a registration (Django mirrors it into Meta.triggers).
on_register: list[Callable[[Any, Trigger], None]] = []


def set(uri: str, *, model: Any, trigger: Trigger, pgid: str | None = None) -> None:
    """Register ``trigger`` on ``model`` under ``uri``; refuse clashes with a clear message.

    ``pgid`` spares computing it again when the caller has it (``Trigger.register`` does).
    """
    existing = _registry.get(uri)
    if existing is not None:
        if existing[1] is trigger and existing[0] is model:
            return
        raise RegistrationError(
            f'Trigger name "{trigger.name}" already used for "{uri.rsplit(":", 1)[0]}"'
            f" (URI {uri}): give the new trigger another name"
        )
    if pgid is None:
        pgid = trigger.get_pgid(model)
    clash = _pgids.get(pgid)
    if clash is not None and clash != uri:
        raise RegistrationError(
            f'Trigger "{uri}" has Postgres id "{pgid}", already used by trigger "{clash}":'
            " their functions would share a name. Rename one of the triggers."
        )
    _registry[uri] = (model, trigger, pgid)
    _pgids[pgid] = uri
    for callback in on_register:
        callback(model, trigger)


def delete(uri: str) -> None:
    pgid = _lookup(uri)[2]
    del _registry[uri]
    _pgids.pop(pgid, None)
    global _all_pgids
    _all_pgids = None


def _lookup(uri: str) -> tuple[Any, Trigger, str]:
    if not isinstance(uri, str) or ":" not in uri:
        raise MalformedURIError(
            f'Trigger URI "{uri}" must be in the format "<table or app_label.Model>:<trigger name>"'
        )
    try:
        return _registry[uri]
    except KeyError:
        import difflib  # error path only: not imported at start-up

        close = difflib.get_close_matches(uri, list(_registry), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownTriggerError(f'URI "{uri}" not found in pgtrigger registry{hint}') from None


def registered(*uris: str) -> list[tuple[Any, Trigger]]:
    """(model, trigger) pairs for the URIs given, or for every registered trigger."""
    if not uris:
        return [(model, trigger) for model, trigger, _ in _registry.values()]
    return [_lookup(uri)[:2] for uri in uris]


def pgid_of(uri: str) -> str:
    return _lookup(uri)[2]


def items() -> list[tuple[str, Any, Trigger, str]]:
    """(uri, model, trigger, pgid) for every registered trigger."""
    return [(uri, *entry) for uri, entry in _registry.items()]


_all_pgids: frozenset[str] | None = None


def all_pgids() -> frozenset[str]:
    """Every registered pgid (cached: ``ignore()`` with no URI asks on every entry)."""
    global _all_pgids
    if _all_pgids is None or len(_all_pgids) != len(_pgids):
        _all_pgids = frozenset(_pgids)
    return _all_pgids


def uris() -> list[str]:
    return list(_registry)


def pg_function_names() -> builtins.set[str]:
    return builtins.set(_pgids)


def register(*triggers: Trigger) -> Callable[[Any], Any]:
    """Register triggers on a model or table: ``register(t1, t2)(Model)`` or as a decorator."""

    def _wrap(model: Any) -> Any:
        for trigger in triggers:
            trigger.register(model)
        return model

    return _wrap


def snapshot() -> dict[str, tuple[Any, Trigger, str]]:
    """A copy of the registry (uri -> (model, trigger, pgid)), for ``restore``."""
    return dict(_registry)


def restore(entries: dict[str, tuple[Any, Trigger, str]]) -> None:
    """Replace the registry's content, e.g. to isolate tests that register triggers."""
    global _all_pgids
    _registry.clear()
    _registry.update(entries)
    _pgids.clear()
    _pgids.update({pgid: uri for uri, (_, _, pgid) in entries.items()})
    _all_pgids = None
