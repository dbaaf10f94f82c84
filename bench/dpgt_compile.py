"""Compile row_overhead.py's triggers with django-pgtrigger itself; print them as JSON.

Run with the django-pgtrigger venv's python (``bench/competitors.py``), never ours: both
projects provide a top-level ``pgtrigger`` package::

    python = competitors.ensure_env(competitors.DJANGO_PGTRIGGER)
    subprocess.run([python, "-P", "bench/dpgt_compile.py"], capture_output=True, check=True)

No database is needed: Django is configured in-process with a PostgreSQL backend it never
connects to (compiling, ``Q`` conditions included, only needs the backend's operations).
Models map onto the benchmark's tables through ``db_table`` and declare the triggers in
``Meta.triggers``, as a Django project would. Output on stdout::

    {"django_pgtrigger": "4.17.0", "django": "5.2", "triggers": {
        "<trigger name>": {"uri": ..., "pgid": ..., "install_sql": ..., "uninstall_sql": ...}}}

Keep the triggers identical to ``build_cases()`` in row_overhead.py: that script compares
this SQL with its own v1 (django-pgtrigger's template) and says when they drift apart.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from typing import Any

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["pgtrigger"],
    DATABASES={
        "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "never_connected"},
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
)
django.setup()

from django.db import models  # noqa: E402

import pgtrigger  # noqa: E402  (django-pgtrigger's: needs the settings above)

APP = "bench"
HISTORY_COLUMNS = "post_id, status, version, body, op"
HISTORY_UPDATE = (
    f"INSERT INTO post_history ({HISTORY_COLUMNS})"
    " SELECT id, status, version, body, 'update' FROM new_values; RETURN NULL;"
)
HISTORY_INSERT = (
    f"INSERT INTO post_history ({HISTORY_COLUMNS})"
    " SELECT id, status, version, body, 'insert' FROM new_values; RETURN NULL;"
)


def post_triggers() -> list[Any]:
    """The triggers of row_overhead.py's cases, in django-pgtrigger's own classes."""
    return [
        pgtrigger.Trigger(
            name="versioning",
            when=pgtrigger.Before,
            operation=pgtrigger.Update,
            condition=pgtrigger.AnyChange(),
            func="NEW.version = NEW.version + 1; RETURN NEW;",
        ),
        pgtrigger.FSM(
            name="status_fsm",
            field="status",
            transitions=[("draft", "published"), ("published", "archived"), ("archived", "draft")],
        ),
        pgtrigger.SoftDelete(name="soft_delete", field="is_active"),
        pgtrigger.Protect(
            name="protect_locked",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__status="locked"),
        ),
        pgtrigger.Trigger(
            name="insert_defaults",
            when=pgtrigger.Before,
            operation=pgtrigger.Insert,
            func="NEW.version = 1; RETURN NEW;",
        ),
        pgtrigger.Trigger(
            name="history_update",
            level=pgtrigger.Statement,
            when=pgtrigger.After,
            operation=pgtrigger.Update,
            referencing=pgtrigger.Referencing(old="old_values", new="new_values"),
            func=HISTORY_UPDATE,
        ),
        pgtrigger.Trigger(
            name="history_insert",
            level=pgtrigger.Statement,
            when=pgtrigger.After,
            operation=pgtrigger.Insert,
            referencing=pgtrigger.Referencing(new="new_values"),
            func=HISTORY_INSERT,
        ),
    ]


class Post(models.Model):
    """The benchmark's ``post`` table."""

    id = models.IntegerField(primary_key=True)
    status = models.TextField(null=True)
    version = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)
    body = models.TextField(null=True)

    class Meta:
        app_label = APP
        db_table = "post"
        triggers = post_triggers()


def main() -> int:
    compiled = {}
    for trigger in Post._meta.triggers:
        result = trigger.compile(Post)
        compiled[trigger.name] = {
            "uri": trigger.get_uri(Post),
            "pgid": trigger.get_pgid(Post),
            "install_sql": result.install_sql,
            "uninstall_sql": result.uninstall_sql,
        }
    json.dump(
        {
            "django_pgtrigger": importlib.metadata.version("django-pgtrigger"),
            "django": django.get_version(),
            "triggers": compiled,
        },
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
