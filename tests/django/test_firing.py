"""``firing`` on Django models: makemigrations sees a change (one Remove/AddTrigger pair),
migrate installs it firing as declared and reverses exactly; ``ls`` shows it. The real
replication proof is ``tests/replication/test_logical_replication.py``."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

import pgtrigger
from pgtrigger.compiler import UpsertTriggerSqlV2
from pgtrigger.migrations import AddTrigger
from tests.django.helpers import fetch, installed_triggers, ls
from tests.django.migapp.models import Measure
from tests.django.test_migrations import generate, migrate, trigger_ops


def firing_of(prefix: str) -> str:
    rows = fetch("SELECT tgenabled::text FROM pg_trigger WHERE tgname LIKE %s", [prefix + "%"])
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_makemigrations_and_migrate_follow_firing(
    fresh_db: object, scratch_migrations: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with override_settings(MIGRATION_MODULES={"migapp": f"{scratch_migrations}.migapp"}):
        generate(scratch_migrations, "migapp")
        migrate("migapp")
        before = installed_triggers()
        assert firing_of("pgtrigger_protect_negative_") == "O"

        triggers = [
            pgtrigger.Protect(
                name="protect_negative",
                operation=pgtrigger.Insert | pgtrigger.Update,
                condition=pgtrigger.Q(new__amount__lt=0),
                firing=pgtrigger.Always,
            ),
            Measure._meta.triggers[1],
        ]
        monkeypatch.setattr(Measure._meta, "triggers", triggers)
        monkeypatch.setitem(Measure._meta.original_attrs, "triggers", triggers)

        written = generate(scratch_migrations, "migapp", name="always")
        module = written["migapp.0002_always"]
        assert sorted(op[:3] for op in trigger_ops(module)) == [
            ("add", "measure", "protect_negative"),
            ("remove", "measure", "protect_negative"),
        ]
        (added,) = [op for op in module.Migration.operations if isinstance(op, AddTrigger)]
        assert isinstance(added.trigger.sql, UpsertTriggerSqlV2)  # v1 cannot say it
        assert added.trigger.sql.firing == "ALWAYS"
        out = io.StringIO()
        call_command("makemigrations", "migapp", "--check", "--dry-run", stdout=out)
        assert "No changes detected" in out.getvalue()

        migrate("migapp")
        assert firing_of("pgtrigger_protect_negative_") == "A"
        migrate("migapp", "0001")
        assert firing_of("pgtrigger_protect_negative_") == "O"
        assert installed_triggers() == before


def test_ls_and_enable_with_a_registered_firing(db: object) -> None:
    replica = pgtrigger.Protect(name="replica_only", operation=pgtrigger.Delete, firing="replica")
    uri = "migapp.Measure:replica_only"
    with replica.register(Measure):
        pgtrigger.install(uri)
        (row,) = pgtrigger.ls(uri)
        assert (row.status, row.enabled, row.firing) == ("INSTALLED", True, "REPLICA")
        assert ls(uri)[uri].enabled == "REPLICA"
        pgtrigger.disable(uri)
        assert ls(uri)[uri].enabled == "DISABLED"
        pgtrigger.enable(uri)
        assert firing_of("pgtrigger_replica_only_") == "R"
        assert ls(uri)[uri].status == "INSTALLED"


def test_django_triggers_under_logical_replication(
    live_db: object, request: pytest.FixtureRequest
) -> None:
    """Django's ``default`` database on the service subscribes to the embedded server's
    ``migapp_measure``: a ``Replica`` trigger marks applied rows, an ordinary one local
    writes."""
    from tests.pgservers import EMBEDDED, SERVICE, ServerUnavailable, pool_of
    from tests.replication.conftest import Replication, subscribed
    from tests.replication.test_logical_replication import wait_for_row

    project = live_db
    if project.name != SERVICE:  # type: ignore[attr-defined]
        pytest.skip("the service subscribes (its wal_level is replica: it cannot publish)")
    pool = pool_of(request.config)
    try:
        publisher_server = pool.get(EMBEDDED, request)
    except ServerUnavailable as exc:
        pytest.skip(f"logical replication needs both test servers: {exc}")
    publisher = pool.create_database(publisher_server)
    subscriber = project.databases["default"]  # type: ignore[attr-defined]
    marks = [
        pgtrigger.Trigger(
            name=name,
            when=pgtrigger.Before,
            operation=pgtrigger.Insert,
            func=f"NEW.label := NEW.label || ' {name}'; RETURN NEW;",
            firing=firing,
        )
        for name, firing in [("origin_mark", pgtrigger.Origin), ("replica_mark", "replica")]
    ]
    uris = [f"migapp.Measure:{trigger.name}" for trigger in marks]
    try:
        with publisher.connect(autocommit=True) as pub:
            pub.execute(
                "CREATE TABLE public.migapp_measure (id bigint PRIMARY KEY,"
                " amount bigint NOT NULL DEFAULT 0, label text NOT NULL DEFAULT '')"
            )
        with marks[0].register(Measure), marks[1].register(Measure):
            pgtrigger.install(*uris)
            try:
                replication = Replication(publisher, subscriber)
                with subscribed(replication, "public.migapp_measure"):
                    with publisher.connect(autocommit=True) as pub:
                        pub.execute("INSERT INTO migapp_measure (id, label) VALUES (1000, 'x')")
                    wait_for_row(subscriber, "migapp_measure", 1000)
                    assert Measure.objects.get(id=1000).label == "x replica_mark"
                    assert Measure.objects.create(label="y").label == "y"
                    local = Measure.objects.exclude(id=1000).get()
                    assert local.label == "y origin_mark"
            finally:
                pgtrigger.uninstall(*uris)
    finally:
        pool.drop_database(publisher)
