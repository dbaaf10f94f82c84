"""Registration: Meta.triggers, abstract bases, proxies, ``register`` and ``registered``.

No database needed: these run once, not per server.
"""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth.models import User

import pgtrigger
from tests.django.otherapp.models import OtherItem
from tests.django.testapp import models

EXPECTED_TESTAPP_URIS = {
    "testapp.ProtectedRow:protect_delete",
    "testapp.StatementProtected:protect_update",
    "testapp.StatementProtected:protect_truncate",
    "testapp.ReadOnlyFields:frozen_read_only",
    "testapp.ReadOnlyExcept:read_only_except",
    "testapp.SoftDeleted:soft_delete",
    "testapp.Article:soft_delete_status",
    "testapp.Note:soft_delete_status",
    "testapp.StatusMachine:status_fsm",
    "testapp.Tracked:track_history",
    "testapp.Tracked:track_big",
    "testapp.Tracked:track_insert",
    "testapp.Document:update_search",
    "testapp.Budget:non_negative",
    "testapp.Versioned:protect_version",
    "testapp.Versioned:versioning",
    "testapp.Post:lock_published",
    "testapp.Post:protect_pinned",
    "testapp.Post:keep_author",
    "testapp.Post:protect_note",
    "testapp.UserProxy:protect_user_delete",
    "testapp.UserGroupTriggers:protect_group_remove",
    "testapp.Decorated:protect_decorated_delete",
    "testapp.Registered:protect_registered_update",
    "testapp.SchemaItem:stamp_schema",
    "testapp.QuotedNames:protect_negative_order",
    "testapp.QuotedNames:soft_delete_label",
    "testapp.SchemaQualified:protect_qualified_delete",
}


def registered_uris() -> set[str]:
    return {trigger.get_uri(model) for model, trigger in pgtrigger.registered()}


def test_every_declared_trigger_is_registered() -> None:
    uris = registered_uris()
    assert {u for u in uris if u.startswith("testapp.")} == EXPECTED_TESTAPP_URIS
    assert "otherapp.OtherItem:protect_other_delete" in uris
    assert len([u for u in uris if u.startswith("legacyapp.")]) == 16


def test_registered_by_uri() -> None:
    pairs = pgtrigger.registered(
        "testapp.Decorated:protect_decorated_delete", "testapp.UserProxy:protect_user_delete"
    )
    assert [(model, trigger.name) for model, trigger in pairs] == [
        (models.Decorated, "protect_decorated_delete"),
        (models.UserProxy, "protect_user_delete"),
    ]
    with pytest.raises(LookupError, match=r"testapp\.Decorated:nope"):  # django-pgtrigger: KeyError
        pgtrigger.registered("testapp.Decorated:nope")


def test_malformed_uri_raises_value_error() -> None:
    """django-pgtrigger raised ValueError for a URI without ":"; ``except ValueError`` must
    keep catching it."""
    with pytest.raises(ValueError, match="format"):
        pgtrigger.registered("no colon")


def test_register_decorator_and_function_land_in_meta() -> None:
    """Registered triggers are in Meta.triggers too, so makemigrations sees them."""
    assert [t.name for t in models.Decorated._meta.triggers] == ["protect_decorated_delete"]
    assert [t.name for t in models.Registered._meta.triggers] == ["protect_registered_update"]


def test_abstract_base_triggers_are_shared_by_children() -> None:
    (article_model, article_trigger), (note_model, note_trigger) = pgtrigger.registered(
        "testapp.Article:soft_delete_status", "testapp.Note:soft_delete_status"
    )
    assert (article_model, note_model) == (models.Article, models.Note)
    assert article_trigger is note_trigger  # one declaration, two tables
    assert article_trigger.get_pgid(models.Article) != note_trigger.get_pgid(models.Note)
    assert models.Article._meta.ordering == ["title"]


def test_proxy_triggers_target_the_concrete_table() -> None:
    (model, trigger), (through, through_trigger) = pgtrigger.registered(
        "testapp.UserProxy:protect_user_delete", "testapp.UserGroupTriggers:protect_group_remove"
    )
    assert model is models.UserProxy and model._meta.concrete_model is User
    assert trigger.compile(model).table == "auth_user"
    assert through._meta.concrete_model is User.groups.through
    assert through_trigger.compile(through).table == "auth_user_groups"


def test_pgid_is_django_pgtriggers() -> None:
    """pgtrigger_{name}_{first 5 hex of sha1(uri)}: existing databases depend on it."""
    for uri in ("testapp.ProtectedRow:protect_delete", "otherapp.OtherItem:protect_other_delete"):
        model, trigger = pgtrigger.registered(uri)[0]
        digest = hashlib.sha1(uri.encode()).hexdigest()[:5]
        assert trigger.get_pgid(model) == f"pgtrigger_{trigger.name}_{digest}"
    assert (
        OtherItem._meta.triggers[0].get_uri(OtherItem) == "otherapp.OtherItem:protect_other_delete"
    )


def test_register_refuses_a_second_trigger_with_the_same_name() -> None:
    with pytest.raises(pgtrigger.RegistrationError, match="protect_delete"):
        pgtrigger.register(pgtrigger.Protect(name="protect_delete", operation=pgtrigger.Update))(
            models.ProtectedRow
        )
    assert [t.name for t in models.ProtectedRow._meta.triggers] == ["protect_delete"]


def test_ignore_resolves_uris() -> None:
    with pgtrigger.ignore("testapp.ProtectedRow:protect_delete"):
        assert pgtrigger.is_ignored("testapp.ProtectedRow:protect_delete")
        assert not pgtrigger.is_ignored("testapp.Decorated:protect_decorated_delete")
    assert not pgtrigger.is_ignored("testapp.ProtectedRow:protect_delete")
    with pytest.raises(LookupError, match="not found"), pgtrigger.ignore("testapp.Nope:nope"):
        pass


def test_register_as_context_manager() -> None:
    """django-pgtrigger's ``trigger.register(Model)`` also works as a context manager."""
    trigger = pgtrigger.Protect(name="temporary", operation=pgtrigger.Delete)
    with trigger.register(models.ProtectedRow):
        assert pgtrigger.registered("testapp.ProtectedRow:temporary") == [
            (models.ProtectedRow, trigger)
        ]
    with pytest.raises(LookupError):
        pgtrigger.registered("testapp.ProtectedRow:temporary")
