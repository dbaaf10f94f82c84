"""The Django test project on both PostgreSQL servers, in one process.

Django is configured once, here (``settings.configure`` with :mod:`tests.django.settings`,
then ``django.setup()``), with two database aliases, ``default`` and ``other``. The tests
run once per server (the session fixture ``pg_server`` of :mod:`tests.pgservers`; pytest
groups the tests of one server together), and :func:`bind` points both aliases at databases
*of the current server*: Django's connection handler gets new settings for the alias and a
new connection object. Code under test therefore uses Django exactly as an application does
(``transaction.atomic()``, ``connection``, ``call_command("migrate")``, ``pgtrigger.install()``
without ``using``/``database`` arguments all mean the current server's ``default``), and a
router sends ``otherapp`` to ``other``, as in a real multi-database project.

pgtrigger's registry (and its list of installation backends) is process-wide, and other
test suites share this process: ``django.setup()`` runs here at collection time, then what it
registered is taken out again and put back only around each Django test (autouse fixture
``_django_registry``), with everything else out of the way. Each side sees the registry a
project of its kind would have.

Databases (created by the harness with unique names, dropped afterwards):

``django_project`` (session, per server)
    ``default`` and ``other``, migrated once with the committed migrations.
``db`` (function)
    Those databases; each test runs inside one transaction per alias, rolled back at the end
    (triggers are DDL, and Postgres DDL is transactional, so installs, uninstalls and schema
    changes roll back too).
``live_db`` (function)
    Those databases in autocommit, for what a transaction wrapper would hide (session-level
    settings, threads, asyncio); every table of the project's apps is emptied afterwards.
``fresh_db`` (function)
    Brand-new empty databases for ``default`` and ``other``, for migration tests.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import django
import pytest
from django.conf import settings

from pgtrigger import installation as core_installation
from pgtrigger import registry
from tests.django import settings as project_settings
from tests.pgservers import DatabaseDSN, PgServer, pool_of

_before = (set(registry.snapshot()), core_installation.backends())
if not settings.configured:
    settings.configure(
        **{
            name: getattr(project_settings, name)
            for name in dir(project_settings)
            if name.isupper()
        }
    )
django.setup()
#: What django.setup() registered (Meta.triggers, pgtrigger.register, django-pghistory).
DJANGO_ENTRIES = {uri: e for uri, e in registry.snapshot().items() if uri not in _before[0]}
DJANGO_BACKENDS = [b for b in core_installation.backends() if b not in _before[1]]


def _set_process_state(
    entries: Mapping[str, tuple[object, object, str]], backends: list[object]
) -> None:
    registry.restore(dict(entries))  # type: ignore[arg-type]
    core_installation.set_backends(backends)  # type: ignore[arg-type]


@contextlib.contextmanager
def django_registry() -> Iterator[None]:
    """pgtrigger's process-wide state as in a Django project: its triggers, its backend."""
    saved = (registry.snapshot(), core_installation.backends())
    _set_process_state(DJANGO_ENTRIES, DJANGO_BACKENDS)
    try:
        yield
    finally:
        _set_process_state(*saved)


# Out of the way of the other suites until a Django test runs.
_set_process_state(
    {uri: e for uri, e in registry.snapshot().items() if uri not in DJANGO_ENTRIES},
    [b for b in core_installation.backends() if b not in DJANGO_BACKENDS],
)

from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402

from tests.django.helpers import close_connections  # noqa: E402

ALIASES = ("default", "other")

#: Tables ``live_db`` keeps (what ``migrate`` writes once); every other table is emptied.
KEPT_TABLES = ("django_migrations", "django_content_type", "auth_permission")


def bind(databases: Mapping[str, DatabaseDSN]) -> None:
    """Point Django aliases at these databases (closing this context's old connections)."""
    changed = False
    for alias, database in databases.items():
        entry = database.django_settings()
        current = connections.settings.get(alias, {})
        if all(current.get(key) == value for key, value in entry.items()):
            continue
        for connection in connections.all(initialized_only=True):
            if connection.alias == alias:
                connection.close()
                del connections[alias]
        connections.settings[alias] = entry
        changed = True
    if changed:
        connections.configure_settings(connections.settings)  # Django's defaults for new entries


@pytest.fixture(autouse=True)
def _django_registry() -> Iterator[None]:
    with django_registry():
        yield


@dataclass
class DjangoProject:
    server: PgServer
    databases: dict[str, DatabaseDSN]

    @property
    def name(self) -> str:
        return self.server.name


@pytest.fixture(scope="session")
def django_project(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[DjangoProject]:
    """``default`` and ``other`` on ``pg_server``, migrated (once per server)."""
    pool = pool_of(request.config)
    databases = {alias: pool.create_database(pg_server) for alias in ALIASES}
    try:
        bind(databases)
        with django_registry():
            for alias in ALIASES:
                call_command("migrate", database=alias, verbosity=0)
        close_connections()
        yield DjangoProject(pg_server, databases)
    finally:
        close_connections()
        for database in databases.values():
            pool.drop_database(database)


@pytest.fixture
def db(django_project: DjangoProject) -> Iterator[DjangoProject]:
    """The project's databases; everything the test does is rolled back."""
    bind(django_project.databases)
    with contextlib.ExitStack() as stack:
        for alias in ALIASES:
            stack.enter_context(transaction.atomic(using=alias))
        try:
            yield django_project
        finally:
            for alias in ALIASES:
                transaction.set_rollback(True, using=alias)


def _empty_tables(database: DatabaseDSN) -> None:
    """Empty every table but Django's bookkeeping, with no trigger firing."""
    import psycopg

    with database.connect(autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        try:
            conn.execute("SET session_replication_role = replica")  # superusers only
        except psycopg.errors.InsufficientPrivilege:
            pgids = sorted(pgid for _, _, pgid in DJANGO_ENTRIES.values())
            value = "{" + ",".join(pgids) + "}"  # what every installed trigger skips on
            conn.execute("SELECT set_config('pgtrigger.ignore', %s, false)", (value,))
        row = conn.execute(
            "SELECT string_agg(format('%%I.%%I', schemaname, tablename), ', ') FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            " AND NOT tablename = ANY(%s)",
            (list(KEPT_TABLES),),
        ).fetchone()
        if row and row[0]:
            conn.execute(f"TRUNCATE {row[0]} RESTART IDENTITY CASCADE")


@pytest.fixture
def live_db(django_project: DjangoProject) -> Iterator[DjangoProject]:
    """The project's databases in autocommit; their tables are emptied afterwards."""
    bind(django_project.databases)
    try:
        yield django_project
    finally:
        close_connections()
        for database in django_project.databases.values():
            _empty_tables(database)


@pytest.fixture
def fresh_db(
    pg_server: PgServer, database_factory: Callable[[], DatabaseDSN]
) -> Iterator[DjangoProject]:
    """New, empty ``default`` and ``other`` databases (nothing migrated)."""
    fresh = DjangoProject(pg_server, {alias: database_factory() for alias in ALIASES})
    bind(fresh.databases)
    try:
        yield fresh
    finally:
        close_connections()


@pytest.fixture
def scratch_migrations(tmp_path: Path) -> Iterator[str]:
    """A package on sys.path where MIGRATION_MODULES can point makemigrations."""
    package = f"pgtrigger_scratch_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]
