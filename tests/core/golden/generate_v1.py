"""Write ``v1.json``: what django-pgtrigger 4.17 compiles for a broad set of trigger definitions.

Template v1 must reproduce django-pgtrigger's SQL text (and so its hash) byte for byte.
``tests/core/test_golden_v1.py`` compiles the same definitions with our core and compares.

This script runs *django-pgtrigger's* ``pgtrigger`` package, never ours: both are named
``pgtrigger``, so it must not run in a process that can import ``/work/main/pgtrigger``.
Regenerate with (django-pgtrigger unpacked by ``pip install --target /tmp/dpgt
django-pgtrigger==4.17.0``; the project venv supplies Django 5.2 and psycopg 3)::

    cd /work/main && PYTHONPATH=/tmp/dpgt .venv/bin/python tests/core/golden/generate_v1.py

(Running a script puts its own directory, not the working directory, first on ``sys.path``,
so the project's package is not importable; the script checks that anyway.) A separate venv
with ``Django==5.2.* psycopg[binary] django-pgtrigger==4.17.0`` works the same way.

Compiling ``pgtrigger.Q`` goes through Django's query compiler on ``connections["default"]``.
No query is sent in practice (the output is the same with an unreachable server), but the
settings point at a local PostgreSQL (``PGHOST``/``PGPORT``/``PGUSER``/``PGDATABASE``, default
127.0.0.1:5432 postgres/postgres) in case a backend feature check ever asks the server.

Each case is a Python expression evaluated with ``pgtrigger`` (and ``datetime``, ``decimal``,
``uuid``) in scope. django-pgtrigger and our package share the public names, so the test
evaluates the very same text on our side.
"""

from __future__ import annotations

import datetime
import decimal
import importlib.metadata
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import django
from django.conf import settings

EXPECTED_DJANGO_PGTRIGGER = "4.17.0"
OUTPUT = Path(__file__).with_name("v1.json")
#: What a definition expression may use (the test evaluates it with the same names).
NAMESPACE_MODULES = {"datetime": datetime, "decimal": decimal, "uuid": uuid}

settings.configure(
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "postgres"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    },
    INSTALLED_APPS=[],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.contrib.postgres.search import SearchVectorField  # noqa: E402
from django.db import connections, models  # noqa: E402

import pgtrigger  # noqa: E402  (django-pgtrigger's package, after settings)

NAMESPACE: dict[str, Any] = {"pgtrigger": pgtrigger, **NAMESPACE_MODULES}


def _check_environment() -> None:
    """Refuse to run unless ``pgtrigger`` is django-pgtrigger's (its Q is a Django Q)."""
    try:
        version = importlib.metadata.version("django-pgtrigger")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    is_django_pgtrigger = isinstance(getattr(pgtrigger, "Q", None), type) and issubclass(
        pgtrigger.Q, models.Q
    )
    if not is_django_pgtrigger or version != EXPECTED_DJANGO_PGTRIGGER:
        sys.exit(
            f"generate_v1.py must run django-pgtrigger {EXPECTED_DJANGO_PGTRIGGER}; imported"
            f" pgtrigger from {Path(pgtrigger.__file__).resolve()} (django-pgtrigger"
            f" {version}). See the module docstring."
        )


# -- models (app label "tests"; never migrated, only described and compiled against) --------


class Author(models.Model):
    name = models.CharField(max_length=64)

    class Meta:
        app_label = "tests"


class Post(models.Model):
    status = models.CharField(max_length=16, default="draft")
    char_field = models.CharField(max_length=64, null=True)
    int_field = models.IntegerField(default=0)
    nullable_int = models.IntegerField(null=True)
    flag = models.BooleanField(default=False)
    renamed = models.CharField(max_length=16, db_column="renamed_col", default="")
    author = models.ForeignKey(Author, null=True, on_delete=models.CASCADE)

    class Meta:
        app_label = "tests"


class Stamped(models.Model):
    title = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "tests"


class SoftModel(models.Model):
    is_active = models.BooleanField(default=True)
    state = models.CharField(max_length=16, null=True)
    level = models.IntegerField(null=True)

    class Meta:
        app_label = "tests"


class Document(models.Model):
    title = models.CharField(max_length=64)
    body = models.TextField()
    search_vector = SearchVectorField(null=True)

    class Meta:
        app_label = "tests"


class SchemaModel(models.Model):
    status = models.CharField(max_length=16)
    is_active = models.BooleanField(default=True)

    class Meta:
        app_label = "tests"
        db_table = 'myschema"."mytable'


class CamelCaseModel(models.Model):
    name = models.CharField(max_length=16)

    class Meta:
        app_label = "tests"
        db_table = "CamelTable"


class Typed(models.Model):
    day = models.DateField(null=True)
    moment = models.DateTimeField(null=True)
    amount = models.DecimalField(max_digits=8, decimal_places=2, null=True)
    uid = models.UUIDField(null=True)
    ratio = models.FloatField(null=True)
    span = models.DurationField(null=True)
    clock = models.TimeField(null=True)

    class Meta:
        app_label = "tests"


class Keyworded(models.Model):
    """Columns named like SQL keywords: unreserved (``type``), column-name (``position``)
    and reserved (``order``, which django-pgtrigger's SoftDelete wrote bare)."""

    type = models.CharField(max_length=16, null=True)
    position = models.IntegerField(null=True)
    order = models.CharField(max_length=16, null=True)

    class Meta:
        app_label = "tests"


class CompositeModel(models.Model):
    pk = models.CompositePrimaryKey("tenant_id", "item_id")
    tenant_id = models.IntegerField()
    item_id = models.IntegerField()
    is_active = models.BooleanField(default=True)

    class Meta:
        app_label = "tests"


# -- cases: (id, model, definition) ------------------------------------------------------------

P = "pgtrigger."
STMT_FUNC = "IF EXISTS (SELECT 1 FROM {cond}) THEN RAISE EXCEPTION 'blocked'; END IF; RETURN NULL;"


def _composer(name: str, operation: str, cond: str, condition: str | None) -> str:
    func = STMT_FUNC.replace("{cond}", "{" + cond + "}")
    args = [
        f'name="{name}"',
        f"operation={operation}",
        "level=pgtrigger.Statement",
        "when=pgtrigger.After",
        f"func=pgtrigger.Func({func!r})",
    ]
    if condition:
        args.append(f"condition={condition}")
    return f"pgtrigger.Composer({', '.join(args)})"


def _protect(name: str, condition: str, operation: str = "pgtrigger.Update") -> str:
    return f'pgtrigger.Protect(name="{name}", operation={operation}, condition={condition})'


CASES: list[tuple[str, type[models.Model], str]] = [
    # Protect, row level
    ("protect_insert", Post, 'pgtrigger.Protect(name="p_ins", operation=pgtrigger.Insert)'),
    ("protect_update", Post, 'pgtrigger.Protect(name="p", operation=pgtrigger.Update)'),
    ("protect_delete", Post, 'pgtrigger.Protect(name="p_del", operation=pgtrigger.Delete)'),
    (
        "protect_update_delete",
        Post,
        'pgtrigger.Protect(name="p_ud", operation=pgtrigger.Update | pgtrigger.Delete)',
    ),
    (
        "protect_all_ops",
        Post,
        'pgtrigger.Protect(name="p_all",'
        " operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete)",
    ),
    (
        "protect_camel_table",
        CamelCaseModel,
        'pgtrigger.Protect(name="p", operation=pgtrigger.Delete)',
    ),
    (
        "protect_schema_table",
        SchemaModel,
        'pgtrigger.Protect(name="p", operation=pgtrigger.Delete)',
    ),
    # Protect with Q conditions
    ("q_exact_str", Post, _protect("q_exact", 'pgtrigger.Q(old__status="published")')),
    ("q_gt", Post, _protect("q_gt", "pgtrigger.Q(old__int_field__gt=5)")),
    ("q_in", Post, _protect("q_in", "pgtrigger.Q(new__int_field__in=[1, 2])")),
    ("q_isnull_true", Post, _protect("q_isnull", "pgtrigger.Q(old__char_field__isnull=True)")),
    ("q_isnull_false", Post, _protect("q_notnull", "pgtrigger.Q(new__char_field__isnull=False)")),
    ("q_exact_none", Post, _protect("q_none", "pgtrigger.Q(old__char_field=None)")),
    ("q_not", Post, _protect("q_not", '~pgtrigger.Q(old__status="published")')),
    ("q_not_nullable", Post, _protect("q_not_null", '~pgtrigger.Q(old__char_field="x")')),
    ("q_not_nullable_int", Post, _protect("q_not_ni", "~pgtrigger.Q(old__nullable_int__gt=3)")),
    (
        "q_and_not",
        Post,
        _protect(
            "q_and_not",
            'pgtrigger.Q(old__status="published") & ~pgtrigger.Q(new__status="archived")',
        ),
    ),
    (
        "q_or",
        Post,
        _protect(
            "q_or", 'pgtrigger.Q(old__status="published") | pgtrigger.Q(new__status="published")'
        ),
    ),
    (
        "q_or_and_nested",
        Post,
        _protect(
            "q_nested",
            '(pgtrigger.Q(old__status="a") | pgtrigger.Q(old__status="b"))'
            " & pgtrigger.Q(new__int_field__gt=1)",
        ),
    ),
    ("q_multi_kwargs", Post, _protect("q_multi", 'pgtrigger.Q(old__status="a", new__int_field=3)')),
    ("q_df", Post, _protect("q_df", 'pgtrigger.Q(old__status__df=pgtrigger.F("new__status"))')),
    ("q_ndf", Post, _protect("q_ndf", 'pgtrigger.Q(old__status__ndf=pgtrigger.F("new__status"))')),
    ("q_bool_true", Post, _protect("q_bool_t", "pgtrigger.Q(old__flag=True)")),
    ("q_bool_false", Post, _protect("q_bool_f", "pgtrigger.Q(new__flag=False)")),
    ("q_db_column", Post, _protect("q_col", 'pgtrigger.Q(old__renamed="x")')),
    ("q_fk_df", Post, _protect("q_fk", 'pgtrigger.Q(old__author__df=pgtrigger.F("new__author"))')),
    ("q_fk_exact", Post, _protect("q_fk_eq", "pgtrigger.Q(new__author=3)")),
    ("q_schema_table", SchemaModel, _protect("q", 'pgtrigger.Q(old__status="published")')),
    ("q_attname", Post, _protect("q_attname", "pgtrigger.Q(old__author_id=3)")),
    ("q_pk", Post, _protect("q_pk", "pgtrigger.Q(old__pk=1)")),
    # negation: Django adds "col IS NOT NULL" for nullable columns under NOT
    (
        "q_not_isnull_true",
        Post,
        _protect("q_n_isnull_t", "~pgtrigger.Q(old__char_field__isnull=True)"),
    ),
    (
        "q_not_isnull_false",
        Post,
        _protect("q_n_isnull_f", "~pgtrigger.Q(old__char_field__isnull=False)"),
    ),
    ("q_not_none", Post, _protect("q_n_none", "~pgtrigger.Q(old__char_field=None)")),
    ("q_not_fk", Post, _protect("q_n_fk", "~pgtrigger.Q(new__author=3)")),
    ("q_not_in_nullable", Post, _protect("q_n_in", "~pgtrigger.Q(old__nullable_int__in=[1, 2])")),
    (
        "q_not_df_nullable",
        Post,
        _protect("q_n_df", '~pgtrigger.Q(old__char_field__df=pgtrigger.F("new__char_field"))'),
    ),
    (
        "q_not_f_nullable_rhs",
        Post,
        _protect("q_n_f_rhs", '~pgtrigger.Q(old__int_field__gt=pgtrigger.F("new__nullable_int"))'),
    ),
    (
        "q_not_group_nullable",
        Post,
        _protect("q_n_group", '~(pgtrigger.Q(old__char_field="x") & pgtrigger.Q(old__status="y"))'),
    ),
    (
        "q_not_or_nullable",
        Post,
        _protect(
            "q_n_or", '~(pgtrigger.Q(old__char_field="x") | pgtrigger.Q(new__nullable_int=1))'
        ),
    ),
    ("q_double_negation", Post, _protect("q_nn", '~~pgtrigger.Q(old__char_field="x")')),
    (
        "q_and_not_nullable",
        Post,
        _protect("q_and_n", 'pgtrigger.Q(old__status="a") & ~pgtrigger.Q(new__char_field="b")'),
    ),
    # further lookups the core claims to support
    ("q_gte", Post, _protect("q_gte", "pgtrigger.Q(old__int_field__gte=5)")),
    ("q_lt", Post, _protect("q_lt", "pgtrigger.Q(old__int_field__lt=5)")),
    ("q_lte", Post, _protect("q_lte", "pgtrigger.Q(old__int_field__lte=5)")),
    ("q_range", Post, _protect("q_range", "pgtrigger.Q(new__int_field__range=(1, 9))")),
    ("q_in_str", Post, _protect("q_in_str", 'pgtrigger.Q(new__status__in=["a", "b"])')),
    ("q_gt_negative", Post, _protect("q_neg", "pgtrigger.Q(old__int_field__gt=-5)")),
    ("q_str_quote", Post, _protect("q_quote", 'pgtrigger.Q(old__status="it\'s")')),
    ("q_str_backslash", Post, _protect("q_bs", 'pgtrigger.Q(old__status="a\\\\b")')),
    ("q_iexact", Post, _protect("q_iexact", 'pgtrigger.Q(old__status__iexact="Draft")')),
    ("q_contains", Post, _protect("q_contains", 'pgtrigger.Q(old__status__contains="ub")')),
    ("q_icontains", Post, _protect("q_icontains", 'pgtrigger.Q(old__status__icontains="ub")')),
    ("q_startswith", Post, _protect("q_sw", 'pgtrigger.Q(old__status__startswith="pu")')),
    ("q_istartswith", Post, _protect("q_isw", 'pgtrigger.Q(old__status__istartswith="pu")')),
    ("q_endswith", Post, _protect("q_ew", 'pgtrigger.Q(old__status__endswith="ed")')),
    ("q_iendswith", Post, _protect("q_iew", 'pgtrigger.Q(old__status__iendswith="ed")')),
    ("q_regex", Post, _protect("q_regex", 'pgtrigger.Q(old__status__regex="^p")')),
    ("q_iregex", Post, _protect("q_iregex", 'pgtrigger.Q(old__status__iregex="^p")')),
    (
        "q_gt_f",
        Post,
        _protect("q_gt_f", 'pgtrigger.Q(new__int_field__gt=pgtrigger.F("old__int_field"))'),
    ),
    # literals of other types (definitions may use datetime, decimal and uuid)
    ("q_date", Typed, _protect("q_date", "pgtrigger.Q(old__day=datetime.date(2020, 1, 2))")),
    (
        "q_datetime",
        Typed,
        _protect(
            "q_dt",
            "pgtrigger.Q(old__moment__gt=datetime.datetime(2020, 1, 2, 3, 4,"
            " tzinfo=datetime.timezone.utc))",
        ),
    ),
    ("q_decimal", Typed, _protect("q_dec", 'pgtrigger.Q(old__amount=decimal.Decimal("2.50"))')),
    (
        "q_decimal_negative",
        Typed,
        _protect("q_dec_neg", 'pgtrigger.Q(old__amount__lt=decimal.Decimal("-2.50"))'),
    ),
    ("q_uuid", Typed, _protect("q_uuid", "pgtrigger.Q(old__uid=uuid.UUID(int=1))")),
    ("q_float", Typed, _protect("q_float", "pgtrigger.Q(old__ratio__gt=1.5)")),
    (
        "q_duration",
        Typed,
        _protect("q_dur", "pgtrigger.Q(old__span__gt=datetime.timedelta(days=1, seconds=2))"),
    ),
    ("q_time", Typed, _protect("q_time", "pgtrigger.Q(old__clock=datetime.time(3, 4))")),
    # Protect, statement level
    (
        "stmt_protect_update",
        Post,
        'pgtrigger.Protect(name="sp_u", operation=pgtrigger.Update, level=pgtrigger.Statement)',
    ),
    (
        "stmt_protect_delete",
        Post,
        'pgtrigger.Protect(name="sp_d", operation=pgtrigger.Delete, level=pgtrigger.Statement)',
    ),
    (
        "stmt_protect_insert",
        Post,
        'pgtrigger.Protect(name="sp_i", operation=pgtrigger.Insert, level=pgtrigger.Statement)',
    ),
    (
        "stmt_protect_update_cond",
        Post,
        'pgtrigger.Protect(name="sp_uc", operation=pgtrigger.Update, level=pgtrigger.Statement,'
        ' condition=pgtrigger.Q(old__status="published"))',
    ),
    (
        "stmt_protect_delete_cond",
        Post,
        'pgtrigger.Protect(name="sp_dc", operation=pgtrigger.Delete, level=pgtrigger.Statement,'
        ' condition=pgtrigger.Q(old__status="published"))',
    ),
    (
        "stmt_protect_schema_table",
        SchemaModel,
        'pgtrigger.Protect(name="sp", operation=pgtrigger.Update, level=pgtrigger.Statement,'
        " condition=pgtrigger.AnyChange('status'))",
    ),
    (
        "stmt_protect_composite",
        CompositeModel,
        'pgtrigger.Protect(name="sp", operation=pgtrigger.Update, level=pgtrigger.Statement,'
        " condition=pgtrigger.Q(old__is_active=True))",
    ),
    # ReadOnly
    ("readonly", Post, 'pgtrigger.ReadOnly(name="ro")'),
    ("readonly_fields", Post, 'pgtrigger.ReadOnly(name="ro_f", fields=["status", "int_field"])'),
    ("readonly_fields_single", Post, 'pgtrigger.ReadOnly(name="ro_1", fields=["renamed"])'),
    ("readonly_exclude", Post, 'pgtrigger.ReadOnly(name="ro_x", exclude=["status"])'),
    (
        "readonly_statement",
        Post,
        'pgtrigger.ReadOnly(name="ro_s", fields=["status"], level=pgtrigger.Statement)',
    ),
    ("readonly_fields_attname", Post, 'pgtrigger.ReadOnly(name="ro_att", fields=["author_id"])'),
    (
        "readonly_condition",
        Post,
        'pgtrigger.ReadOnly(name="ro_c", fields=["status"], condition=pgtrigger.Q(old__flag=True))',
    ),
    # SoftDelete
    ("soft_default", SoftModel, 'pgtrigger.SoftDelete(name="sd", field="is_active")'),
    ("soft_true", SoftModel, 'pgtrigger.SoftDelete(name="sd_t", field="is_active", value=True)'),
    ("soft_none", SoftModel, 'pgtrigger.SoftDelete(name="sd_n", field="state", value=None)'),
    ("soft_str", SoftModel, 'pgtrigger.SoftDelete(name="sd_s", field="state", value="deleted")'),
    ("soft_int", SoftModel, 'pgtrigger.SoftDelete(name="sd_i", field="level", value=1)'),
    (
        "soft_condition",
        SoftModel,
        'pgtrigger.SoftDelete(name="sd_c", field="is_active",'
        " condition=pgtrigger.Q(old__is_active=True))",
    ),
    ("soft_schema_table", SchemaModel, 'pgtrigger.SoftDelete(name="sd", field="is_active")'),
    ("soft_composite", CompositeModel, 'pgtrigger.SoftDelete(name="sd", field="is_active")'),
    # FSM
    (
        "fsm",
        Post,
        'pgtrigger.FSM(name="fsm", field="status",'
        ' transitions=[("draft", "published"), ("published", "archived")])',
    ),
    (
        "fsm_separator",
        Post,
        'pgtrigger.FSM(name="fsm_sep", field="status", separator="|",'
        ' transitions=[("a:1", "b:2"), ("b:2", "c")])',
    ),
    (
        "fsm_db_column",
        Post,
        'pgtrigger.FSM(name="fsm_col", field="renamed", transitions=[("x", "y")])',
    ),
    (
        "fsm_condition",
        Post,
        'pgtrigger.FSM(name="fsm_c", field="status", transitions=[("draft", "published")],'
        " condition=pgtrigger.Q(old__flag=False))",
    ),
    # Trigger with a free-form function
    (
        "trigger_func",
        Post,
        'pgtrigger.Trigger(name="t_func", when=pgtrigger.Before, operation=pgtrigger.Insert,'
        ' func="NEW.int_field = 1; RETURN NEW;")',
    ),
    (
        "trigger_declare",
        Post,
        'pgtrigger.Trigger(name="t_decl", when=pgtrigger.Before, operation=pgtrigger.Update,'
        ' declare=[("counter", "INTEGER"), ("label", "TEXT")],'
        " func=\"counter := 1; label := 'x'; RETURN NEW;\")",
    ),
    (
        "trigger_func_template",
        Post,
        'pgtrigger.Trigger(name="t_tpl", when=pgtrigger.After, operation=pgtrigger.Insert,'
        " func=pgtrigger.Func(\"UPDATE {meta.db_table} SET {columns.renamed} = 'x'"
        ' WHERE {columns.id} = NEW.{columns.id}; RETURN NULL;"))',
    ),
    (
        "trigger_func_template_schema",
        SchemaModel,
        'pgtrigger.Trigger(name="t_tpl", when=pgtrigger.After, operation=pgtrigger.Insert,'
        " func=pgtrigger.Func(\"DELETE FROM {meta.db_table} WHERE {columns.status} = 'x';"
        ' RETURN NULL;"))',
    ),
    (
        "trigger_condition_raw",
        Post,
        'pgtrigger.Trigger(name="t_cond", when=pgtrigger.Before, operation=pgtrigger.Update,'
        ' condition=pgtrigger.Condition("OLD.status IS DISTINCT FROM NEW.status"),'
        ' func="RETURN NEW;")',
    ),
    (
        "trigger_condition_raw_parens",
        Post,
        'pgtrigger.Trigger(name="t_cond_p", when=pgtrigger.Before, operation=pgtrigger.Update,'
        ' condition=pgtrigger.Condition("(NEW.int_field > 0)"), func="RETURN NEW;")',
    ),
    (
        "trigger_update_of",
        Post,
        'pgtrigger.Trigger(name="t_upd_of", when=pgtrigger.Before,'
        ' operation=pgtrigger.UpdateOf("int_field"), func="RETURN NEW;")',
    ),
    (
        "trigger_update_of_column",
        Post,
        'pgtrigger.Trigger(name="t_upd_col", when=pgtrigger.Before,'
        ' operation=pgtrigger.UpdateOf("renamed_col"), func="RETURN NEW;")',
    ),
    (
        "trigger_update_of_two",
        Post,
        'pgtrigger.Trigger(name="t_upd_of2", when=pgtrigger.Before,'
        ' operation=pgtrigger.UpdateOf("int_field", "status") | pgtrigger.Insert,'
        ' func="RETURN NEW;")',
    ),
    (
        "trigger_deferred",
        Post,
        'pgtrigger.Trigger(name="t_def", when=pgtrigger.After, operation=pgtrigger.Insert,'
        ' timing=pgtrigger.Deferred, func="RETURN NULL;")',
    ),
    (
        "trigger_immediate",
        Post,
        'pgtrigger.Trigger(name="t_imm", when=pgtrigger.After, operation=pgtrigger.Update,'
        ' timing=pgtrigger.Immediate, condition=pgtrigger.AnyChange("status"),'
        ' func="RETURN NULL;")',
    ),
    (
        "trigger_referencing",
        Post,
        'pgtrigger.Trigger(name="t_ref", level=pgtrigger.Statement, when=pgtrigger.After,'
        " operation=pgtrigger.Update,"
        ' referencing=pgtrigger.Referencing(old="old_values", new="new_values"),'
        ' func="RETURN NULL;")',
    ),
    (
        "trigger_referencing_old",
        Post,
        'pgtrigger.Trigger(name="t_ref_old", level=pgtrigger.Statement, when=pgtrigger.After,'
        ' operation=pgtrigger.Delete, referencing=pgtrigger.Referencing(old="gone"),'
        ' func="RETURN NULL;")',
    ),
    (
        "trigger_truncate",
        Post,
        'pgtrigger.Trigger(name="t_trunc", level=pgtrigger.Statement, when=pgtrigger.Before,'
        ' operation=pgtrigger.Truncate, func="RETURN NULL;")',
    ),
    # change conditions
    ("anychange", Post, _protect("any", "pgtrigger.AnyChange()")),
    ("anychange_fields", Post, _protect("any_f", 'pgtrigger.AnyChange("status", "int_field")')),
    ("anychange_single", Post, _protect("any_1", 'pgtrigger.AnyChange("status")')),
    ("anychange_exclude", Post, _protect("any_x", 'pgtrigger.AnyChange(exclude=["status"])')),
    ("anychange_db_column", Post, _protect("any_col", 'pgtrigger.AnyChange("renamed", "author")')),
    ("anychange_attname", Post, _protect("any_att", 'pgtrigger.AnyChange("author_id")')),
    ("anychange_auto_all", Stamped, _protect("any_auto", "pgtrigger.AnyChange()")),
    (
        "anychange_exclude_auto",
        Stamped,
        _protect("any_xauto", "pgtrigger.AnyChange(exclude_auto=True)"),
    ),
    ("anydontchange", Post, _protect("anyd", 'pgtrigger.AnyDontChange("status", "int_field")')),
    ("anydontchange_all", Post, _protect("anyd_all", "pgtrigger.AnyDontChange()")),
    ("allchange", Post, _protect("allc", 'pgtrigger.AllChange("status", "int_field")')),
    ("allchange_all", Stamped, _protect("allc_all", "pgtrigger.AllChange()")),
    (
        "alldontchange",
        Post,
        _protect("alld", 'pgtrigger.AllDontChange("status", "int_field")'),
    ),
    ("not_anychange", Post, _protect("not_any", '~pgtrigger.AnyChange("status", "int_field")')),
    ("not_anychange_all", Post, _protect("not_any_all", "~pgtrigger.AnyChange()")),
    # Composer, statement level
    (
        "composer_update_cond_new",
        Post,
        _composer(
            "c_new", "pgtrigger.Update", "cond_new_values", 'pgtrigger.Q(new__status="published")'
        ),
    ),
    (
        "composer_update_cond_old",
        Post,
        _composer(
            "c_old", "pgtrigger.Update", "cond_old_values", 'pgtrigger.Q(old__status="published")'
        ),
    ),
    (
        "composer_update_cond_joined",
        Post,
        _composer(
            "c_join",
            "pgtrigger.Update",
            "cond_joined_values",
            'pgtrigger.Q(old__status__df=pgtrigger.F("new__status"))',
        ),
    ),
    (
        "composer_update_new_from_old_cond",
        Post,
        _composer(
            "c_new_old", "pgtrigger.Update", "cond_new_values", "pgtrigger.Q(old__flag=True)"
        ),
    ),
    (
        "composer_cond_literal_row_word",
        Post,
        _composer(
            "c_lit", "pgtrigger.Update", "cond_new_values", 'pgtrigger.Q(new__status="NEW.x")'
        ),
    ),
    (
        "composer_update_no_cond",
        Post,
        _composer("c_nocond", "pgtrigger.Update", "cond_new_values", None),
    ),
    (
        "composer_delete",
        Post,
        _composer(
            "c_del", "pgtrigger.Delete", "cond_old_values", "pgtrigger.Q(old__int_field__gt=1)"
        ),
    ),
    (
        "composer_insert",
        Post,
        _composer(
            "c_ins", "pgtrigger.Insert", "cond_new_values", "pgtrigger.Q(new__int_field__gt=1)"
        ),
    ),
    (
        "composer_row_dict",
        Post,
        'pgtrigger.Composer(name="c_row", operation=pgtrigger.Update, when=pgtrigger.Before,'
        ' func={pgtrigger.Row: "RETURN NEW;", pgtrigger.Statement: "RETURN NULL;"},'
        " condition=pgtrigger.Q(new__flag=True))",
    ),
    # Near the inputs template v1 fixed since (issue 8 part 4): these worked under
    # django-pgtrigger and must keep its text exactly
    (
        "soft_unreserved_keyword_column",
        Keyworded,
        'pgtrigger.SoftDelete(name="sd_kw", field="type", value="gone")',
    ),
    (
        "soft_col_name_keyword_column",
        Keyworded,
        'pgtrigger.SoftDelete(name="sd_pos", field="position", value=1)',
    ),
    (
        "soft_str_symbols",
        SoftModel,
        'pgtrigger.SoftDelete(name="sd_sym", field="state",'
        " value=' a  b %s :x {} \"q\" $1 -- /* ')",
    ),
    (
        "fsm_values_spaces_symbols",
        Post,
        'pgtrigger.FSM(name="fsm_sym", field="status",'
        ' transitions=[("in review", "NULL"), ("NULL", "done $1 %"), ("a b", "x-y")])',
    ),
    (
        "fsm_unicode_separator",
        Post,
        'pgtrigger.FSM(name="fsm_uni", field="status", separator="é",'
        ' transitions=[("draft", "ready"), ("ready", "done")])',
    ),
    (
        "composer_update_cond_old_literal_table",
        Post,
        _composer(
            "c_lit_tbl",
            "pgtrigger.Update",
            "cond_old_values",
            'pgtrigger.Q(old__status="new_values.x")',
        ),
    ),
    (
        "stmt_protect_update_cond_literal_table",
        Post,
        'pgtrigger.Protect(name="sp_lit", operation=pgtrigger.Update, level=pgtrigger.Statement,'
        ' condition=pgtrigger.Q(old__status="old_values.y"))',
    ),
    # ...and these did not work under django-pgtrigger (DELIBERATE in test_golden_v1.py)
    (
        "protect_hyphen_name",
        Post,
        'pgtrigger.Protect(name="no-delete", operation=pgtrigger.Delete)',
    ),
    (
        "soft_reserved_column",
        Keyworded,
        'pgtrigger.SoftDelete(name="sd_order", field="order", value="gone")',
    ),
    (
        "soft_value_newline",
        SoftModel,
        'pgtrigger.SoftDelete(name="sd_nl", field="state", value="a\\n  b")',
    ),
    (
        "fsm_value_array_syntax",
        Post,
        'pgtrigger.FSM(name="fsm_arr", field="status", transitions=[("a,b", "c"), ("c", " d")])',
    ),
    (
        "fsm_value_newline",
        Post,
        'pgtrigger.FSM(name="fsm_nl", field="status", transitions=[("a\\n  b", "c")])',
    ),
    # UpdateSearchVector
    (
        "update_search_vector",
        Document,
        'pgtrigger.UpdateSearchVector(name="usv", vector_field="search_vector",'
        ' document_fields=["title", "body"])',
    ),
    (
        "update_search_vector_config",
        Document,
        'pgtrigger.UpdateSearchVector(name="usv_simple", vector_field="search_vector",'
        ' document_fields=["title"], config_name="pg_catalog.simple")',
    ),
]


# -- serialisation -----------------------------------------------------------------------------


def describe(model: type[models.Model]) -> dict[str, Any]:
    """The table facts our ``TableDescription`` needs, taken from the Django model."""
    connection = connections["default"]
    fields = []
    for field in model._meta.fields:
        if field.column is None:  # CompositePrimaryKey: a pseudo-field without a column
            continue
        fields.append(
            {
                "name": field.name,
                "column": field.column,
                "nullable": bool(field.null),
                "auto_timestamp": bool(
                    getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
                ),
                "sql_type": field.db_type(connection),
                "many_to_many": False,
            }
        )
    pk = model._meta.pk
    primary_key = list(pk.columns) if pk.column is None else [pk.column]
    return {
        "name": model._meta.db_table,
        "fields": fields,
        "primary_key": primary_key,
        "label": f"{model._meta.app_label}.{model._meta.object_name}",
    }


def compile_case(case_id: str, model: type[models.Model], definition: str) -> dict[str, Any]:
    trigger = eval(definition, NAMESPACE)
    compiled = trigger.compile(model)
    return {
        "id": case_id,
        "table": describe(model),
        "definition": definition,
        "pgid": compiled.sql.pgid,
        "hash": compiled.hash,
        "install_sql": compiled.install_sql,
        "uninstall_sql": compiled.uninstall_sql,
        "enable_sql": compiled.enable_sql,
        "disable_sql": compiled.disable_sql,
    }


def main() -> None:
    _check_environment()
    ids = [case_id for case_id, _, _ in CASES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        sys.exit(f"duplicate case ids: {duplicates}")
    golden = [compile_case(*case) for case in CASES]
    OUTPUT.write_text(json.dumps(golden, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(golden)} cases to {OUTPUT}")


if __name__ == "__main__":
    main()
