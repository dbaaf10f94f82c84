"""``pgtrigger.ignore`` is a convenience; ``ignorable=False`` and ``ignorable_by`` make a
trigger a boundary.

Any role that may write may set ``pgtrigger.ignore`` (pgids are readable in ``pg_trigger``):
by default that skips the trigger. Declared ``ignorable=False`` the trigger has no ignore
check at all; declared ``ignorable_by=<role>`` the check passes only for a ``session_user``
who is a member of that role, so neither a writer nor a SECURITY DEFINER function a member
owns can switch it off.
"""

from __future__ import annotations

import pytest
from psycopg import sql

import pgtrigger
from pgtrigger.errors import NotIgnorableError
from tests.security import world
from tests.security.conftest import Roles

EQ = "OPERATOR(pg_catalog.=)"
DELETE = f"DELETE FROM post WHERE id {EQ} 'p1'"
REFUSED = ["pgtrigger: Cannot delete rows from post table"]


def protect(**options: object) -> pgtrigger.Protect:
    return pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete, **options)  # type: ignore[arg-type]


def installed(roles: Roles, trigger: pgtrigger.Trigger) -> str:
    """Install ``trigger`` on post as its owner; return the pgid."""
    world.build(roles, traps=False)
    table = world.post_table()
    world.install(roles, [trigger], table)
    return trigger.get_pgid(table)


def test_by_default_any_writer_can_skip_a_trigger(roles: Roles) -> None:
    pgid = installed(roles, protect())
    assert world.write(roles, "writer", DELETE).errors == REFUSED
    assert world.write(roles, "writer", DELETE, ignore=pgid).errors == []


def test_no_one_can_skip_an_unignorable_trigger(roles: Roles) -> None:
    pgid = installed(roles, protect(ignorable=False))
    assert world.write(roles, "writer", DELETE, ignore=pgid).errors == REFUSED
    assert world.write(roles, "maintainer", DELETE, ignore=pgid).errors == REFUSED


def test_only_members_of_the_role_can_skip_an_ignorable_by_trigger(roles: Roles) -> None:
    pgid = installed(roles, protect(ignorable_by=roles.trusted))
    assert world.write(roles, "writer", DELETE, ignore=pgid).errors == REFUSED
    assert world.write(roles, "maintainer", DELETE).errors == REFUSED  # not asked: it holds
    assert world.write(roles, "maintainer", DELETE, ignore=pgid).errors == []
    assert world.rows(roles)[0][0] == "p2"


def test_a_security_definer_function_does_not_lend_its_owners_membership(roles: Roles) -> None:
    """session_user, not current_user: calling a member's SECURITY DEFINER function does not
    make the writer a member."""
    pgid = installed(roles, protect(ignorable_by=roles.trusted))
    with roles.admin(autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION public.purge(text) RETURNS void LANGUAGE plpgsql"
                " SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$"
                " BEGIN PERFORM pg_catalog.set_config('pgtrigger.ignore', {}, true);"
                " DELETE FROM public.post WHERE id OPERATOR(pg_catalog.=) $1; END $$;"
                " ALTER FUNCTION public.purge(text) OWNER TO {};"
                " GRANT EXECUTE ON FUNCTION public.purge(text) TO {}, {}"
            ).format(
                sql.Literal("{" + pgid + "}"),
                sql.Identifier(roles.maintainer),
                sql.Identifier(roles.writer),
                sql.Identifier(roles.maintainer),
            )
        )
    assert world.write(roles, "writer", "SELECT public.purge('p1')").errors == REFUSED
    assert world.write(roles, "maintainer", "SELECT public.purge('p1')").errors == []


@pytest.mark.parametrize("option", ["ignorable_false", "ignorable_by"])
def test_instead_of_triggers_check_in_their_body(roles: Roles, option: str) -> None:
    """INSTEAD OF triggers cannot have a WHEN clause: the check sits in the body."""
    world.build(roles, traps=False)
    with roles.admin(autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE VIEW public.post_view AS SELECT * FROM public.post;"
                " ALTER VIEW public.post_view OWNER TO {owner};"
                " GRANT SELECT, DELETE ON public.post_view TO {writer}, {maintainer}"
            ).format(
                owner=sql.Identifier(roles.owner),
                writer=sql.Identifier(roles.writer),
                maintainer=sql.Identifier(roles.maintainer),
            )
        )
    view = pgtrigger.TableDescription(
        name="post_view", primary_key=("id",), fields=world.post_table().fields, kind="view"
    )
    options = (
        {"ignorable": False} if option == "ignorable_false" else {"ignorable_by": roles.trusted}
    )
    trigger = pgtrigger.Protect(
        name="view_guard",
        when=pgtrigger.InsteadOf,
        operation=pgtrigger.Delete,
        **options,  # type: ignore[arg-type]
    )
    world.install(roles, [trigger], view)
    pgid = trigger.get_pgid(view)
    delete = f"DELETE FROM post_view WHERE id {EQ} 'p1'"
    refused = ["pgtrigger: Cannot delete rows from post_view table"]
    assert world.write(roles, "writer", delete, ignore=pgid).errors == refused
    member = world.write(roles, "maintainer", delete, ignore=pgid).errors
    assert member == (refused if option == "ignorable_false" else [])


def test_pgtrigger_ignore_refuses_an_unignorable_trigger_at_once() -> None:
    table = world.post_table()
    unignorable = protect(ignorable=False)
    ignorable = pgtrigger.Protect(name="other", operation=pgtrigger.Update)
    with unignorable.register(table), ignorable.register(table):
        uri = unignorable.get_uri(table)
        with pytest.raises(NotIgnorableError, match=rf'"{uri}" is declared ignorable=False'):
            with pgtrigger.ignore(uri):
                pass  # pragma: no cover
        with pytest.raises(NotIgnorableError):
            with pgtrigger.ignore(ignorable.get_uri(table), uri):
                pass  # pragma: no cover
        with pgtrigger.ignore(ignorable.get_uri(table)):
            assert pgtrigger.is_ignored(ignorable.get_uri(table))
        with pgtrigger.ignore():  # everything: the unignorable one simply has no check
            pass


def test_an_unknown_ignorable_by_role_fails_the_install_naming_it(roles: Roles) -> None:
    world.build(roles, traps=False)
    from pgtrigger.errors import InstallationError

    with pytest.raises(InstallationError, match='ignorable_by role "nobody_such_role" does not'):
        world.install(roles, [protect(ignorable_by="nobody_such_role")], world.post_table())
    assert world.ls(roles, [protect()], world.post_table())[0].status == pgtrigger.UNINSTALLED
