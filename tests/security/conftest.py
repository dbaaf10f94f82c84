"""Roles for the security tests: a table owner, a writer, an attacker, and a trusted group.

Roles are cluster-wide and other sessions share the servers: each test gets its own, named
with a per-run suffix, and drops them at teardown (after ``DROP OWNED BY`` in the test's
database, the only place they own anything or hold a privilege). Nothing is granted on a
shared object.

- ``owner`` owns the tables and may create in ``public`` (where the trigger functions go);
- ``writer`` may only SELECT, INSERT, UPDATE and DELETE on them;
- ``attacker`` may CREATE in ``public`` (the default before PostgreSQL 15, kept by upgraded
  databases) and nothing on the tables;
- ``maintainer`` writes like ``writer`` and is a member of ``trusted``, the role
  ``ignorable_by`` names in the tests.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.pgservers import DatabaseDSN

ROLE_KINDS = ("owner", "writer", "attacker", "maintainer", "trusted")


@dataclass(frozen=True)
class Roles:
    database: DatabaseDSN
    suffix: str

    def name(self, kind: str) -> str:
        assert kind in ROLE_KINDS
        return f"pgtsec_{kind}_{self.suffix}"

    @property
    def owner(self) -> str:
        return self.name("owner")

    @property
    def writer(self) -> str:
        return self.name("writer")

    @property
    def attacker(self) -> str:
        return self.name("attacker")

    @property
    def maintainer(self) -> str:
        return self.name("maintainer")

    @property
    def trusted(self) -> str:
        return self.name("trusted")

    def dsn(self, kind: str) -> str:
        """The test database's DSN, logged in as that role (trust authentication)."""
        params = {**conninfo_to_dict(str(self.database)), "user": self.name(kind)}
        params.pop("password", None)
        return make_conninfo("", **params)

    def url(self, kind: str, driver: str = "psycopg") -> str:
        """A SQLAlchemy URL of the test database for that role."""
        import sqlalchemy as sa

        params = conninfo_to_dict(self.dsn(kind))
        query = {k: v for k, v in params.items() if k not in ("user", "dbname", "host", "port")}
        host = params.get("host")
        if host and host.startswith("/"):
            query["host"] = host
            host = None
        return sa.URL.create(
            f"postgresql+{driver}",
            username=params["user"],
            host=host,
            port=int(params["port"]) if params.get("port") else None,
            database=params["dbname"],
            query=query,
        ).render_as_string(hide_password=False)

    def connect(self, kind: str, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(kind), **kwargs)

    def admin(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return self.database.connect(**kwargs)


def _create_roles(roles: Roles) -> None:
    ident = {kind: sql.Identifier(roles.name(kind)) for kind in ROLE_KINDS}
    with roles.database.server.connect(autocommit=True) as conn:
        for kind in ROLE_KINDS:
            login = sql.SQL("NOLOGIN" if kind == "trusted" else "LOGIN")
            conn.execute(sql.SQL("CREATE ROLE {} {}").format(ident[kind], login))
        conn.execute(sql.SQL("GRANT {} TO {}").format(ident["trusted"], ident["maintainer"]))


def _drop_roles(roles: Roles) -> None:
    names = sql.SQL(", ").join(sql.Identifier(roles.name(kind)) for kind in ROLE_KINDS)
    with contextlib.suppress(psycopg.OperationalError), roles.admin(autocommit=True) as conn:
        # Connections the test left open would keep objects alive: end them first.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND usename = ANY(%s)",
            [[roles.name(kind) for kind in ROLE_KINDS]],
        )
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(names))
    with roles.database.server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(names))


@pytest.fixture
def roles(database: DatabaseDSN) -> Iterator[Roles]:
    """The five roles, with their privileges in ``database`` (see the module docstring)."""
    found = Roles(database, secrets.token_hex(4))
    _create_roles(found)
    try:
        with found.admin(autocommit=True) as conn:
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}, {}").format(
                    sql.Identifier(found.owner), sql.Identifier(found.attacker)
                )
            )
        yield found
    finally:
        _drop_roles(found)
