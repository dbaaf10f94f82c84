"""Never adopt: an install refuses a function someone else created first under our name, and
``ls`` sees a function whose body or owner is not what the install left.

Function names are predictable (``pgtrigger_<name>_<hash>``, v1's shared
``_pgtrigger_should_ignore``). ``CREATE OR REPLACE FUNCTION`` run by a superuser keeps the
existing owner, who could later swap the body: so the install checks, after replacing, that
the function's owner may create triggers on the table itself, and fails (rolling back)
otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql

import pgtrigger
from pgtrigger import engine
from pgtrigger.errors import InstallationError
from tests.security import world
from tests.security.conftest import Roles

TRAP_BODY = " BEGIN RETURN NULL; END "


def soft_delete() -> pgtrigger.SoftDelete:
    return pgtrigger.SoftDelete(name="soft", field="is_active")


def plant(roles: Roles, signature: str, returns: str = "trigger") -> None:
    """The attacker creates ``public.<signature>`` before any install."""
    body = TRAP_BODY if returns == "trigger" else " BEGIN RETURN true; END "
    with roles.connect("attacker", autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION public.{signature} RETURNS {returns} LANGUAGE plpgsql AS $${body}$$"
        )


def functions(roles: Roles) -> dict[str, tuple[str, str]]:
    """name -> (owner, body) of every function in public."""
    with roles.admin() as conn:
        found = conn.execute(
            "SELECT proname, pg_get_userbyid(proowner), prosrc FROM pg_proc"
            " WHERE pronamespace = 'public'::regnamespace"
        ).fetchall()
    return {name: (owner, body) for name, owner, body in found}


def triggers_on_post(roles: Roles) -> list[Any]:
    with roles.admin() as conn:
        return conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.post'::regclass"
        ).fetchall()


def install_as_superuser(roles: Roles, trigger: pgtrigger.Trigger, template: str) -> None:
    with roles.admin() as conn:
        engine.install(
            engine.DbapiExecutor(conn), world.targets([trigger], world.post_table(template))
        )
        conn.commit()


#: (template, options) of every variant the adoption guard must cover.
VARIANTS = {
    "v1": ("v1", {}),
    "v2": ("v2", {}),
    "v2-ignorable_false": ("v2", {"ignorable": False}),
    "v2-ignorable_by": ("v2", {"ignorable_by": "trusted"}),
    "v2-search_path": ("v2", {"search_path": ["pg_catalog", "public"]}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_superusers_install_refuses_a_pre_created_trigger_function(
    roles: Roles, variant: str
) -> None:
    template, options = VARIANTS[variant]
    if "ignorable_by" in options:
        options = {"ignorable_by": roles.trusted}
    trigger = pgtrigger.SoftDelete(name="soft", field="is_active", **options)  # type: ignore[arg-type]
    world.build(roles, traps=False)
    pgid = trigger.get_pgid(world.post_table(template))
    plant(roles, f"{pgid}()")
    with pytest.raises(InstallationError) as failure:
        install_as_superuser(roles, trigger, template)
    message = str(failure.value)
    assert 'trigger "post:soft" on table "public.post"' in message
    assert f'{pgid}() is owned by role "{roles.attacker}"' in message  # (qualified or not)
    # Nothing half-installed, and the attacker's function is as the attacker left it.
    assert triggers_on_post(roles) == []
    assert functions(roles)[pgid] == (roles.attacker, TRAP_BODY)


def test_v1s_shared_helper_pre_created_is_refused(roles: Roles) -> None:
    world.build(roles, traps=False)
    plant(roles, "_pgtrigger_should_ignore(trigger_name name)", returns="boolean")
    with pytest.raises(InstallationError) as failure:
        install_as_superuser(roles, soft_delete(), "v1")
    assert (
        f'function public._pgtrigger_should_ignore(name) is owned by role "{roles.attacker}"'
        in str(failure.value)
    )
    assert triggers_on_post(roles) == []
    assert functions(roles)["_pgtrigger_should_ignore"][0] == roles.attacker


def test_the_table_owners_install_cannot_replace_it_either(roles: Roles) -> None:
    """Not a superuser: PostgreSQL itself refuses to replace another role's function."""
    world.build(roles, traps=False)
    pgid = soft_delete().get_pgid(world.post_table())
    plant(roles, f"{pgid}()")
    with pytest.raises(InstallationError, match=f"must be owner of function {pgid}"):
        world.install(roles, [soft_delete()], world.post_table())
    assert triggers_on_post(roles) == []


def test_a_function_the_table_owner_made_is_replaced(roles: Roles) -> None:
    """Someone who may create triggers on the table anyway is no intruder."""
    world.build(roles, traps=False)
    pgid = soft_delete().get_pgid(world.post_table())
    with roles.connect("owner", autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION public.{pgid}() RETURNS trigger LANGUAGE plpgsql AS $${TRAP_BODY}$$"
        )
    install_as_superuser(roles, soft_delete(), "v2")
    assert world.ls(roles, [soft_delete()], world.post_table())[0].status == pgtrigger.INSTALLED


def _drift(roles: Roles, trigger: pgtrigger.Trigger, template: str) -> engine.Status:
    (row,) = world.ls(roles, [trigger], world.post_table(template))
    return row


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_ls_sees_a_swapped_body_and_install_puts_it_back(roles: Roles, template: str) -> None:
    world.build(roles, traps=False)
    trigger = soft_delete()
    world.install(roles, [trigger], world.post_table(template))
    assert _drift(roles, trigger, template).status == pgtrigger.INSTALLED
    pgid = trigger.get_pgid(world.post_table(template))
    with roles.connect("owner", autocommit=True) as conn:
        conn.execute(
            f"CREATE OR REPLACE FUNCTION public.{pgid}() RETURNS trigger LANGUAGE plpgsql"
            f" AS $${TRAP_BODY}$$"
        )
    row = _drift(roles, trigger, template)
    assert row.status == pgtrigger.OUTDATED
    assert row.drift == f'the body of function "public"."{pgid}"() differs from what was installed'
    world.install(roles, [trigger], world.post_table(template))
    assert _drift(roles, trigger, template).status == pgtrigger.INSTALLED
    assert world.write(roles, "writer", "DELETE FROM post").errors == []
    assert [r[2] for r in world.rows(roles)] == [False, False, False]


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_ls_sees_a_function_handed_to_another_role(roles: Roles, template: str) -> None:
    world.build(roles, traps=False)
    trigger = soft_delete()
    world.install(roles, [trigger], world.post_table(template))
    pgid = trigger.get_pgid(world.post_table(template))
    with roles.admin(autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER FUNCTION public.{}() OWNER TO {}").format(
                sql.Identifier(pgid), sql.Identifier(roles.attacker)
            )
        )
    row = _drift(roles, trigger, template)
    assert row.status == pgtrigger.OUTDATED
    assert row.drift == (
        f'function "public"."{pgid}"() is owned by role "{roles.attacker}",'
        ' which may not create triggers on table "public"."post"'
    )
    with pytest.raises(InstallationError, match=f'owned by role "{roles.attacker}"'):
        install_as_superuser(roles, trigger, template)


def test_ls_sees_v1s_helper_swapped_or_handed_over(roles: Roles) -> None:
    world.build(roles, traps=False)
    trigger = soft_delete()
    world.install(roles, [trigger], world.post_table("v1"))
    assert _drift(roles, trigger, "v1").status == pgtrigger.INSTALLED
    with roles.admin(autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER FUNCTION public._pgtrigger_should_ignore(name) OWNER TO {}").format(
                sql.Identifier(roles.attacker)
            )
        )
    assert _drift(roles, trigger, "v1").drift == (
        'v1\'s ignore function "public"._pgtrigger_should_ignore(name) is owned by role'
        f' "{roles.attacker}", which may not create triggers on table "public"."post"'
    )
    with roles.admin(autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER FUNCTION public._pgtrigger_should_ignore(name) OWNER TO {}").format(
                sql.Identifier(roles.owner)
            )
        )
        conn.execute(
            "CREATE OR REPLACE FUNCTION public._pgtrigger_should_ignore(trigger_name name)"
            " RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RETURN true; END $$"
        )
    assert _drift(roles, trigger, "v1").drift == (
        'the body of v1\'s ignore function "public"._pgtrigger_should_ignore(name) differs'
        " from what was installed"
    )


def test_comments_of_earlier_installs_still_read() -> None:
    """django-pgtrigger (and v1) write the fingerprint alone; v2 adds the body's digest."""
    from pgtrigger import compiler

    assert compiler.split_comment("ab12") == ("ab12", None)
    assert compiler.split_comment("ab12:cd34") == ("ab12", "cd34")
    assert compiler.split_comment(None) == (None, None)
    compiled = soft_delete().compile(world.post_table("v2"))
    assert (
        compiled.comment == f"{compiled.hash}:{compiler.body_digest(compiled.function_body or '')}"
    )
    v1 = soft_delete().compile(world.post_table("v1"))
    assert v1.comment == v1.hash
