"""What a CLI command acts on: SQLAlchemy tables on one database, or a Django project's
models on each of its databases. Both return the engine's statuses."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pgtrigger import engine
from pgtrigger.cli.targets import UsageError, importable
from pgtrigger.scope import require_schemas


class SqlaProject:
    """Tables of a MetaData / declarative Base / list of tables, on the database at ``url``."""

    def __init__(self, metadata: Any, url_factory: Any) -> None:
        import pgtrigger.sqla as sqla

        self.sqla = sqla
        self.metadata = metadata
        self._url_factory = url_factory
        self._engine: Any = None

    @property
    def scopes(self) -> list[str | None]:
        return [None]

    @property
    def bind(self) -> Any:
        if self._engine is None:
            self._engine = self._url_factory()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def targets(self, uris: Sequence[str], scope: str | None = None) -> list[engine.Target]:
        return list(self.sqla.targets(*uris, metadata=self.metadata))

    def require_schemas(self, schemas: Sequence[str] | None) -> None:
        if not schemas:
            return
        from pgtrigger.sqla.executor import ConnectionExecutor

        with self.bind.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            require_schemas(ConnectionExecutor(connection), schemas)

    def ls(self, uris: Sequence[str], schemas: Any, scope: str | None) -> list[engine.Status]:
        return list(self.sqla.ls(self.bind, *uris, schema=schemas, metadata=self.metadata))

    def run(
        self, command: str, uris: Sequence[str], schemas: Any, scope: str | None, **options: Any
    ) -> list[engine.Status]:
        kwargs = {"schema": schemas, "metadata": self.metadata}
        if command == "install":
            return list(self.sqla.install(self.bind, *uris, **kwargs, **options))
        if command == "uninstall":
            return list(
                self.sqla.uninstall(
                    self.bind, *uris, lock_timeout=options.get("lock_timeout"), **kwargs
                )
            )
        if command in ("enable", "disable"):
            return list(getattr(self.sqla, command)(self.bind, *uris, **kwargs))
        return list(self.sqla.prune(self.bind, **kwargs))


class DjangoProject:
    """The models of the Django project named by ``DJANGO_SETTINGS_MODULE``."""

    def __init__(self, database: str | None) -> None:
        if not os.environ.get("DJANGO_SETTINGS_MODULE"):
            raise UsageError("--django needs DJANGO_SETTINGS_MODULE to name your settings module")
        # The settings module is found as django-admin finds it: from the current directory.
        importable(os.getcwd())
        try:
            import django

            django.setup()
        except Exception as exc:
            raise UsageError(f"cannot set up Django: {type(exc).__name__}: {exc}") from exc
        from pgtrigger.django import installation

        self.installation = installation
        self.database = database

    @property
    def scopes(self) -> list[str | None]:
        if self.database:
            return [self.database]
        return list(self.installation.postgres_databases())

    def close(self) -> None:
        from django.db import connections

        connections.close_all()

    def targets(self, uris: Sequence[str], scope: str | None = None) -> list[engine.Target]:
        return list(self.installation.targets(*uris, database=scope))

    def require_schemas(self, schemas: Sequence[str] | None) -> None:
        from django.db import connections

        executors = [engine.DbapiExecutor(connections[alias]) for alias in self.scopes if alias]
        require_schemas(executors, schemas)

    def ls(self, uris: Sequence[str], schemas: Any, scope: str | None) -> list[engine.Status]:
        return list(self.installation.ls(*uris, database=scope, schemas=schemas))

    def run(
        self, command: str, uris: Sequence[str], schemas: Any, scope: str | None, **options: Any
    ) -> list[engine.Status]:
        backend = self.installation.Backend()
        if command == "prune":
            return list(backend.prune(database=scope, schemas=schemas))
        if command == "uninstall":
            return list(
                backend.uninstall(
                    *uris, database=scope, schemas=schemas, lock_timeout=options.get("lock_timeout")
                )
            )
        if command in ("enable", "disable"):
            return list(getattr(backend, command)(*uris, database=scope, schemas=schemas))
        return list(backend.install(*uris, database=scope, schemas=schemas, **options))
