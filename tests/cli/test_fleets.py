"""Fleets: one command on several databases (``--url`` repeated, ``[tool.pgtrigger] urls``),
and on many tenant schemas of one database with a pattern (``--schema 'tenant_*'``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pgtrigger import engine
from pgtrigger.cli.fleet import redact
from pgtrigger.schema_patterns import SchemaPattern, expand, parse
from tests.cli.helpers import (
    ITEM_URIS,
    TABLES_SQL,
    URIS,
    execute,
    installed,
    key,
    make_project,
    ok,
    pgid,
    run,
)
from tests.pgservers import DatabaseDSN

Factory = Callable[[], DatabaseDSN]

#: Tenant schemas whose names tempt a careless matcher: ``_`` and ``%`` (LIKE's wildcards),
#: quotes, upper case, a literal ``*``.
TENANTS = ["tenant_a", "tenant_B", 'tenant_"q"', "tenant_it's", "tenantXb", "tenant%c", "Tenant_Z"]
MATCHED = sorted(["tenant_a", "tenant_B", 'tenant_"q"', "tenant_it's"])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tenants_sql(names: list[str]) -> str:
    return "".join(
        f"CREATE SCHEMA {_quoted(n)};"
        f" CREATE TABLE {_quoted(n)}.cli_item (id int PRIMARY KEY, name text, status text);"
        for n in names
    )


def _fleet(database_factory: Factory, count: int) -> list[DatabaseDSN]:
    databases = [database_factory() for _ in range(count)]
    for db in databases:
        execute(db, TABLES_SQL)
    return databases


def _urls(databases: list[DatabaseDSN]) -> list[str]:
    return [arg for db in databases for arg in ("--url", db.sqlalchemy_url())]


def _summary(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by database (the overall row under "overall")."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("DATABASE"))
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if line.startswith("overall:"):
            rows["overall"] = cells[-4:]
        else:
            rows[cells[0]] = cells[1:]
    return rows


def test_fleet_install_check_ls(project: Path, database_factory: Factory) -> None:
    dbs = _fleet(database_factory, 3)
    base = ("--target", "models:Base", *_urls(dbs), "--jobs", "2")

    result = ok(project, "install", *base)
    for db in dbs:
        assert set(installed(db)) == {key(uri) for uri in URIS}
        # Each database's section is the one-database output, in the order given.
        assert f"== {redact(db.sqlalchemy_url())} ==" in result.stdout
    assert result.stdout.count("installed cli_item:protect_deletes (public)") == 3
    summary = _summary(result.stdout)
    assert [summary[redact(db.sqlalchemy_url())] for db in dbs] == [
        ["ok", "4", "4", "4", summary[redact(db.sqlalchemy_url())][-1]] for db in dbs
    ]
    assert summary["overall"] == ["ok", "12", "12", "12"]

    check = ok(project, "check", *base)
    assert check.stdout.count("ok: 4 trigger(s) installed and enabled") == 3

    # Drift in one database: check fails (exit 1), naming it; the others stay ok.
    execute(dbs[1], f"DROP TRIGGER {pgid(ITEM_URIS[0])} ON cli_item")
    drift = run(project, "check", *base)
    assert drift.code == 1, drift
    summary = _summary(drift.stdout)
    assert summary[redact(dbs[1].sqlalchemy_url())][:3] == ["drift", "4", "1"]
    assert summary[redact(dbs[0].sqlalchemy_url())][0] == "ok"
    assert summary["overall"][0] == "drift"

    report = ok(project, "ls", *base, "--format", "json").json()
    assert [d["database"] for d in report["databases"]] == [
        redact(db.sqlalchemy_url()) for db in dbs
    ]
    statuses = [{r["status"] for r in d["output"]} for d in report["databases"]]
    assert statuses == [{"INSTALLED"}, {"INSTALLED", "UNINSTALLED"}, {"INSTALLED"}]
    assert report["overall"] == {"databases": 3, "failed": 0, "drift": 0, "exit_code": 0}

    # Every command that takes a database works on the fleet.
    ok(project, "disable", *base, ITEM_URIS[1])
    assert all(installed(db)[key(ITEM_URIS[1])] is False for db in dbs)
    ok(project, "enable", *base, ITEM_URIS[1])
    ok(project, "uninstall", *base)
    assert all(installed(db) == {} for db in dbs)


def test_one_database_failing_leaves_the_others_done(
    project: Path, database_factory: Factory
) -> None:
    good1, broken, good2 = _fleet(database_factory, 3)
    # cli_item here lacks the column a trigger watches: that trigger cannot be created, so
    # nothing of this database's batch (billing's triggers included) may stay.
    execute(broken, "ALTER TABLE cli_item DROP COLUMN name")
    unreachable = "postgresql://someone:s3cr%40t@127.0.0.1:1/nowhere"
    urls = ("--url", good1.sqlalchemy_url(), "--url", broken.sqlalchemy_url())
    urls += ("--url", unreachable, "--url", good2.sqlalchemy_url())

    result = run(project, "install", "--target", "models:Base", *urls)
    assert result.code == 1, result
    assert set(installed(good1)) == set(installed(good2)) == {key(uri) for uri in URIS}
    assert installed(broken) == {}
    # Errors name their database, never its password.
    assert "s3cr" not in result.stdout + result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result
    assert errors[0].startswith(f"pgtrigger: error: {redact(broken.sqlalchemy_url())}: ")
    assert "cli_item:frozen_name" in errors[0]
    assert errors[1].startswith(
        "pgtrigger: error: postgresql://someone:***@127.0.0.1:1/nowhere: cannot connect"
    )
    summary = _summary(result.stdout)
    assert summary[redact(broken.sqlalchemy_url())][0] == "error"
    assert summary["postgresql://someone:***@127.0.0.1:1/nowhere"][0] == "error"
    assert summary[redact(good1.sqlalchemy_url())][0] == "ok"
    assert summary["overall"][0] == "error"

    # The worst exit code wins: a usage error (2) in one database beats drift (1).
    worst = run(project, "check", "--target", "models:Base", *urls[:2], "--url", "mysql://x@h/db")
    assert worst.code == 2, worst
    report = run(project, "check", "--target", "models:Base", *urls, "--format", "json").json()
    assert [d["result"] for d in report["databases"]] == ["ok", "drift", "error", "ok"]
    assert report["overall"]["exit_code"] == 1
    assert "s3cr" not in str(report)


def test_fleet_from_pyproject_urls(tmp_path: Path, database_factory: Factory) -> None:
    dbs = _fleet(database_factory, 2)
    listed = ", ".join(f'"{db.sqlalchemy_url()}"' for db in dbs)
    pyproject = f'[tool.pgtrigger]\ntarget = "models:Base"\nurls = [{listed}]\n'
    project = make_project(tmp_path / "p", pyproject)
    result = ok(project, "install", "--format", "json").json()
    assert [d["changed"] for d in result["databases"]] == [4, 4]
    assert all(set(installed(db)) == {key(uri) for uri in URIS} for db in dbs)
    # One --url still means one database, with today's output.
    single = ok(project, "check", "--url", dbs[0].sqlalchemy_url())
    assert single.lines == ["ok: 4 trigger(s) installed and enabled, nothing to prune"]

    both = make_project(tmp_path / "q", pyproject + f'url = "{dbs[0].sqlalchemy_url()}"\n')
    clash = run(both, "ls")
    assert clash.code == 2 and "both url and urls" in clash.stderr, clash
    bad_jobs = run(project, "ls", "--jobs", "0")
    assert bad_jobs.code == 2 and "--jobs" in bad_jobs.stderr, bad_jobs


def test_tenant_schema_pattern(project: Path, database: DatabaseDSN) -> None:
    execute(database, _tenants_sql([*TENANTS, "star*", "starX"]))
    base = ("--target", "models:Base", "--url", database.sqlalchemy_url())
    item = ("cli_item:protect_deletes", "cli_item:frozen_name")

    ok(project, "install", *base, "--schema", "tenant_*", *item)
    found = {(schema, name) for schema, _, name in installed(database)}
    assert found == {(schema, pgid(uri)) for schema in MATCHED for uri in item}

    rows = ok(project, "ls", *base, "-s", "tenant_*", *item, "--format", "json").json()
    assert sorted({r["schema"] for r in rows}) == MATCHED
    assert {r["status"] for r in rows} == {"INSTALLED"}
    lines = ok(project, "check", *base, "-s", "tenant_*", *item).lines
    assert lines == [f"ok: {2 * len(MATCHED)} trigger(s) installed and enabled, nothing to prune"]

    # % and _ are themselves; ? is one character; case counts; \* is a literal star.
    def schemas_of(pattern: str) -> set[str]:
        rows = ok(project, "ls", *base, "-s", pattern, *item, "--format", "json").json()
        return {r["schema"] for r in rows}

    assert schemas_of("tenant%*") == {"tenant%c"}
    assert schemas_of("tenant?b") == {"tenantXb"}
    assert schemas_of("Tenant_*") == {"Tenant_Z"}
    assert schemas_of("star\\*") == {"star*"}
    assert schemas_of("star*") == {"star*", "starX"}
    assert schemas_of('tenant_"*') == {'tenant_"q"'}

    missing = run(project, "check", *base, "-s", "tenants_*")
    assert missing.code == 1, missing
    assert f"schema pattern 'tenants_*' matches no schema in database \"{database.name}\"" in (
        missing.stderr
    )
    # Nothing is installed anywhere when the pattern matches nothing.
    nothing_ok = run(project, "install", *base, "-s", "nope_*", *item)
    assert nothing_ok.code == 1 and "matches no schema" in nothing_ok.stderr, nothing_ok


def test_pattern_fleet(project: Path, database_factory: Factory) -> None:
    with_tenants, without = database_factory(), database_factory()
    execute(with_tenants, _tenants_sql(["tenant_1", "tenant_2"]))
    execute(without, _tenants_sql(["other"]))
    args = ("--target", "models:Base", "-s", "tenant_*", *_urls([with_tenants, without]))
    result = run(project, "install", *args, *ITEM_URIS)
    assert result.code == 1, result
    assert len(installed(with_tenants)) == 4 and installed(without) == {}
    assert result.stderr.strip() == (
        f"pgtrigger: error: {redact(without.sqlalchemy_url())}: schema pattern 'tenant_*'"
        f' matches no schema in database "{without.name}"'
    )


def test_one_catalog_query_whatever_the_number_of_schemas(database: DatabaseDSN) -> None:
    """ls over 40 tenant schemas asks the catalog once (the engine's one query)."""
    execute(database, _tenants_sql([f"tenant_{i}" for i in range(40)]))

    class Counting(engine.DbapiExecutor):
        fetches = 0

        def fetch(self, sql: str) -> list[tuple[object, ...]]:
            Counting.fetches += 1
            return super().fetch(sql)

    with database.connect(autocommit=True) as conn:
        catalog = engine.read_catalog(Counting(conn), ["cli_item"])
    assert Counting.fetches == 1
    assert sum(name.startswith("tenant_") for name in catalog.schema_names) == 40
    assert expand([SchemaPattern("tenant_1*")], catalog.schema_names) == [
        "tenant_1",
        *[f"tenant_{i}" for i in range(10, 20)],
    ]


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("tenant_*", SchemaPattern("tenant_*")),
        ("billing", "billing"),
        ("a\\*b", "a*b"),
        ("50%_off", "50%_off"),
    ],
)
def test_parse(typed: str, parsed: str) -> None:
    result = parse(typed)
    assert result == parsed and type(result) is type(parsed)


def test_redact() -> None:
    assert redact("postgresql://u:p%40ss@h:5/db?sslmode=require") == (
        "postgresql://u:***@h:5/db?sslmode=require"
    )
    assert redact("postgresql+psycopg://u@h/db?password=x&host=/tmp") == (
        "postgresql+psycopg://u@h/db?password=***&host=/tmp"
    )
    assert redact("not a url") == "not a url"


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        ("tenant_*", "tenant_a", True),
        ("tenant_*", "tenant_", True),
        ("tenant_*", "tenantXa", False),
        ("tenant_*", "Tenant_a", False),
        ("*_eu", "acme_eu", True),
        ("*_eu", "acme_eu_x", False),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("?", "", False),
        ("*", "", True),
        ("a\\?", "a?", True),
        ("a\\?", "ab", False),
        ("50%*", "50%_off", True),
        ('"*"', '"quoted"', True),
        ("*a" * 20 + "*b", "a" * 63, False),  # would take exponential time as a regex
    ],
)
def test_pattern_matching(pattern: str, name: str, matched: bool) -> None:
    assert SchemaPattern(pattern).matches(name) is matched
