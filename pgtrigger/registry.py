"""Which triggers exist in code: URI -> (model, trigger), with clash detection.

Integrations register triggers here (Django from ``Meta.triggers``, SQLAlchemy from
``__table_args__``). Registration is cheap: the pgid is computed once per URI and cached,
and recomputed only for triggers whose ``get_pgid`` is not the standard one (a subclass's
own, or one patched in tests), so checks and prunes see each trigger's pgid as it is now.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pgtrigger.errors import MalformedURIError, RegistrationError, UnknownTriggerError

if TYPE_CHECKING:
    from pgtrigger.triggers import Trigger

#: uri -> (model, trigger): django-pgtrigger's shape, which third-party code unpacks.
_registry: dict[str, tuple[Any, Trigger]] = {}
#: uri -> pgid, cached at registration.
_uri_pgids: dict[str, str] = {}
#: pgid -> uri, for the clash check.
_pgids: dict[str, str] = {}
#: uri -> table key, for models an integration names a table of (Django's db_table).
_uri_tables: dict[str, str] = {}
#: uris of triggers that compute their own pgid (a subclass's ``get_pgid``).
_custom: builtins.set[str] = builtins.set()
#: (table key, trigger name) -> uri: one name per table, whichever model (proxy) it came from.
_by_table: dict[tuple[str, str], str] = {}
#: Called with (model, trigger) after a registration (Django mirrors it into Meta.triggers)
#: and after an unregistration (Django takes it out again, so makemigrations removes it).
on_register: list[Callable[[Any, Trigger], None]] = []
on_unregister: list[Callable[[Any, Trigger], None]] = []
#: Integrations name the table a model writes to (Django: ``db_table``, shared by a proxy and
#: its concrete model); None for objects they do not own.
table_keys: list[Callable[[Any], str | None]] = []

_MALFORMED = 'Trigger URI must be in the format of "app_label.model_name:trigger_name"'


def _standard_get_pgid() -> Any:
    from pgtrigger.triggers import STANDARD_GET_PGID  # loaded by then: triggers register

    return STANDARD_GET_PGID


def computes_own_pgid(trigger: Trigger) -> bool:
    """Does ``trigger`` name itself other than by the standard rule (override or patch)?"""
    return getattr(trigger.get_pgid, "__func__", None) is not _standard_get_pgid()


def _table_key(model: Any) -> str | None:
    for key_of in table_keys:
        key = key_of(model)
        if key is not None:
            return key
    return None


def _fresh_pgid(uri: str, model: Any, trigger: Trigger) -> str:
    """The pgid as the trigger computes it now (the cache unless it may have changed)."""
    if computes_own_pgid(trigger) or trigger.name != uri.rsplit(":", 1)[-1]:
        return trigger.get_pgid(model)
    return _uri_pgids[uri]


def _pgid_owners() -> dict[str, str]:
    """pgid -> uri of every registered trigger, for the clash check at registration.

    Cheap when nothing is unusual (start-up registers every trigger): the cache, with only
    the triggers that compute their own pgid recomputed; all of them when the standard
    ``Trigger.get_pgid`` itself has been replaced (patched).
    """
    from pgtrigger.triggers import Trigger

    if Trigger.get_pgid is not _standard_get_pgid():
        return {trigger.get_pgid(model): uri for uri, (model, trigger) in _registry.items()}
    owners = _pgids
    if _custom:
        owners = dict(_pgids)
        for uri in _custom:
            model, trigger = _registry[uri]
            owners.pop(_uri_pgids[uri], None)
            owners[trigger.get_pgid(model)] = uri
    return owners


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
    own = computes_own_pgid(trigger)
    if pgid is None or own:
        pgid = trigger.get_pgid(model)
    table_key = _table_key(model)
    if table_key is not None:
        other = _by_table.get((table_key, str(trigger.name)))
        if other is not None and other in _registry and _registry[other][1] is not trigger:
            raise RegistrationError(
                f'Trigger name "{trigger.name}" already used for table "{table_key}" by'
                f' "{other}" (URI {uri} writes to the same table): give the new trigger'
                " another name"
            )
    clash = _pgid_owners().get(pgid)
    if clash is not None and clash != uri:
        raise RegistrationError(
            f'Trigger "{uri}" has Postgres id "{pgid}", already in use by trigger "{clash}":'
            " their functions would share a name. Rename one of the triggers."
        )
    _registry[uri] = (model, trigger)
    _uri_pgids[uri] = pgid
    _pgids[pgid] = uri
    if own:
        _custom.add(uri)
    if table_key is not None:
        _by_table.setdefault((table_key, str(trigger.name)), uri)
        _uri_tables[uri] = table_key
    for callback in on_register:
        callback(model, trigger)


def delete(uri: str) -> None:
    model, trigger = _lookup(uri)
    del _registry[uri]
    pgid = _uri_pgids.pop(uri)
    _custom.discard(uri)
    _uri_tables.pop(uri, None)
    if _pgids.get(pgid) == uri:
        del _pgids[pgid]
    for key, owner in list(_by_table.items()):
        if owner == uri:
            del _by_table[key]
    global _all_pgids, _all_names
    _all_pgids = _all_names = None
    for callback in on_unregister:
        callback(model, trigger)


def _lookup(uri: str) -> tuple[Any, Trigger]:
    if not isinstance(uri, str) or ":" not in uri:
        raise MalformedURIError(
            f'{_MALFORMED} (SQLAlchemy tables: "[schema.]table:trigger_name"), got {uri!r}'
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
        return list(_registry.values())
    return [_lookup(uri) for uri in uris]


def entries(*uris: str) -> list[tuple[str, Any, Trigger]]:
    """(uri, model, trigger) for the URIs given (unknown ones raise), or for every one."""
    if not uris:
        return [(uri, model, trigger) for uri, (model, trigger) in _registry.items()]
    return [(uri, *_lookup(uri)) for uri in uris]


def pgid_of(uri: str) -> str:
    """The pgid of a registered trigger, as its ``get_pgid`` computes it now."""
    model, trigger = _lookup(uri)
    return _fresh_pgid(uri, model, trigger)


def items() -> list[tuple[str, Any, Trigger, str]]:
    """(uri, model, trigger, pgid) for every registered trigger."""
    return [
        (uri, model, trigger, _fresh_pgid(uri, model, trigger))
        for uri, (model, trigger) in _registry.items()
    ]


_all_pgids: frozenset[str] | None = None


def all_pgids() -> frozenset[str]:
    """Every registered pgid (cached: ``ignore()`` with no URI asks on every entry)."""
    global _all_pgids
    if _all_pgids is None or len(_all_pgids) != len(_pgids):
        _all_pgids = frozenset(_pgids)
    return _all_pgids


def ignore_names(uri: str) -> tuple[str, ...]:
    """What ``pgtrigger.ignore(uri)`` puts in the ``pgtrigger.ignore`` setting: the pgid, and
    for Django models also ``db_table:pgid``, which the ``_pgtrigger_should_ignore`` that
    django-pgtrigger installed before 4.0 compares (as django-pgtrigger 4 still sends)."""
    pgid = pgid_of(uri)
    table = _uri_tables.get(uri)
    return (pgid,) if table is None else (pgid, f"{table}:{pgid}")


_all_names: frozenset[str] | None = None


def all_ignore_names() -> frozenset[str]:
    """``ignore_names`` of every registered trigger (cached, like ``all_pgids``)."""
    global _all_names
    if _all_names is None or len(_all_names) < len(_pgids):
        names = builtins.set(_pgids)
        names.update(f"{table}:{_uri_pgids[uri]}" for uri, table in _uri_tables.items())
        _all_names = frozenset(names)
    return _all_names


def current_pgids() -> frozenset[str]:
    """Every registered pgid as the triggers compute them now (name and ``get_pgid`` as they
    are at this moment, patched or not): what prune and ``ls`` must not call orphans."""
    return frozenset(
        _fresh_pgid(uri, model, trigger) for uri, (model, trigger) in _registry.items()
    )


def uris() -> list[str]:
    return list(_registry)


def pg_function_names() -> builtins.set[str]:
    return builtins.set(current_pgids())


def register(*triggers: Trigger) -> Callable[[Any], Any]:
    """Register triggers on a model or table: ``register(t1, t2)(Model)`` or as a decorator."""

    def _wrap(model: Any) -> Any:
        for trigger in triggers:
            trigger.register(model)
        return model

    return _wrap


def snapshot() -> dict[str, tuple[Any, Trigger, str]]:
    """A copy of the registry (uri -> (model, trigger, pgid)), for ``restore``."""
    return {uri: (model, trigger, _uri_pgids[uri]) for uri, (model, trigger) in _registry.items()}


def restore(entries: dict[str, tuple[Any, Trigger, str]]) -> None:
    """Replace the registry's content, e.g. to isolate tests that register triggers."""
    global _all_pgids, _all_names
    _registry.clear()
    _uri_tables.clear()
    _uri_pgids.clear()
    _pgids.clear()
    _by_table.clear()
    _custom.clear()
    for uri, (model, trigger, pgid) in entries.items():
        if computes_own_pgid(trigger):
            _custom.add(uri)
        _registry[uri] = (model, trigger)
        _uri_pgids[uri] = pgid
        _pgids[pgid] = uri
        table_key = _table_key(model)
        if table_key is not None:
            _by_table.setdefault((table_key, str(trigger.name)), uri)
            _uri_tables[uri] = table_key
    _all_pgids = _all_names = None
