"""Template v1 reproduces django-pgtrigger 4.17 byte for byte (no database, no Django).

``golden/v1.json`` holds what django-pgtrigger compiled for each definition, together with a
description of the Django model it compiled against (see ``golden/generate_v1.py``, which
also says how to regenerate it). Here the same definition text is evaluated with *our*
``pgtrigger`` and compiled against a ``TableDescription`` built from that description; pgid,
hash and every SQL string must be identical, or projects switching from django-pgtrigger
would see migration churn and OUTDATED triggers.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import pgtrigger
import pgtrigger.compiler

GOLDEN = Path(__file__).parent / "golden" / "v1.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())

#: sha1 of django-pgtrigger 4.17's installation template (``UpsertTriggerSql.get_template()``).
V1_TEMPLATE_SHA1 = "f55c99c0c72ffdf8b6735ab6ab2c0ea78be31abf"

SQL_KEYS = ("install_sql", "uninstall_sql", "enable_sql", "disable_sql")


def _split_db_table(db_table: str) -> tuple[str | None, str]:
    """Django's ``db_table`` (``app_model`` or ``schema"."table``) -> (schema, table)."""
    if '"."' in db_table:
        schema, name = db_table.split('"."', 1)
        return schema, name
    return None, db_table


def build_table(desc: dict[str, Any]) -> pgtrigger.TableDescription:
    schema, name = _split_db_table(desc["name"])
    return pgtrigger.TableDescription(
        name=name,
        schema=schema,
        fields=tuple(pgtrigger.FieldDescription(**field) for field in desc["fields"]),
        primary_key=tuple(desc["primary_key"]),
        label=desc["label"],
        template="v1",
        legacy_name=desc["name"],
        pgid_digits=pgtrigger.table.DJANGO_PGID_DIGITS,  # django-pgtrigger's models
    )


def test_golden_file_is_sane() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids in v1.json"
    assert len(CASES) >= 50


def test_v1_template_is_django_pgtriggers() -> None:
    digest = hashlib.sha1(pgtrigger.compiler._V1_TEMPLATE.encode()).hexdigest()
    assert digest == V1_TEMPLATE_SHA1


# Where django-pgtrigger's text is a bug, we deliberately differ; each entry says how.
DELIBERATE = {
    # django-pgtrigger silently drops a ReadOnly's condition; we AND it with the protection.
    "readonly_condition": 'WHEN ((OLD."status" IS DISTINCT FROM (NEW."status")) AND (OLD."flag"))',
    # django-pgtrigger's text replace also rewrote 'NEW.x' inside the string being compared.
    "composer_cond_literal_row_word": "new_values.\"status\" = 'NEW.x'",
    # Inputs whose django-pgtrigger text failed to install or did the wrong thing:
    # the pgid in EXECUTE PROCEDURE was bare (a syntax error with "-"),
    "protect_hyphen_name": 'EXECUTE PROCEDURE "pgtrigger_no-delete_86385"();',
    # a reserved word was a bare column ("SET order = ..." is a syntax error),
    "soft_reserved_column": 'UPDATE "tests_keyworded" SET "order" = \'gone\'',
    # format_sql() joined the lines of the value ('a b'),
    "soft_value_newline": "SET state = 'a\n  b' WHERE",
    # ',' and an edge space went into the text[] literal unescaped ({a,b:c,c: d}),
    "fsm_value_array_syntax": "OLD.\"status\" IS NOT DISTINCT FROM 'a,b'",
    # and format_sql() joined the lines of a state ({a b:c}).
    "fsm_value_newline": "ANY('{a\n  b:c}'::text[])",
}


@pytest.mark.parametrize("case", [c for c in CASES if c["id"] in DELIBERATE], ids=lambda c: c["id"])
def test_deliberate_differences(case: dict[str, Any]) -> None:
    table = build_table(case["table"])
    namespace = {"pgtrigger": pgtrigger, "datetime": datetime, "decimal": decimal, "uuid": uuid}
    compiled = eval(case["definition"], namespace).compile(table, "v1")
    assert compiled.install_sql != case["install_sql"]
    assert DELIBERATE[case["id"]] in compiled.install_sql


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["id"] not in DELIBERATE], ids=lambda c: c["id"]
)
def test_v1_matches_django_pgtrigger(case: dict[str, Any]) -> None:
    table = build_table(case["table"])
    namespace = {"pgtrigger": pgtrigger, "datetime": datetime, "decimal": decimal, "uuid": uuid}
    trigger = eval(case["definition"], namespace)
    compiled = trigger.compile(table, "v1")

    assert compiled.pgid == case["pgid"]
    # Compare the text first: a hash mismatch alone says nothing about where they differ.
    for key in SQL_KEYS:
        assert getattr(compiled, key) == case[key], key
    assert compiled.hash == case["hash"]
