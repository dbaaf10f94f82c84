"""Conditions written as SQLAlchemy expressions over ``OLD`` / ``NEW``, and fields given as
mapped attributes or columns: the SQL they compile to, what they do in the database (both
templates), the same hash in every process, offline SQL, and what is refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, create_mock_engine, delete, insert, update

import pgtrigger
import pgtrigger.sqla
from pgtrigger.sqla import NEW, OLD, when
from tests.pgservers import DatabaseDSN
from tests.sqla.expression_models import URIS, Base, Post
from tests.sqla.helpers import CANNOT_UPDATE, attempt, make_engine

TABLE = Post.__table__


def condition_of(uri: str, template: str | None = None) -> str:
    model, trigger = pgtrigger.registry.registered(uri)[0]
    return trigger.render_condition(model) if template is None else _when(uri, template)


def _when(uri: str, template: str) -> str:
    model, trigger = pgtrigger.registry.registered(uri)[0]
    sql = trigger.compile(model, template).install_sql
    found = re.search(r"FOR EACH ROW\s+(WHEN .*?)\s+EXECUTE", sql, re.S)
    assert found is not None, sql
    return found.group(1)


def test_conditions_compile_to_quoted_literal_sql() -> None:
    assert condition_of("xp_post:lock_published") == "WHEN (OLD.\"post_status\" = 'published')"
    assert condition_of("xp_post:no_growth") == 'WHEN (NEW."qty" > OLD."qty")'
    assert condition_of("xp_post:archived_stay") == (
        "WHEN (OLD.\"post_status\" IN ('archived', 'it''s gone')"
        ' AND OLD."post_status" IS DISTINCT FROM NEW."post_status")'
    )
    assert condition_of("xp_post:email_case") == (
        'WHEN (lower(NEW."email") != lower(OLD."email")'
        ' OR OLD."email" IS NULL AND NEW."email" IS NOT NULL)'
    )
    # Values are sqltext's literals whatever their type: no driver, no bind parameter.
    expression = pgtrigger.sqla.Expression(
        sa.and_(NEW.qty.between(-1, 2.5), NEW.email.like("50%\\_:x"), NEW.qty != None)  # noqa: E711
    )
    assert expression.resolve(Post) == (
        'NEW."qty" BETWEEN  -1 AND 2.5 AND NEW."email" LIKE  E\'50%\\\\_:x\''
        ' AND NEW."qty" IS NOT NULL'
    )


def test_fields_given_as_attributes_and_columns() -> None:
    sql = {uri: pgtrigger.sqla.targets(uri)[0].compiled.install_sql for uri in URIS}
    assert 'BEFORE UPDATE OF "post_status" ON "xp_post"' in sql["xp_post:stamp_status"]
    assert 'OLD."title" IS DISTINCT FROM (NEW."title")' in sql["xp_post:frozen_title"]
    assert 'SET "is_active" = false' in sql["xp_post:soft_delete"]
    # The FSM's message names the attribute, its SQL the column.
    assert 'field "status" from' in sql["xp_post:status_fsm"]
    assert 'OLD."post_status" IS DISTINCT FROM NEW."post_status"' in sql["xp_post:status_fsm"]
    # The same triggers with names: the same SQL.
    by_name = pgtrigger.ReadOnly(name="frozen_title", fields=["title"]).compile(Post)
    assert by_name.install_sql == sql["xp_post:frozen_title"]
    by_column = pgtrigger.UpdateOf(TABLE.c.post_status).render(pgtrigger.sqla.describe_table(Post))
    assert by_column == 'UPDATE OF "post_status"'


def test_the_hash_is_the_same_in_every_process() -> None:
    lines = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "tests.sqla.expression_models"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=os.getcwd(),
        )
        lines.add(done.stdout)
    here = "".join(
        f"{t.uri} {t.compiled.hash} {t.compiled.pgid}\n" for t in pgtrigger.sqla.targets(*URIS)
    )
    assert lines == {here}


def test_offline_sql_is_the_online_sql() -> None:
    """``create_all`` on a mock engine (Alembic's ``--sql`` uses the same "named" style)."""
    statements: list[str] = []

    def record(sql: Any, *args: Any, **kwargs: Any) -> None:
        statements.append(str(sql.compile(dialect=mock.dialect)))

    mock = create_mock_engine("postgresql+psycopg://", record, paramstyle="named")
    Base.metadata.create_all(mock, checkfirst=False)
    offline = "\n".join(statements)
    for target in pgtrigger.sqla.targets(*URIS):
        assert target.compiled.install_sql_for(None).strip() in offline


@pytest.fixture
def engine(database: DatabaseDSN) -> Iterator[Engine]:
    engine = make_engine(database)
    try:
        yield engine
    finally:
        engine.dispose()


def _reinstall_v1(engine: Engine) -> None:
    """Every trigger of the model again, installed from template v1."""
    with engine.begin() as conn:
        for uri in URIS:
            model, trigger = pgtrigger.registry.registered(uri)[0]
            conn.exec_driver_sql(
                trigger.compile(model, "v1").install_sql, execution_options={"no_parameters": True}
            )


@pytest.mark.parametrize("template", ["v2", "v1"])
def test_conditions_in_the_database(engine: Engine, template: str) -> None:
    Base.metadata.create_all(engine)
    try:
        if template == "v1":
            _reinstall_v1(engine)
        with engine.connect() as conn:
            conn.execute(insert(Post).values(id=1, qty=5, email="A@x.org", title="t"))
            conn.commit()

            def refused(**values: Any) -> bool:
                error = attempt(conn, update(Post).values(**values))
                return error is not None and error.startswith(CANNOT_UPDATE)

            error = attempt(conn, update(Post).values(status="archived"))  # draft -> archived
            assert error is not None and 'Invalid transition of field "status"' in error
            assert refused(qty=6)  # NEW.qty > OLD.qty
            assert not refused(qty=4)
            assert not refused(email="a@X.ORG")  # lower() equal
            assert refused(email="b@x.org")
            assert refused(title="other")  # ReadOnly(fields=[title])
            conn.execute(update(Post).values(status="published"))
            conn.commit()
            assert refused(status="archived")  # OLD.status == "published"
            with pgtrigger.ignore("xp_post:lock_published"):
                conn.execute(update(Post).values(status="archived"))
                conn.commit()
            assert refused(status="draft")  # archived: IN (...) and IS DISTINCT FROM
            conn.execute(update(Post).values(qty=1))  # UpdateOf(Post.status) not touched
            conn.execute(update(Post).values(status="archived"))  # not distinct: allowed
            conn.commit()
            # UpdateOf(Post.status): once per UPDATE that set status (three went through).
            assert conn.execute(sa.select(Post.title)).scalar_one() == "t!!!"
            conn.execute(delete(Post))  # SoftDelete(field=is_active)
            conn.commit()
            assert conn.execute(sa.select(Post.is_active)).scalar_one() is False
    finally:
        Base.metadata.drop_all(engine)
        if template == "v1":
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP FUNCTION IF EXISTS _pgtrigger_should_ignore(name)")


stock_metadata = sa.MetaData()
stock = sa.Table(
    "xp_stock",
    stock_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("qty", sa.Integer),
    pgtrigger.Protect(
        name="no_bulk_growth",
        level=pgtrigger.Statement,
        operation=pgtrigger.Update,
        condition=when(NEW.qty > sa.select(sa.literal(100)).scalar_subquery()),
    ),
)


def test_statement_level_composer_filters_transition_tables(engine: Engine) -> None:
    """A statement-level Composer's condition (a subquery is allowed there) filters rows."""
    metadata = stock_metadata
    metadata.create_all(engine)
    try:
        with engine.connect() as conn:
            conn.execute(insert(stock).values(id=1, qty=1))
            conn.commit()
            assert attempt(conn, update(stock).values(qty=50)) is None
            error = attempt(conn, update(stock).values(qty=500))
            assert error is not None and error.startswith(CANNOT_UPDATE)
    finally:
        metadata.drop_all(engine)


def _protect(condition: Any, **kwargs: Any) -> Any:
    return pgtrigger.Protect(
        name="refused", operation=pgtrigger.Update, condition=condition, **kwargs
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _protect(when(OLD.qty > sa.bindparam("limit"))),
            "Trigger \"refused\": condition parameter 'limit' has no value of its own",
        ),
        (
            lambda: _protect(when(OLD.qty > sa.bindparam("limit", callable_=lambda: 3))),
            "Trigger \"refused\": condition parameter 'limit' has no value of its own",
        ),
        (
            lambda: _protect(when(OLD.qty > sa.select(sa.func.max(TABLE.c.qty)).scalar_subquery())),
            'Trigger "refused": a trigger\'s WHEN condition cannot contain a subquery',
        ),
        (
            lambda: _protect(when(TABLE.c.qty > 5)),
            'Trigger "refused": the condition refers to column xp_post.qty, not to a row of the'
            " trigger: write pgtrigger.sqla.OLD.qty or NEW.qty",
        ),
        (
            lambda: _protect(when(OLD.email == object())),
            'Trigger "refused": condition value <object object at',
        ),
        (
            lambda: _protect(OLD.qty > 5),
            "wrap a SQLAlchemy expression in pgtrigger.sqla.when(...)",
        ),
        (lambda: when(True), "pgtrigger.sqla.when() takes a SQLAlchemy expression"),
        (
            lambda: pgtrigger.SoftDelete(name="refused", field=object()),
            'Trigger "refused": SoftDelete "field" takes field names (or SQLAlchemy mapped'
            " attributes and columns)",
        ),
    ],
    ids=[
        "unvalued-bind",
        "callable-bind",
        "row-subquery",
        "table-column",
        "unrenderable",
        "unwrapped",
        "not-an-expression",
        "bad-field",
    ],
)
def test_refused_at_definition_naming_the_trigger(make: Any, message: str) -> None:
    with pytest.raises(pgtrigger.DefinitionError) as info:
        make()
    assert message in str(info.value)


def test_unknown_names_refused_at_compile_naming_trigger_table_and_field() -> None:
    trigger = _protect(when(OLD.statsu == "x"))
    with pytest.raises(pgtrigger.CompileError) as info:
        trigger.compile(Post)
    assert str(info.value).startswith('Trigger "refused" on table "xp_post":')
    assert "condition field (OLD.statsu) 'statsu'" in str(info.value)
    assert "has no field named 'statsu'" in str(info.value)
    assert "did you mean 'status'" in str(info.value)

    other = sa.Table("xp_other", sa.MetaData(), sa.Column("qty", sa.Integer))
    with pytest.raises(pgtrigger.CompileError, match="is a column of table 'xp_other'"):
        pgtrigger.ReadOnly(name="refused", fields=[other.c.qty]).compile(Post)


def test_expressions_compare_by_their_sql() -> None:
    assert when(OLD.status == "a") == when(OLD.status == "a")
    assert when(OLD.status == "a") != when(OLD.status == "b")
    assert repr(when(OLD.qty > 1)) == "pgtrigger.sqla.when('OLD.\"qty\" > 1')"
    assert len({when(OLD.status == "a"), when(OLD.status == "a")}) == 1
