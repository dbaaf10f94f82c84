"""Runtime state behind ``ignore``, ``is_ignored``, ``schema`` and ``constraints``.

State lives in ``contextvars``: threads and asyncio tasks never see each other's, nesting
works, and both context managers and decorators (sync and async) restore it on exit.
Integrations read ``current()`` and apply it to their own connections with
``apply_sql(state)``: one statement, only when the state a connection carries differs.
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

from pgtrigger import registry, sqltext
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
        return ", ".join(sqltext.ident(s, "schema") for s in self.schemas)


DEFAULT = State()
_state: contextvars.ContextVar[State] = contextvars.ContextVar("pgtrigger_state", default=DEFAULT)


def current() -> State:
    return _state.get()


def apply_sql(state: State, base_search_path: str | None = None) -> str:
    """One statement (no bind parameters) that makes a transaction carry ``state``.

    Settings are transaction-local, so they vanish at commit or rollback on their own.
    ``base_search_path`` is appended after ``schema()``'s schemas (the connection's own).
    """
    parts = [f"set_config('pgtrigger.ignore', {sqltext.string(state.ignore_value())}, true)"]
    if state.schemas or base_search_path is not None:
        path = state.search_path_value()
        if base_search_path:
            path = f"{path}, {base_search_path}" if path else base_search_path
        parts.append(f"set_config('search_path', {sqltext.string(path)}, true)")
    return "SELECT " + ", ".join(parts)


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
    uris = tuple(uris)
    if not uris:
        return registry.all_pgids()
    pgids = set()
    for uri in uris:
        model, trigger = registry.registered(uri)[0]
        _check_ignorable(model, trigger)
        pgids.add(registry.pgid_of(uri))
    return frozenset(pgids)


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


def deferrable_pgids(*uris: str) -> list[str]:
    """pgids of the deferrable triggers named (all deferrable ones when no URI is given)."""
    pairs = (
        [(uri, *registry.registered(uri)[0]) for uri in uris]
        if uris
        else [(uri, model, trigger) for uri, model, trigger, _ in registry.items()]
    )
    pgids = []
    for uri, _model, trigger in pairs:
        if not trigger.timing:
            if uris:
                raise DefinitionError(f'Trigger "{uri}" is not deferrable (it has no "timing").')
            continue
        pgids.append(registry.pgid_of(uri))
    return pgids


# -- sending state over a DB-API connection (shared by the integrations) ----------------------
#: Where ``send_state`` keeps a connection's own search path (read once, when first needed).
BASE_SEARCH_PATH = "pgtrigger.base_search_path"


def _placeholders(paramstyle: str, count: int) -> list[str]:
    if paramstyle == "numeric_dollar":
        return [f"${i}" for i in range(1, count + 1)]
    if paramstyle == "numeric":
        return [f":{i}" for i in range(1, count + 1)]
    if paramstyle == "qmark":
        return ["?"] * count
    return ["%s"] * count


def run_dbapi(
    dbapi_connection: Any, paramstyle: str, sql: str, params: tuple[Any, ...]
) -> list[Any]:
    """Run one statement on a raw DB-API connection ("{}" marks the parameters in ``sql``)."""
    marks = _placeholders(paramstyle, len(params))
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql.format(*marks), params)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


def send_state(
    dbapi_connection: Any,
    paramstyle: str,
    state: State,
    *,
    carried: State | None,
    session: bool,
    memo: dict[str, Any],
) -> None:
    """Make a connection carry ``state`` with one ``SELECT set_config(...)`` (bind parameters).

    ``carried`` is what it carries now (None: unknown); ``session`` picks session-level
    settings (autocommit) over transaction-local ones. ``memo`` is per-connection storage.
    """
    scope = "false" if session else "true"
    parts = [f"set_config('pgtrigger.ignore', {{}}, {scope})"]
    params: list[Any] = [state.ignore_value()]
    if state.schemas or carried is None or carried.schemas:
        if state.schemas and BASE_SEARCH_PATH not in memo:
            memo[BASE_SEARCH_PATH] = run_dbapi(
                dbapi_connection, paramstyle, "SHOW search_path", ()
            )[0][0]
        path = state.search_path_value() if state.schemas else memo.get(BASE_SEARCH_PATH)
        if path is not None:
            parts.append(f"set_config('search_path', {{}}, {scope})")
            params.append(path)
    run_dbapi(dbapi_connection, paramstyle, "SELECT " + ", ".join(parts), tuple(params))


_PSYCOPG2_STATUS = {0: "IDLE", 1: "ACTIVE", 2: "INTRANS", 3: "INERROR", 4: "UNKNOWN"}


def transaction_status(dbapi_connection: Any) -> str:
    """IDLE, ACTIVE, INTRANS, INERROR or UNKNOWN, for psycopg 3, psycopg2 and others."""
    info = getattr(dbapi_connection, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is None:
        getter = getattr(dbapi_connection, "get_transaction_status", None)
        status = getter() if getter is not None else None
    if status is None:
        return "UNKNOWN"
    name = getattr(status, "name", None)  # psycopg 3 enum
    return str(name) if name is not None else _PSYCOPG2_STATUS.get(int(status), "UNKNOWN")
