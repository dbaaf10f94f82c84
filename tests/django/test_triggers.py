"""Every trigger kind, installed by the committed migrations, behaves as documented."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.postgres.search import SearchQuery
from django.db import DatabaseError, connection, transaction

import pgtrigger
from tests.django.helpers import blocked, scalar
from tests.django.testapp import models

pytestmark = pytest.mark.usefixtures("db")


def test_protect_row_level() -> None:
    row = models.ProtectedRow.objects.create(name="a")
    with blocked("pgtrigger: Cannot delete rows from testapp_protectedrow table"):
        row.delete()
    with blocked("Cannot delete rows"):
        models.ProtectedRow.objects.all().delete()
    row.name = "b"
    row.save()  # updates are not protected
    assert models.ProtectedRow.objects.get().name == "b"


def test_protect_statement_level() -> None:
    models.StatementProtected.objects.create(value=1)
    with blocked("Cannot update rows from testapp_statementprotected table"):
        models.StatementProtected.objects.update(value=2)
    # Statement level reads the transition table: an UPDATE touching no row passes.
    assert models.StatementProtected.objects.filter(value=99).update(value=3) == 0
    with blocked("Cannot truncate rows"), connection.cursor() as cursor:
        cursor.execute("TRUNCATE testapp_statementprotected")
    assert models.StatementProtected.objects.get().value == 1


def test_read_only_fields() -> None:
    obj = models.ReadOnlyFields.objects.create(frozen="x", free="y")
    obj.free = "z"
    obj.save()
    obj.frozen = "changed"
    with blocked("Cannot update rows from testapp_readonlyfields table"):
        obj.save()
    assert models.ReadOnlyFields.objects.values_list("frozen", "free").get() == ("x", "z")


def test_read_only_exclude() -> None:
    obj = models.ReadOnlyExcept.objects.create(locked=1, editable="a")
    models.ReadOnlyExcept.objects.update(editable="b")
    with blocked("Cannot update rows"):
        models.ReadOnlyExcept.objects.update(locked=2)
    obj.refresh_from_db()
    assert (obj.locked, obj.editable) == (1, "b")


def test_soft_delete_boolean() -> None:
    obj = models.SoftDeleted.objects.create()
    pk = obj.pk
    assert obj.delete() == (0, {"testapp.SoftDeleted": 0})  # the trigger skipped the DELETE
    assert models.SoftDeleted.objects.get(pk=pk).is_active is False


@pytest.mark.parametrize("model", [models.Article, models.Note])
def test_abstract_base_triggers_are_inherited(model: type[models.SoftDeleteBase]) -> None:
    assert [t.name for t in model._meta.triggers] == ["soft_delete_status"]
    obj = model.objects.create()
    model.objects.filter(pk=obj.pk).delete()
    assert model.objects.get(pk=obj.pk).status == "inactive"


def test_fsm() -> None:
    obj = models.StatusMachine.objects.create()
    for status in ("published", "archived", "draft"):
        obj.status = status
        obj.save()
    obj.status = "archived"
    with blocked('Invalid transition of field "status" from "draft" to "archived"'):
        obj.save()
    models.StatusMachine.objects.update(status="draft")  # no change: allowed
    assert models.StatusMachine.objects.get().status == "draft"


def test_composer_statement_and_row_level() -> None:
    models.Tracked.objects.bulk_create([models.Tracked(value=f"v{i}") for i in range(3)])
    models.Tracked.objects.update(value="new")
    models.Tracked.objects.filter(value="new").exclude(pk=models.Tracked.objects.first().pk).update(
        value="big one"
    )
    logged = sorted(
        models.HistoryLog.objects.values_list("source", "old_value", "new_value").order_by()
    )
    assert logged == sorted(
        [("row", None, "v0"), ("row", None, "v1"), ("row", None, "v2")]
        + [("statement", f"v{i}", "new") for i in range(3)]
        + [("statement", "new", "big one")] * 2
        + [("big", None, "big one")] * 2
    )


def test_update_search_vector() -> None:
    doc = models.Document.objects.create(title="Triggers", body="Postgres runs them per row")
    assert models.Document.objects.filter(search=SearchQuery("postgres")).get() == doc
    models.Document.objects.update(body="nothing else")
    assert not models.Document.objects.filter(search=SearchQuery("postgres")).exists()
    assert models.Document.objects.filter(search=SearchQuery("triggers")).exists()


def test_deferrable_trigger_and_constraints() -> None:
    uri = "testapp.Budget:non_negative"
    # Deferred: checked at commit, so a transaction may pass through a negative amount.
    with transaction.atomic():
        budget = models.Budget.objects.create(amount=-5)
        models.Budget.objects.filter(pk=budget.pk).update(amount=5)
    with blocked("negative budget"):
        models.Budget.objects.create(amount=-1)
        # The pending check runs now. (Without databases=, SET CONSTRAINTS would also run on
        # "other", where the router keeps testapp's tables out: an error, as with
        # django-pgtrigger.)
        pgtrigger.constraints(pgtrigger.Immediate, uri, databases=["default"])
    with transaction.atomic():
        # django-pgtrigger's rule: with no URI every registered trigger must be deferrable.
        with pytest.raises(
            ValueError, match=r"Trigger \S+ on model testapp\.\w+ is not deferrable"
        ):
            pgtrigger.constraints(pgtrigger.Immediate, databases=["default"])
        pgtrigger.constraints(pgtrigger.Immediate, uri, databases=["default"])
        with blocked("negative budget"):
            models.Budget.objects.create(amount=-2)
        pgtrigger.constraints(pgtrigger.Deferred, uri, databases=["default"])
        models.Budget.objects.create(amount=-3).delete()
    assert list(models.Budget.objects.values_list("amount", flat=True)) == [5]


def test_versioned_cookbook() -> None:
    obj = models.Versioned.objects.create(text="a")
    obj.text = "b"
    obj.save()
    obj.refresh_from_db()
    assert obj.version == 1
    obj.save()  # nothing changed: no new version
    obj.refresh_from_db()
    assert obj.version == 1
    with blocked("Cannot update rows from testapp_versioned"):
        models.Versioned.objects.update(version=10)


def test_q_conditions() -> None:
    author, other = User.objects.create(username="a"), User.objects.create(username="b")
    post = models.Post.objects.create(author=author, status="published", note="locked")
    with blocked("Cannot update rows from testapp_post"):
        models.Post.objects.update(status="draft")  # published, not going inactive
    with blocked("Cannot update rows"):
        models.Post.objects.update(status="inactive", author=other)  # author changes
    with blocked("Cannot update rows"):
        models.Post.objects.update(status="inactive", note=None)  # nullable negation
    models.Post.objects.update(status="inactive", note="locked")
    with blocked("Cannot delete rows"):
        models.Post.objects.create(is_pinned=True).delete()
    models.Post.objects.create(is_pinned=False).delete()
    post.refresh_from_db()
    assert (post.status, post.author, post.note) == ("inactive", author, "locked")
    orphan = models.Post.objects.create(note="free")
    models.Post.objects.filter(pk=orphan.pk).update(author=other)  # was NULL: allowed
    models.Post.objects.filter(pk=orphan.pk).update(note=None)


def test_proxy_of_third_party_model() -> None:
    user = User.objects.create(username="u")
    with blocked("Cannot delete rows from auth_user table"):
        user.delete()
    with blocked("Cannot delete rows from auth_user table"):
        models.UserProxy.objects.filter(pk=user.pk).delete()


def test_proxy_of_many_to_many_through_model() -> None:
    user, group = User.objects.create(username="u"), Group.objects.create(name="g")
    user.groups.add(group)
    with blocked("Cannot delete rows from auth_user_groups table"):
        user.groups.remove(group)
    assert list(user.groups.all()) == [group]


def test_register_as_decorator_and_function() -> None:
    decorated = models.Decorated.objects.create()
    with blocked("Cannot delete rows from testapp_decorated"):
        decorated.delete()
    registered = models.Registered.objects.create()
    with blocked("Cannot update rows from testapp_registered"):
        models.Registered.objects.filter(pk=registered.pk).update(value=1)


def test_trigger_error_is_a_database_error() -> None:
    """What users catch: a django.db DatabaseError (its subclass depends on the driver)."""
    row = models.ProtectedRow.objects.create()
    with pytest.raises(DatabaseError) as info, transaction.atomic():
        row.delete()
    assert str(info.value).startswith("pgtrigger: Cannot delete rows from testapp_protectedrow")
    assert scalar("SELECT count(*) FROM testapp_protectedrow") == 1


def test_quoted_names() -> None:
    """Mixed case, spaces, quotes and reserved words survive every path to the server."""
    obj = models.QuotedNames.objects.create(order=1, label="a")
    with blocked("Cannot insert or update rows from testapp_Quoted Names"):
        models.QuotedNames.objects.create(order=-1)
    with blocked("Cannot insert or update rows"):
        models.QuotedNames.objects.update(label="it's")
    models.QuotedNames.objects.filter(pk=obj.pk).delete()
    assert models.QuotedNames.objects.values_list("order", "label").get() == (1, "gone")


def test_table_in_another_schema() -> None:
    obj = models.SchemaQualified.objects.create()
    with blocked("Cannot delete rows from qualified_item table"):
        obj.delete()
    with pgtrigger.ignore("testapp.SchemaQualified:protect_qualified_delete"):
        obj.delete()
    assert not models.SchemaQualified.objects.exists()


def test_nul_in_a_q_value_names_the_filter() -> None:
    """Postgres text cannot hold NUL: refused at compile time, naming the filter (not a
    psycopg DataError naming nothing)."""
    trigger = pgtrigger.Protect(
        name="nul", operation=pgtrigger.Update, condition=pgtrigger.Q(old__name="a\x00b")
    )
    with pytest.raises(pgtrigger.CompileError, match="old__name"):
        trigger.compile(models.ProtectedRow)
