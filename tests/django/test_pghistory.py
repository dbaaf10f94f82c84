"""django-pghistory 3.x on pgtrigger (smoke test).

django-pghistory requires "django-pgtrigger" by name, so scripts/test installs it with
``--no-deps``; it imports ``pgtrigger``, ``pgtrigger.core`` and builds its triggers with
``pgtrigger.Composer``, ``pgtrigger.register`` and ``Meta.triggers``.
"""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test.utils import override_settings

import pgtrigger
from tests.django.helpers import statuses

pghistory = pytest.importorskip("pghistory")

from tests.django.historyapp.models import Thing  # noqa: E402

TRACKERS = ("insert_insert", "update_update", "delete_delete")


def events() -> list[tuple[str, str, int]]:
    event_model = apps.get_model("historyapp", "ThingEvent")
    return list(event_model.objects.order_by("pgh_id").values_list("pgh_label", "name", "count"))


def exercise() -> None:
    thing = Thing.objects.create(name="a")
    thing.count = 1
    thing.save()
    thing.save()  # no change: no update event (the condition is AnyChange)
    with pghistory.context(user="alice", reason="smoke"):
        thing.name = "b"
        thing.save()
    Thing.objects.filter(pk=thing.pk).delete()


def test_events_and_context(db: object) -> None:
    exercise()
    assert events() == [
        ("insert", "a", 0),
        ("update", "a", 1),
        ("update", "b", 1),
        ("delete", "b", 1),
    ]
    event_model = apps.get_model("historyapp", "ThingEvent")
    first, *_ = event_model.objects.order_by("pgh_id")
    assert first.pgh_context is None
    with_context = event_model.objects.get(pgh_label="update", name="b")
    assert with_context.pgh_context.metadata == {"user": "alice", "reason": "smoke"}


def test_triggers_are_registered_and_installed(db: object) -> None:
    uris = [f"historyapp.Thing:{name}" for name in TRACKERS]
    assert statuses(*uris) == {uri: ("INSTALLED", "ENABLED") for uri in uris}
    with pgtrigger.ignore("historyapp.Thing:insert_insert"):
        Thing.objects.create(name="untracked")
    assert events() == []


def test_migrations_generate_and_apply(fresh_db: object, scratch_migrations: str) -> None:
    with override_settings(MIGRATION_MODULES={"historyapp": f"{scratch_migrations}.historyapp"}):
        call_command("makemigrations", "historyapp", verbosity=0)
        importlib.invalidate_caches()
        module = importlib.import_module(f"{scratch_migrations}.historyapp.0001_initial")
        added = sorted(
            op.trigger.name for op in module.Migration.operations if hasattr(op, "trigger")
        )
        assert added == sorted(TRACKERS)
        call_command("migrate", "historyapp", verbosity=0)
        out = io.StringIO()
        call_command("makemigrations", "historyapp", "--check", "--dry-run", stdout=out)
        assert out.getvalue().strip() == "No changes detected in app 'historyapp'"
    exercise()
    assert [label for label, _, _ in events()] == ["insert", "update", "update", "delete"]


def test_context_and_ignore_in_autocommit(live_db: object) -> None:
    """pghistory's execute wrapper and pgtrigger's run side by side on one connection."""
    thing = Thing.objects.create(name="a")
    with pghistory.context(user="bob"):
        with pgtrigger.ignore("historyapp.Thing:update_update"):
            thing.count = 5
            thing.save()
        thing.name = "b"
        thing.save()
    thing.name = "c"
    thing.save()
    event_model = apps.get_model("historyapp", "ThingEvent")
    rows = [
        (e.pgh_label, e.name, e.count, e.pgh_context.metadata if e.pgh_context else None)
        for e in event_model.objects.order_by("pgh_id").select_related("pgh_context")
    ]
    assert rows == [
        ("insert", "a", 0, None),
        ("update", "b", 5, {"user": "bob"}),
        ("update", "c", 5, None),
    ]
