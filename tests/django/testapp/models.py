"""The test project's main app: one model per trigger kind and per way of declaring one."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchVectorField
from django.db import models

import pgtrigger


class ProtectedRow(models.Model):
    """Protect, row level: rows cannot be deleted."""

    name = models.CharField(max_length=32, default="")

    class Meta:
        triggers = [pgtrigger.Protect(name="protect_delete", operation=pgtrigger.Delete)]


class StatementProtected(models.Model):
    """Protect, statement level: no UPDATE that touches a row; no TRUNCATE at all."""

    value = models.IntegerField(default=0)

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="protect_update", operation=pgtrigger.Update, level=pgtrigger.Statement
            ),
            pgtrigger.Protect(
                name="protect_truncate", operation=pgtrigger.Truncate, level=pgtrigger.Statement
            ),
        ]


class ReadOnlyFields(models.Model):
    """ReadOnly on some fields."""

    frozen = models.CharField(max_length=32, default="")
    free = models.CharField(max_length=32, default="")

    class Meta:
        triggers = [pgtrigger.ReadOnly(name="frozen_read_only", fields=["frozen"])]


class ReadOnlyExcept(models.Model):
    """ReadOnly on every field but one."""

    locked = models.IntegerField(default=0)
    editable = models.CharField(max_length=32, default="")

    class Meta:
        triggers = [pgtrigger.ReadOnly(name="read_only_except", exclude=["editable"])]


class SoftDeleted(models.Model):
    """SoftDelete on a boolean: DELETE sets is_active = false instead."""

    is_active = models.BooleanField(default=True)

    class Meta:
        triggers = [pgtrigger.SoftDelete(name="soft_delete", field="is_active")]


class SoftDeleteBase(models.Model):
    """Abstract: its triggers are inherited by every concrete child."""

    status = models.CharField(max_length=16, default="active")

    class Meta:
        abstract = True
        triggers = [
            pgtrigger.SoftDelete(name="soft_delete_status", field="status", value="inactive")
        ]


class Article(SoftDeleteBase):
    """A child with its own Meta, inheriting the parent's (and so its triggers)."""

    title = models.CharField(max_length=32, default="")

    class Meta(SoftDeleteBase.Meta):
        ordering = ["title"]


class Note(SoftDeleteBase):
    """A child with no Meta of its own: Django hands it the abstract parent's."""

    text = models.CharField(max_length=32, default="")


class StatusMachine(models.Model):
    """FSM: status moves draft -> published -> archived -> draft only."""

    status = models.CharField(max_length=16, default="draft")

    class Meta:
        triggers = [
            pgtrigger.FSM(
                name="status_fsm",
                field="status",
                transitions=[
                    ("draft", "published"),
                    ("published", "archived"),
                    ("archived", "draft"),
                ],
            )
        ]


class HistoryLog(models.Model):
    """Where Tracked's Composer triggers write."""

    source = models.CharField(max_length=16)
    old_value = models.CharField(max_length=32, null=True)
    new_value = models.CharField(max_length=32, null=True)


class Tracked(models.Model):
    """Composer: statement-level history (transition tables), with a condition, and row level."""

    value = models.CharField(max_length=32, default="")

    class Meta:
        triggers = [
            pgtrigger.Composer(
                name="track_history",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Update,
                func=(
                    "INSERT INTO testapp_historylog(source, old_value, new_value)"
                    " SELECT 'statement', old_values.value, new_values.value"
                    " FROM old_values JOIN new_values ON old_values.id = new_values.id;"
                    " RETURN NULL;"
                ),
            ),
            pgtrigger.Composer(
                name="track_big",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(new__value__startswith="big"),
                func=pgtrigger.Func(
                    "INSERT INTO testapp_historylog(source, new_value)"
                    " SELECT 'big', new_values.value FROM {cond_new_values}; RETURN NULL;"
                ),
            ),
            pgtrigger.Composer(
                name="track_insert",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                func=(
                    "INSERT INTO testapp_historylog(source, new_value) VALUES ('row', NEW.value);"
                    " RETURN NULL;"
                ),
            ),
        ]


class Document(models.Model):
    """UpdateSearchVector keeps ``search`` in step with title and body."""

    title = models.CharField(max_length=64, default="")
    body = models.TextField(default="")
    search = SearchVectorField(null=True)

    class Meta:
        triggers = [
            pgtrigger.UpdateSearchVector(
                name="update_search", vector_field="search", document_fields=["title", "body"]
            )
        ]


class Budget(models.Model):
    """A deferrable (constraint) trigger: amounts must not be negative at commit."""

    amount = models.IntegerField(default=0)

    class Meta:
        triggers = [
            pgtrigger.Trigger(
                name="non_negative",
                when=pgtrigger.After,
                operation=pgtrigger.Insert | pgtrigger.Update,
                timing=pgtrigger.Deferred,
                func=(
                    "IF EXISTS (SELECT 1 FROM testapp_budget WHERE id = NEW.id AND amount < 0)"
                    " THEN RAISE EXCEPTION 'pgtrigger: negative budget %', NEW.id; END IF;"
                    " RETURN NULL;"
                ),
            )
        ]


class Versioned(models.Model):
    """The cookbook's versioned model: Trigger with AnyChange, Protect with AnyChange(field)."""

    version = models.IntegerField(default=0)
    text = models.CharField(max_length=32, default="")

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="protect_version",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("version"),
            ),
            pgtrigger.Trigger(
                name="versioning",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                func="NEW.version = NEW.version + 1; RETURN NEW;",
                condition=pgtrigger.AnyChange(),
            ),
        ]


class Post(models.Model):
    """Q conditions: negation, booleans, a foreign key, a nullable field."""

    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, default="draft")
    is_pinned = models.BooleanField(default=False)
    note = models.CharField(max_length=16, null=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="lock_published",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="published")
                & ~pgtrigger.Q(new__status="inactive"),
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
        ]


class UserProxy(User):
    """A trigger on a third-party model (auth.User), through a proxy."""

    class Meta:
        proxy = True
        triggers = [pgtrigger.Protect(name="protect_user_delete", operation=pgtrigger.Delete)]


class UserGroupTriggers(User.groups.through):  # type: ignore[name-defined,misc]
    """A trigger on the auto-created many-to-many through model of User.groups."""

    class Meta:
        proxy = True
        triggers = [pgtrigger.Protect(name="protect_group_remove", operation=pgtrigger.Delete)]


@pgtrigger.register(pgtrigger.Protect(name="protect_decorated_delete", operation=pgtrigger.Delete))
class Decorated(models.Model):
    """``pgtrigger.register`` as a class decorator."""

    name = models.CharField(max_length=32, default="")


class Registered(models.Model):
    """``pgtrigger.register(...)(Model)`` called as a function."""

    value = models.IntegerField(default=0)


pgtrigger.register(pgtrigger.Protect(name="protect_registered_update", operation=pgtrigger.Update))(
    Registered
)


class SchemaItem(models.Model):
    """Multi-schema: its trigger records which schema's table it fired on."""

    origin = models.CharField(max_length=63, default="")

    class Meta:
        triggers = [
            pgtrigger.Trigger(
                name="stamp_schema",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func="NEW.origin = TG_TABLE_SCHEMA; RETURN NEW;",
            )
        ]


class QuotedNames(models.Model):
    """Mixed case, spaces and reserved words in table and column names."""

    order = models.IntegerField(default=0, db_column="Order")
    label = models.CharField(max_length=16, default="", db_column="the label")

    class Meta:
        db_table = "testapp_Quoted Names"
        triggers = [
            pgtrigger.Protect(
                name="protect_negative_order",
                operation=pgtrigger.Insert | pgtrigger.Update,
                condition=pgtrigger.Q(new__order__lt=0) | pgtrigger.Q(new__label="it's"),
            ),
            pgtrigger.SoftDelete(name="soft_delete_label", field="label", value="gone"),
        ]


class SchemaQualified(models.Model):
    """A table in another schema (django's ``schema"."table`` spelling of db_table)."""

    name = models.CharField(max_length=16, default="")

    class Meta:
        db_table = 'pgt_extra"."qualified_item'
        triggers = [pgtrigger.Protect(name="protect_qualified_delete", operation=pgtrigger.Delete)]
