"""Runtime state behind ``ignore``, ``is_ignored``, ``schema`` and ``constraints``.

State lives in ``contextvars``: threads and asyncio tasks never see each other's, nesting
works, and both context managers and decorators (sync and async) restore it on exit.
Integrations read ``current()`` and apply it to their own connections, only when the state
a connection carries differs, through :mod:`pgtrigger.sending` (always transaction-local
settings, the SQL of ``apply_sql`` / ``state_parts``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from pgtrigger import citus, registry, sqltext
from pgtrigger.clauses import Timing
from pgtrigger.errors import DefinitionError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class State:
    """What the current context asks of every connection it uses."""

    #: pgids of ignored triggers.
    ignored: frozenset[str] = frozenset()
    #: Schemas that ``pgtrigger.schema`` put first on the search path, in order.
    schemas: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.ignored and not self.schemas

    def ignore_value(self) -> str:
        """The ``pgtrigger.ignore`` value: a text array of pgids (``{}`` when none).

        django-pgtrigger's installed triggers read the same array, so they skip too; an empty
        array (not an empty string) spares their per-row exception handler.
        """
        return sqltext.text_array(sorted(self.ignored))

    def search_path_value(self) -> str:
        """Plain names bare (``SHOW search_path`` reads as with django-pgtrigger), any other
        (``$user``, mixed case, keywords) quoted."""
        return ", ".join(
            s if sqltext.can_be_bare(s) else sqltext.ident(s, "schema") for s in self.schemas
        )


DEFAULT = State()
_state: contextvars.ContextVar[State] = contextvars.ContextVar("pgtrigger_state", default=DEFAULT)


def current() -> State:
    return _state.get()


#: Where a transaction keeps its search path from before ``schema()`` changed it, behind a
#: token of this transaction (backend pid and start time): a value a role or session preset
#: for the setting cannot carry the token, so it is never mistaken for ours.
_STASH = "pgtrigger.search_path"
_STASHED = f"current_setting('{_STASH}', true)"
_TOKEN = "(pg_backend_pid() || '@' || now() || '|')"
_PATH_BEFORE = (
    f"CASE WHEN starts_with({_STASHED}, {_TOKEN})"
    f" THEN substr({_STASHED}, length({_TOKEN}) + 1)"
    " ELSE current_setting('search_path') END"
)


def state_parts(state: State, carried: State | None, value: Callable[[str], str]) -> list[str]:
    """``set_config`` calls (transaction-local) that turn ``carried`` into ``state``.

    Entering ``schema()`` stashes the path in effect (unless this transaction already did),
    then sets the new one; leaving restores the stashed path and clears the stash, so the next
    block stashes whatever path is in effect when *it* is entered (a ``SET search_path`` in
    between is kept). No round trip reads anything; every setting ends with the transaction.
    """
    parts = [f"set_config('pgtrigger.ignore', {value(state.ignore_value())}, true)"]
    if state.schemas:
        parts.append(f"set_config('{_STASH}', {_TOKEN} || {_PATH_BEFORE}, true)")
        parts.append(f"set_config('search_path', {value(state.search_path_value())}, true)")
    elif carried is None or carried.schemas:
        parts.append(f"set_config('search_path', {_PATH_BEFORE}, true)")
        parts.append(f"set_config('{_STASH}', '', true)")
    return parts


#: Where a Citus transaction keeps the coordinator's path while the workers' is reset.
_RESTORE = "pgtrigger.search_path_restore"


@functools.lru_cache(maxsize=256)
def citus_statements(state: State, carried: State | None) -> tuple[str, ...]:
    """What ``state_parts`` does, as Citus needs it: standalone ``SET LOCAL`` statements (one
    per query string) that the coordinator forwards to the workers, literals only.

    Leaving ``schema()``, the workers get their default path back (what they had: Citus never
    forwards a session's ``SET``) and the coordinator exactly the path it had before.
    """
    statements = [
        citus.PROPAGATE,
        f"SET LOCAL pgtrigger.ignore = {sqltext.string(state.ignore_value())}",
    ]
    if state.schemas:
        statements.append(f"SELECT set_config('{_STASH}', {_TOKEN} || {_PATH_BEFORE}, true)")
        statements.append(f"SET LOCAL search_path = {state.search_path_value()}")
    elif carried is None or carried.schemas:
        statements.append(f"SELECT set_config('{_RESTORE}', {_PATH_BEFORE}, true)")
        statements.append("SET LOCAL search_path TO DEFAULT")
        statements.append(
            f"SELECT set_config('search_path', current_setting('{_RESTORE}'), true),"
            f" set_config('{_STASH}', '', true)"
        )
    return tuple(statements)


@functools.lru_cache(maxsize=256)
def apply_sql(state: State, carried: State | None = DEFAULT) -> str:
    """One statement (literals, no bind parameters) that makes a transaction carry ``state``.

    ``carried``: what the transaction carries now (None: unknown). Settings are
    transaction-local, so they vanish at commit or rollback on their own. Cached: autocommit
    queries inside a context may send it with every query.
    """
    return "SELECT " + ", ".join(state_parts(state, carried, sqltext.string))


class _StateContext:
    """Pushes a state change on enter, restores the previous state on exit.

    Usable as ``with``, ``async with``, and as a decorator of sync and async functions.
    """

    def __init__(self, change: Callable[[State], State]) -> None:
        self._change = change
        self._tokens: list[contextvars.Token[State]] = []

    def __enter__(self) -> None:
        self._tokens.append(_state.set(self._change(_state.get())))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _state.reset(self._tokens.pop())

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        change = self._change
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _StateContext(change):
                    result: Awaitable[Any] = func(*args, **kwargs)
                    return await result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _StateContext(change):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _pgids(uris: Iterable[str]) -> frozenset[str]:
    """The ``pgtrigger.ignore`` entries of the triggers named (of every trigger: none named)."""
    uris = tuple(uris)
    if not uris:
        return registry.all_ignore_names()
    names: set[str] = set()
    for uri in uris:
        model, trigger = registry.registered(uri)[0]
        _check_ignorable(model, trigger)
        names.update(registry.ignore_names(uri))
    return frozenset(names)


def _check_ignorable(model: Any, trigger: Any) -> None:
    check = getattr(trigger, "check_ignorable", None)
    if check is not None:
        check(model)


def ignore(*uris: str, **integration_options: Any) -> _StateContext:
    """Skip the triggers named by ``uris`` (all registered triggers when none) in this context.

    ``with pgtrigger.ignore("post:lock_published"): ...`` or as a decorator. Applies to every
    connection an integration manages; nesting adds to what is already ignored.
    """
    # Resolved on entry, not here: decorators run before integrations register triggers.
    return _StateContext(lambda state: State(state.ignored | _pgids(uris), state.schemas))


@contextlib.contextmanager
def _ignore_session(databases: Any = None) -> Iterator[None]:
    """django-pgtrigger's ``ignore.session()``: nothing to prepare here, kept for compatibility."""
    yield


ignore.session = _ignore_session  # type: ignore[attr-defined]


def is_ignored(uri: str) -> bool:
    """Is the trigger named by ``uri`` ignored in the current context?"""
    return registry.pgid_of(uri) in _state.get().ignored


def ignored_pgids() -> frozenset[str]:
    return _state.get().ignored


def schema(*schemas: str, **integration_options: Any) -> _StateContext:
    """Put ``schemas`` first on the search path in this context; nesting appends new ones."""
    for name in schemas:
        sqltext.ident(name, "schema")

    def change(state: State) -> State:
        added = tuple(s for s in dict.fromkeys(schemas) if s not in state.schemas)
        return State(state.ignored, state.schemas + added)

    return _StateContext(change)


schema.session = _ignore_session  # type: ignore[attr-defined]  # django-pgtrigger's schema.session()


def constraints_sql(timing: Timing, pgids: Iterable[str]) -> str:
    """``SET CONSTRAINTS ... IMMEDIATE|DEFERRED`` for deferrable triggers."""
    if not isinstance(timing, Timing):
        raise DefinitionError(
            f"constraints() takes pgtrigger.Immediate or Deferred, got {timing!r}"
        )
    names = ", ".join(sqltext.ident(pgid, "trigger id") for pgid in sorted(set(pgids)))
    if not names:
        raise DefinitionError("constraints() found no deferrable triggers to set")
    return f"SET CONSTRAINTS {names} {timing}"


def deferrable_pgids(*uris: str, all_deferrable: bool = False) -> list[str]:
    """pgids of the deferrable triggers named, or with no URI of every registered deferrable
    trigger (``all_deferrable``: django-pgtrigger's rule, every registered trigger must be
    deferrable then)."""
    pairs = (
        [(uri, *registry.registered(uri)[0]) for uri in uris]
        if uris
        else [(uri, model, trigger) for uri, model, trigger, _ in registry.items()]
    )
    pgids = []
    for uri, model, trigger in pairs:
        if not trigger.timing:
            if uris or all_deferrable:  # django-pgtrigger's words
                raise DefinitionError(
                    f"Trigger {trigger.name} on model {_model_label(model, uri)} is not deferrable."
                )
            continue
        pgids.append(registry.pgid_of(uri))
    return pgids


def _model_label(model: Any, uri: str) -> str:
    """Django's ``app_label.modelname`` (``label_lower``), else the table of the URI."""
    label = getattr(getattr(model, "_meta", None), "label_lower", None)
    return str(label) if label else uri.rsplit(":", 1)[0]


def constraints(timing: Timing, *uris: str, **options: Any) -> None:
    """django-pgtrigger's ``pgtrigger.runtime.constraints`` path (see
    ``pgtrigger.constraints``)."""
    from pgtrigger import installation

    installation.constraints(timing, *uris, **options)
