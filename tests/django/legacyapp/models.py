"""Models whose migrations were written by django-pgtrigger 4.17 (see tests/django/README.md).

This module must import under django-pgtrigger 4.17 as well as under pgtrigger: it uses
django-pgtrigger's public API only. Do not change it without regenerating the migrations
with django-pgtrigger (the point is to replay *its* migration files).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchVectorField
from django.db import models

import pgtrigger


class LegacyPost(models.Model):
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, default="draft")
    is_pinned = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=16, null=True)
    version = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="lock_published",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="published")
                & ~pgtrigger.Q(new__status="archived"),
            ),
            pgtrigger.Protect(
                name="protect_pinned",
                operation=pgtrigger.Delete,
                condition=pgtrigger.Q(old__is_pinned=True),
            ),
            pgtrigger.Protect(
                name="keep_author",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__author__isnull=False)
                & pgtrigger.Q(old__author__df=pgtrigger.F("new__author")),
            ),
            pgtrigger.Protect(
                name="protect_note",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__note="locked") & ~pgtrigger.Q(new__note="locked"),
            ),
            pgtrigger.Protect(
                name="no_downgrade",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__version__gt=pgtrigger.F("new__version"))
                | pgtrigger.Q(new__status__in=["spam", "junk"]),
            ),
            pgtrigger.Trigger(
                name="versioning",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(exclude=["version"], exclude_auto=True),
                func="NEW.version = NEW.version + 1; RETURN NEW;",
            ),
            pgtrigger.SoftDelete(name="soft_delete", field="is_active"),
            pgtrigger.FSM(
                name="status_fsm",
                field="status",
                transitions=[("draft", "published"), ("published", "archived")],
            ),
        ]


class LegacyLedger(models.Model):
    amount = models.IntegerField(default=0)
    memo = models.TextField(default="")

    class Meta:
        triggers = [
            pgtrigger.ReadOnly(name="read_only_amount", fields=["amount"]),
            pgtrigger.Protect(
                name="protect_raw",
                operation=pgtrigger.Insert,
                condition=pgtrigger.Condition("NEW.amount < 0 AND NEW.memo NOT LIKE '100%'"),
            ),
            pgtrigger.Protect(
                name="protect_big_deletes",
                operation=pgtrigger.Delete,
                level=pgtrigger.Statement,
                condition=pgtrigger.Q(old__amount__gt=100),
            ),
            pgtrigger.Trigger(
                name="deferred_check",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func="RETURN NULL;",
            ),
            pgtrigger.Composer(
                name="statement_memo",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(new__memo__startswith="x"),
                func=pgtrigger.Func("PERFORM 1 FROM {cond_new_values}; RETURN NULL;"),
            ),
        ]


class LegacyDoc(models.Model):
    body = models.TextField(default="")
    search = SearchVectorField(null=True)

    class Meta:
        triggers = [
            pgtrigger.UpdateSearchVector(
                name="update_search", vector_field="search", document_fields=["body"]
            )
        ]


class LegacyUserProxy(User):
    class Meta:
        proxy = True
        triggers = [pgtrigger.ReadOnly(name="username_read_only", fields=["username"])]


class LegacyUserPermissions(User.user_permissions.through):  # type: ignore[name-defined,misc]
    class Meta:
        proxy = True
        triggers = [pgtrigger.Protect(name="protect_permission_insert", operation=pgtrigger.Insert)]
