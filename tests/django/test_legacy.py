"""A project whose migrations django-pgtrigger 4.17 wrote (``legacyapp``) switches to pgtrigger.

The migration files under ``legacyapp/migrations`` are django-pgtrigger's own output
(regenerate with the command in tests/django/README.md). They must load and apply with
pgtrigger, ``makemigrations`` must see no change, every trigger must be INSTALLED, and
reinstalling with pgtrigger must produce the very same SQL.

``test_installed_by_django_pgtrigger`` goes one step further when django-pgtrigger 4.17 is at
hand (``DJANGO_PGTRIGGER_PATH``: a ``pip install --target DIR django-pgtrigger==4.17.0``
directory): django-pgtrigger itself migrates a database, then pgtrigger takes it over.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

import pgtrigger
from tests.django.helpers import blocked, fetch, installed_triggers, statuses
from tests.django.legacyapp.models import LegacyLedger, LegacyPost

ROOT = Path(__file__).resolve().parents[2]


def legacy_uris() -> list[str]:
    return sorted(
        trigger.get_uri(model)
        for model, trigger in pgtrigger.registered()
        if model._meta.app_label == "legacyapp"
    )


def legacy_statuses() -> dict[str, tuple[str, str]]:
    return statuses(*legacy_uris())


def definitions() -> dict[str, tuple[str, str, str]]:
    """pgid -> (trigger definition, function definition, hash comment) of legacyapp's triggers."""
    rows = fetch(
        "SELECT t.tgname, pg_get_triggerdef(t.oid), pg_get_functiondef(t.tgfoid),"
        " coalesce(obj_description(t.oid, 'pg_trigger'), '')"
        " FROM pg_trigger t WHERE t.tgname = ANY(%s)",
        [[pgtrigger.registry.pgid_of(uri) for uri in legacy_uris()]],
    )
    return {name: (trigger, function, comment) for name, trigger, function, comment in rows}


def reinstall_with_pgtrigger() -> None:
    """Force pgtrigger to install each legacy trigger again, from its own compiler."""
    for model, trigger in pgtrigger.registered(*legacy_uris()):
        trigger.install(model)


def check_takeover() -> None:
    """What a project switching to pgtrigger relies on."""
    uris = legacy_uris()
    assert len(uris) == 16
    assert legacy_statuses() == {uri: ("INSTALLED", "ENABLED") for uri in uris}
    out = io.StringIO()
    call_command("makemigrations", "legacyapp", "--check", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "No changes detected in app 'legacyapp'"
    before = definitions()
    assert len(before) == 16
    reinstall_with_pgtrigger()
    assert definitions() == before  # same SQL, byte for byte


def test_legacy_migrations_apply_and_reverse(fresh_db: object) -> None:
    call_command("migrate", "legacyapp", verbosity=0)
    check_takeover()
    call_command("migrate", "legacyapp", "zero", verbosity=0)
    assert installed_triggers() == {}
    call_command("migrate", "legacyapp", verbosity=0)
    assert set(legacy_statuses().values()) == {("INSTALLED", "ENABLED")}


def test_legacy_triggers_behave(db: object) -> None:
    author, other = User.objects.create(username="a"), User.objects.create(username="b")
    post = LegacyPost.objects.create(author=author, note="locked")
    post.status = "published"
    post.save()
    post.refresh_from_db()
    assert post.version == 1
    with blocked("Cannot update rows from legacyapp_legacypost"):
        LegacyPost.objects.update(status="draft")  # lock_published
    draft = LegacyPost.objects.create()
    with blocked('Invalid transition of field "status" from "draft" to "archived"'):
        LegacyPost.objects.filter(pk=draft.pk).update(status="archived")
    with pgtrigger.ignore("legacyapp.LegacyPost:soft_delete"):
        draft.delete()  # really deleted
    with blocked("Cannot update rows from legacyapp_legacypost"):
        LegacyPost.objects.update(status="archived", author=other)
    with blocked("Cannot update rows from legacyapp_legacypost"):
        LegacyPost.objects.update(status="archived", note=None)
    with blocked("Cannot update rows from legacyapp_legacypost"):
        LegacyPost.objects.update(status="archived", version=0)
    LegacyPost.objects.update(status="archived")
    LegacyPost.objects.filter(pk=post.pk).delete()
    assert LegacyPost.objects.values_list("status", "is_active", "version").get() == (
        "archived",
        False,
        3,  # status change, then is_active: each bumped the version
    )
    with blocked("Cannot delete rows"):
        LegacyPost.objects.create(is_pinned=True).delete()
    with blocked("Cannot update rows from auth_user"):
        User.objects.filter(pk=author.pk).update(username="renamed")

    ledger = LegacyLedger.objects.create(amount=500, memo="x")
    with blocked("Cannot insert rows"):
        LegacyLedger.objects.create(amount=-1, memo="")
    with blocked("Cannot delete rows from legacyapp_legacyledger"):
        ledger.delete()
    # Triggers installed from django-pgtrigger's migrations honour pgtrigger.ignore.
    with pgtrigger.ignore(
        "legacyapp.LegacyLedger:protect_big_deletes", "legacyapp.LegacyPost:status_fsm"
    ):
        LegacyLedger.objects.all().delete()
        LegacyPost.objects.update(status="draft")
    assert not LegacyLedger.objects.exists()


needs_django_pgtrigger = pytest.mark.skipif(
    not os.environ.get("DJANGO_PGTRIGGER_PATH"),
    reason="DJANGO_PGTRIGGER_PATH (a pip --target install of django-pgtrigger 4.17) is not set",
)


def run_django_pgtrigger(args: list[str], cwd: Path, **env: str) -> str:
    """``python ARGS`` with django-pgtrigger's ``pgtrigger`` first on sys.path."""
    path = os.environ["DJANGO_PGTRIGGER_PATH"]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, str(ROOT)]), **env}
    check = "import pgtrigger, sys; sys.exit(not pgtrigger.__file__.startswith(sys.argv[1]))"
    # Not from the repository: its own pgtrigger/ would come first on sys.path.
    subprocess.run([sys.executable, "-c", check, path], env=full_env, cwd=cwd, check=True)
    done = subprocess.run(
        [sys.executable, *args], env=full_env, cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout


@needs_django_pgtrigger
def test_installed_by_django_pgtrigger(fresh_db: object, tmp_path: Path) -> None:
    database = fresh_db.databases["default"]  # type: ignore[attr-defined]
    run_django_pgtrigger(
        ["-m", "django", "migrate", "legacyapp", "-v0"],
        tmp_path,
        DJANGO_SETTINGS_MODULE="tests.django.legacy_settings",
        PGTRIGGER_LEGACY_DATABASE=json.dumps(database.django_settings()),
    )
    check_takeover()


HASHES = """
import json, django
django.setup()
import pgtrigger
hashes = {}
for model, trigger in pgtrigger.registered():
    try:
        hashes[trigger.get_uri(model)] = trigger.compile(model).sql.hash
    except Exception as exc:
        hashes[trigger.get_uri(model)] = f"{type(exc).__name__}: {exc}"
print(json.dumps(hashes))
"""

#: Where pgtrigger knowingly differs from django-pgtrigger 4.17.
DIFFERENT_ON_PURPOSE = {
    # 4.17 refuses statement-level Protect on TRUNCATE; pgtrigger refuses every TRUNCATE.
    "testapp.StatementProtected:protect_truncate",
    # 4.17 leaves the column unquoted (SET the label = ...): SQL Postgres rejects.
    "testapp.QuotedNames:soft_delete_label",
}


@needs_django_pgtrigger
def test_every_hash_matches_django_pgtrigger(tmp_path: Path) -> None:
    """Every trigger of this test project compiles to django-pgtrigger 4.17's hash, so a
    project switching over gets no migration churn."""
    theirs = json.loads(
        run_django_pgtrigger(
            ["-c", HASHES], tmp_path, DJANGO_SETTINGS_MODULE="tests.django.settings"
        )
    )
    ours = {
        trigger.get_uri(model): trigger.compile(model).sql.hash
        for model, trigger in pgtrigger.registered()
    }
    assert set(theirs) == set(ours)
    differ = {uri for uri in ours if ours[uri] != theirs[uri]}
    assert differ == DIFFERENT_ON_PURPOSE, {uri: theirs[uri] for uri in differ}
