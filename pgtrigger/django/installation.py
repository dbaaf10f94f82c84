"""``pgtrigger.install()`` and friends for Django databases, on the shared engine.

One catalog query per database, one transaction per database. Routers decide where a trigger
may go (``allow_migrate``); triggers a router keeps out are UNALLOWED.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models, router, transaction

from pgtrigger import citus, engine, registry, runtime, sqltext
from pgtrigger.clauses import Timing
from pgtrigger.compiler import _split_table
from pgtrigger.django import settings
from pgtrigger.errors import InstallationError

LOGGER = logging.getLogger("pgtrigger")


class ConnectionExecutor:
    """The engine's ``Executor`` over a Django connection (SQL without parameters)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._citus: bool | None = None

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]

    def on_citus(self) -> bool:
        """Migrations send their SQL through here too: on Citus, one statement per query, in
        sequential mode (see :mod:`pgtrigger.citus`)."""
        if self._citus is None:
            self.connection.ensure_connection()
            self._citus = citus.is_citus(self.connection.connection)
            if self._citus:
                with self.connection.cursor() as cursor:
                    cursor.execute(citus.SEQUENTIAL)
        return self._citus

    def execute(self, sql: str) -> None:
        statements = sqltext.split_statements(sql) if self.on_citus() else [sql]
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


def is_postgres(database: str | None) -> bool:
    return bool(connections[database or DEFAULT_DB_ALIAS].vendor == "postgresql")


def postgres_databases(databases: Sequence[str] | None = None) -> list[str]:
    from django.conf import settings as django_settings

    return [db for db in (databases or list(django_settings.DATABASES)) if is_postgres(db)]


def allow_migrate(model: Any, database: str | None = None) -> bool:
    """The routers' ``allow_migrate`` for the concrete model, on PostgreSQL aliases only."""
    concrete = model._meta.concrete_model or model
    return is_postgres(database) and bool(
        router.allow_migrate(
            database or DEFAULT_DB_ALIAS,
            concrete._meta.app_label,
            model_name=concrete._meta.model_name,
        )
    )


def django_triggers(*uris: str) -> list[tuple[str, Any, Any]]:
    """(uri, model, trigger) for Django models: the URIs given, or all of them."""
    return [
        (uri, model, trigger) for uri, model, trigger in registry.entries(*uris) if _is_model(model)
    ]


def _is_model(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, models.Model)


def project_tables() -> list[engine.TableName]:
    """Every model's table: the tables the project declares, the only ones prune touches."""
    from django.apps import apps

    from pgtrigger.compiler import _split_table

    return [_split_table(m._meta.db_table) for m in apps.get_models(include_auto_created=True)]


def targets(*uris: str, database: str | None = None) -> list[engine.Target]:
    """Compiled triggers; ``trigger.allow_migrate`` (which subclasses may override) decides
    which ones belong in ``database`` (the others are UNALLOWED)."""
    return [
        engine.Target(
            uri, trigger.compile(model), allowed=trigger.allow_migrate(model, database=database)
        )
        for uri, model, trigger in django_triggers(*uris)
    ]


def declared(*uris: str, database: str | None = None) -> list[engine.Target]:
    """What ``ls`` compares with the catalog, read as django-pgtrigger read it: the table from
    ``db_table``, the pgid from ``get_pgid`` and only the hash from ``compile``."""
    return [
        _declared_target(uri, model, trigger, database)
        for uri, model, trigger in django_triggers(*uris)
    ]


def _declared_target(uri: str, model: Any, trigger: Any, database: str | None) -> engine.Target:
    schema, table = _split_table(model._meta.db_table)
    allowed = trigger.allow_migrate(model, database=database)
    compiled = trigger.compile(model) if allowed else None
    identity = engine.Declared(
        schema,
        table,
        trigger.get_pgid(model),
        compiled.hash if compiled else "",
        # compile() may be overridden to give only a hash (as django-pgtrigger allowed):
        # the firing then comes from the trigger's declaration.
        getattr(compiled, "firing", None) or _declared_firing(trigger),
    )
    return engine.Target(uri, identity, allowed=allowed)


def _declared_firing(trigger: Any) -> str:
    firing = getattr(trigger, "firing", None)
    return str(getattr(firing, "name", firing or "ORIGIN"))


def _run(database: str | None, work: Any, read_only: bool = False) -> Any:
    alias = database or DEFAULT_DB_ALIAS
    if read_only:  # one catalog query: consistent on its own, no transaction needed
        return work(ConnectionExecutor(connections[alias]))
    with transaction.atomic(using=alias):
        return work(ConnectionExecutor(connections[alias]))


def ls(
    *uris: str, database: str | None = None, schemas: Sequence[str] | None = None
) -> list[engine.Status]:
    """Status of the triggers (all, then orphans, when no URI is given) in ``database``.

    On an alias that is not PostgreSQL every trigger is UNALLOWED and nothing is queried.
    """
    wanted = declared(*uris, database=database)
    if not is_postgres(database):
        return [
            engine.Status(
                t.uri, None, t.compiled.table_name, t.compiled.pgid, engine.UNALLOWED, None, t
            )
            for t in wanted
        ]
    rows: list[engine.Status] = _run(
        database,
        lambda ex: engine.ls(
            ex, wanted, schemas, not uris, registry.current_pgids(), project_tables()
        ),
        read_only=True,
    )
    return rows


def _log(verb: str, rows: Sequence[engine.Status], database: str | None) -> None:
    for row in rows:
        LOGGER.info(
            "pgtrigger: %s %s trigger for %s table on %s database.",
            verb,
            row.uri or row.pgid,
            row.table,
            database or DEFAULT_DB_ALIAS,
        )


class Backend:
    """Registered with ``pgtrigger.installation`` when the Django app loads."""

    def install(
        self,
        *uris: str,
        database: str | None = None,
        schemas: Sequence[str] | None = None,
        force: bool = False,
        prune: bool | None = None,
        lock_timeout: str | None = None,
    ) -> list[engine.Status]:
        if not is_postgres(database):
            return []
        if prune is None:
            prune = not uris and settings.prune_on_install()
        wanted = targets(*uris, database=database)
        found: list[engine.Status] = _run(
            database,
            lambda ex: engine.install(
                ex,
                wanted,
                schemas=schemas,
                prune=bool(prune),
                force=force,
                lock_timeout=lock_timeout,
                declared_pgids=registry.current_pgids(),
                declared_tables=project_tables(),
            ),
        )
        changed = [r for r in found if r.target and r.status in ("UNINSTALLED", "OUTDATED")]
        _log("Installing", changed, database)
        return found

    def uninstall(
        self,
        *uris: str,
        database: str | None = None,
        schemas: Sequence[str] | None = None,
        lock_timeout: str | None = None,
    ) -> list[engine.Status]:
        if not is_postgres(database):
            return []
        prune = not uris and settings.prune_on_install()
        wanted = targets(*uris, database=database)
        found: list[engine.Status] = _run(
            database,
            lambda ex: engine.uninstall(
                ex,
                wanted,
                schemas=schemas,
                prune=prune,
                lock_timeout=lock_timeout,
                declared_pgids=registry.current_pgids(),
                declared_tables=project_tables(),
            ),
        )
        _log("Uninstalling", [r for r in found if r.installed], database)
        return found

    def _toggle(
        self,
        uris: Sequence[str],
        enabled: bool,
        database: str | None,
        schemas: Sequence[str] | None,
    ) -> list[engine.Status]:
        if not is_postgres(database):
            return []
        wanted = targets(*uris, database=database)
        found: list[engine.Status] = _run(
            database, lambda ex: engine.set_enabled(ex, wanted, enabled, schemas=schemas)
        )
        _log("Enabling" if enabled else "Disabling", [r for r in found if r.installed], database)
        return found

    def enable(
        self, *uris: str, database: str | None = None, schemas: Sequence[str] | None = None
    ) -> list[engine.Status]:
        return self._toggle(uris, True, database, schemas)

    def disable(
        self, *uris: str, database: str | None = None, schemas: Sequence[str] | None = None
    ) -> list[engine.Status]:
        return self._toggle(uris, False, database, schemas)

    def ls(
        self, *uris: str, database: str | None = None, schemas: Sequence[str] | None = None
    ) -> list[engine.Status]:
        return ls(*uris, database=database, schemas=schemas)

    def prunable(
        self, *, database: str | None = None, schemas: Sequence[str] | None = None
    ) -> list[tuple[str, str, bool, str]]:
        """(table, trigger id, enabled, database) of orphans, as django-pgtrigger returned."""
        if not is_postgres(database):
            return []
        rows = [r for r in ls(database=database, schemas=schemas) if r.status == engine.PRUNE]
        alias = database or DEFAULT_DB_ALIAS
        return [(r.table, r.pgid, bool(r.enabled), alias) for r in rows]

    def prune(
        self, *, database: str | None = None, schemas: Sequence[str] | None = None
    ) -> list[engine.Status]:
        if not is_postgres(database):
            return []
        wanted = targets(database=database)
        found: list[engine.Status] = _run(
            database,
            lambda ex: engine.prune(
                ex,
                wanted,
                schemas=schemas,
                declared_pgids=registry.current_pgids(),
                declared_tables=project_tables(),
            ),
        )
        _log("Pruning", found, database)
        return found

    def constraints(
        self, timing: Timing, *uris: str, databases: Sequence[str] | None = None
    ) -> None:
        pgids = runtime.deferrable_pgids(*uris, all_deferrable=True)
        sql = runtime.constraints_sql(timing, pgids)
        for database in postgres_databases(databases):
            connection = connections[database]
            if not connection.in_atomic_block:
                raise RuntimeError(f'Database "{database}" is not in a transaction.')
            with connection.cursor() as cursor:
                cursor.execute(sql)

    def allow_migrate(self, model: Any, database: str | None = None) -> bool:
        return allow_migrate(_model_class(model), database)

    def exec_sql(self, sql: str, database: str | None = None, fetchall: bool = False) -> Any:
        if not is_postgres(database):
            return None
        with connections[database or DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if fetchall else None

    # -- per-trigger calls (django-pgtrigger's Trigger.install(model) and friends) ------------
    def trigger_status(
        self, trigger: Any, model: Any, database: str | None = None
    ) -> tuple[str, bool | None]:
        model = _model_class(model)
        target = _declared_target(trigger.get_uri(model), model, trigger, database)
        if not target.allowed:
            return engine.UNALLOWED, None
        row = _run(database, lambda ex: engine.ls(ex, [target], None, False), read_only=True)[0]
        return row.status, row.enabled

    def trigger_action(
        self, action: str, trigger: Any, model: Any, database: str | None = None
    ) -> None:
        """One trigger, one model: as django-pgtrigger, the database's own error reaches the
        caller (``django.db.NotSupportedError`` and friends), not a wrapped one."""
        model = _model_class(model)
        if not trigger.allow_migrate(model, database=database):
            return
        target = [engine.Target(trigger.get_uri(model), trigger.compile(model))]
        work = {
            "install": lambda ex: engine.install(ex, target, force=True),
            "uninstall": lambda ex: engine.uninstall(ex, target),
            "enable": lambda ex: engine.set_enabled(ex, target, True),
            "disable": lambda ex: engine.set_enabled(ex, target, False),
        }[action]
        try:
            _run(database, work)
        except InstallationError as exc:
            if isinstance(exc.__cause__, DatabaseError):
                raise exc.__cause__ from exc
            raise


def _model_class(model: Any) -> Any:
    """django-pgtrigger's per-trigger methods accept a model instance as well as the class."""
    return type(model) if isinstance(model, models.Model) else model
