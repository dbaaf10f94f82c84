"""The scene of the security tests: a table, its roles, and an attacker's traps in ``public``.

``post`` belongs to the owner; the writer may read and write it. The attacker, who may only
create objects in ``public``, plants what the search-path hijack needs: an ``=`` operator for
``varchar`` (a better match for a varchar column than the built-in ``text`` one), a
``concat(varchar, text, varchar)`` (v1's FSM calls ``CONCAT``), both recording that they ran
with a warning (which reaches the client even when the statement fails and its work is
rolled back) and lying (``=`` always says equal). A test asserts that no such warning came:
the attacker's code never ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

import pgtrigger
from pgtrigger import engine
from tests.security.conftest import Roles

F = pgtrigger.FieldDescription

TABLE = """
CREATE TABLE public.post (
    id varchar(10) PRIMARY KEY,
    status varchar(20) NOT NULL,
    body text NOT NULL DEFAULT '',
    is_active boolean NOT NULL DEFAULT true
);
INSERT INTO public.post VALUES ('p1', 'draft', '', true), ('p2', 'published', '', true),
                               ('p3', 'locked', '', true);
"""

ATTACKER_RAN = "attacker code ran as "
TRAPS = f"""
CREATE FUNCTION public.evil_eq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING '{ATTACKER_RAN}%: operator =', current_user;
    RETURN true;
END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.evil_eq);
CREATE FUNCTION public.concat(varchar, text, varchar) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING '{ATTACKER_RAN}%: concat', current_user;
    RETURN 'published:draft';
END $$;
"""


def post_table(template: str = "v2", schema: str | None = None) -> pgtrigger.TableDescription:
    return pgtrigger.TableDescription(
        name="post",
        schema=schema,
        primary_key=("id",),
        template=template,
        fields=(
            F("id", "id", nullable=False, sql_type="character varying"),
            F("status", "status", nullable=False, sql_type="character varying"),
            F("body", "body", nullable=False, sql_type="text"),
            F("is_active", "is_active", nullable=False, sql_type="boolean"),
        ),
    )


def build(roles: Roles, *, traps: bool = True) -> None:
    """The table (owned by ``owner``, written by ``writer`` and ``maintainer``) and the traps."""
    with roles.admin(autocommit=True) as conn:
        conn.execute(TABLE)
        conn.execute(
            sql.SQL("ALTER TABLE public.post OWNER TO {}").format(sql.Identifier(roles.owner))
        )
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON public.post TO {}, {}").format(
                sql.Identifier(roles.writer), sql.Identifier(roles.maintainer)
            )
        )
    if traps:
        with roles.connect("attacker", autocommit=True) as conn:
            conn.execute(TRAPS)


def targets(
    triggers: Sequence[pgtrigger.Trigger], table: pgtrigger.TableDescription
) -> list[engine.Target]:
    return [engine.Target(t.get_uri(table), t.compile(table)) for t in triggers]


def install(
    roles: Roles,
    triggers: Sequence[pgtrigger.Trigger],
    table: pgtrigger.TableDescription,
    role: str = "owner",
) -> list[engine.Status]:
    """Install through the engine as ``role`` (its default search path: "$user", public)."""
    with roles.connect(role) as conn:
        found = engine.install(engine.DbapiExecutor(conn), targets(triggers, table))
        conn.commit()
    return found


def ls(
    roles: Roles, triggers: Sequence[pgtrigger.Trigger], table: pgtrigger.TableDescription
) -> list[engine.Status]:
    with roles.admin() as conn:
        return engine.ls(engine.DbapiExecutor(conn), targets(triggers, table), include_prune=False)


@dataclass
class Outcome:
    #: The first line of each statement's error.
    errors: list[str] = field(default_factory=list)
    #: What the attacker's functions reported (``<role>: <what>``), once per call.
    attacker_ran: list[str] = field(default_factory=list)


def write(
    roles: Roles, role: str, *statements: str, ignore: str | None = None, keep: bool = True
) -> Outcome:
    """Run ``statements`` as ``role``, each in its own savepoint, in one transaction
    (committed, or rolled back when not ``keep``).

    ``ignore``: a pgid the role puts in ``pgtrigger.ignore`` first, as any writer can.
    """
    outcome = Outcome()

    def notice(diagnostic: psycopg.errors.Diagnostic) -> None:
        text = diagnostic.message_primary or ""
        if text.startswith(ATTACKER_RAN):
            outcome.attacker_ran.append(text[len(ATTACKER_RAN) :])

    with roles.connect(role) as conn:
        conn.add_notice_handler(notice)
        with conn.transaction(force_rollback=not keep):
            if ignore is not None:
                conn.execute(
                    "SELECT pg_catalog.set_config('pgtrigger.ignore', %s, true)",
                    ["{" + ignore + "}"],
                )
            for statement in statements:
                try:
                    with conn.transaction():
                        conn.execute(statement)
                except psycopg.Error as exc:
                    outcome.errors.append(str(exc).splitlines()[0])
    return outcome


def rows(roles: Roles) -> list[tuple[Any, ...]]:
    with roles.admin() as conn:
        return conn.execute("SELECT id, status, is_active FROM public.post ORDER BY id").fetchall()
