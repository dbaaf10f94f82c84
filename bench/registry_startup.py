"""What declaring 1,000 triggers adds to an application's start-up.

Three scenarios, each timed in fresh subprocesses (cold imports, empty caches) from the
first import of the models to "models defined", in interleaved rounds after a warm-up run
(which writes the ``.pyc`` files of the generated modules), medians over rounds, extras
paired within each round:

(a) SQLAlchemy: a generated module of 500 declarative models, each with two triggers in
    ``__table_args__`` (a conditional ``Protect`` with a ``Q`` condition and a BEFORE
    INSERT/UPDATE ``Trigger`` with a ``func``), then ``configure_mappers()``; against the
    same module without triggers and without pgtrigger (``bare``) and with
    ``import pgtrigger, pgtrigger.sqla`` but no triggers (``imported``);
(b) Django with this package: ``django.setup()`` with an app of the same 500 models, two
    ``Meta.triggers`` each, against the app without triggers and without ``"pgtrigger"`` in
    ``INSTALLED_APPS`` (``bare``), and with the app installed but no triggers (``imported``);
(c) the same Django app under django-pgtrigger 4.17, in its own virtualenv
    (``bench/competitors.py``), run with ``-P`` so it imports its own ``pgtrigger``.

"extra" is ``triggers - bare`` (everything the package costs: its import and its
registrations); "registration" is ``triggers - imported``. Work that happens later, on first
use, is timed too and printed next to it (lazy work is reported, not hidden): the first
``pgtrigger.ignore(uri)`` and ``pgtrigger.ignore()`` entries, an ``ls``-style pgid lookup
of every trigger, and for SQLAlchemy describing every table and compiling every trigger
(what the first ``create_all`` or autogenerate pays).

    .venv/bin/python bench/registry_startup.py                # 500 models, 7 rounds
    .venv/bin/python bench/registry_startup.py --quick        # 3 rounds, smoke run
    .venv/bin/python bench/registry_startup.py --profile sqla # cProfile of one run (sqla,
                                                              # django or competitor)

No database is needed: nothing here connects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 10.0
URI_SQLA = "bench_m0:bump_version"
URI_DJANGO = "benchapp.M0:bump_version"

_TRIGGERS = """(
        pgtrigger.Protect(
            name="protect_locked",
            operation=pgtrigger.Update | pgtrigger.Delete,
            condition=pgtrigger.Q(old__status="locked"),
        ),
        pgtrigger.Trigger(
            name="bump_version",
            when=pgtrigger.Before,
            operation=pgtrigger.Insert | pgtrigger.Update,
            func="NEW.version = NEW.version + 1; RETURN NEW;",
        ),
    )"""


# -- generated projects ------------------------------------------------------------------------
def _sqla_module(models: int, variant: str) -> str:
    head = [
        "import sqlalchemy as sa",
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column",
    ]
    if variant != "bare":
        head.append("import pgtrigger\nimport pgtrigger.sqla")
    lines = [*head, "", "", "class Base(DeclarativeBase):", "    pass", ""]
    for i in range(models):
        lines += [
            "",
            f"class M{i}(Base):",
            f'    __tablename__ = "bench_m{i}"',
            "    id: Mapped[int] = mapped_column(primary_key=True)",
            "    status: Mapped[str] = mapped_column(sa.String(20))",
            "    version: Mapped[int] = mapped_column(default=0)",
        ]
        if variant == "triggers":
            lines.append(f"    __table_args__ = {_TRIGGERS}")
    return "\n".join(lines) + "\n"


def _django_models(models: int, triggers: bool) -> str:
    lines = ["from django.db import models"]
    if triggers:
        lines.append("import pgtrigger")
    lines.append("")
    for i in range(models):
        lines += [
            "",
            f"class M{i}(models.Model):",
            "    status = models.CharField(max_length=20)",
            "    version = models.IntegerField(default=0)",
            "",
            "    class Meta:",
            '        app_label = "benchapp"',
        ]
        if triggers:
            lines.append(f"        triggers = {_TRIGGERS.replace(chr(10), chr(10) + '    ')}")
    return "\n".join(lines) + "\n"


def write_project(root: Path, models: int) -> None:
    """sqla_<variant>.py modules and two Django apps labelled ``benchapp``."""
    for variant in ("bare", "imported", "triggers"):
        (root / f"sqla_{variant}.py").write_text(_sqla_module(models, variant))
    for package, triggers in (("benchapp_plain", False), ("benchapp_trig", True)):
        app = root / package
        app.mkdir()
        (app / "__init__.py").write_text("")
        (app / "apps.py").write_text(
            "from django.apps import AppConfig\n\n\nclass BenchConfig(AppConfig):\n"
            f'    name = "{package}"\n    label = "benchapp"\n'
        )
        (app / "models.py").write_text(_django_models(models, triggers))


# -- workers (run in a fresh interpreter; standard library only at module level) ---------------
class _Timed:
    """Wall and CPU time of a block, in ms: ``result[key]`` and ``result[key + "_cpu"]``.

    CPU time is the headline: other processes on a loaded machine inflate wall time.
    """

    def __init__(self, result: dict[str, float], key: str) -> None:
        self.result, self.key = result, key

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.result[self.key] = (time.perf_counter() - self.wall) * 1000
        self.result[self.key + "_cpu"] = (time.process_time() - self.cpu) * 1000


def worker_sqla(variant: str) -> dict[str, float]:
    import sqlalchemy  # the baseline's own imports are not timed
    import sqlalchemy.orm

    result: dict[str, float] = {}
    with _Timed(result, "defined"):
        __import__(f"sqla_{variant}")
        sqlalchemy.orm.configure_mappers()
    if variant == "triggers":
        import pgtrigger
        from pgtrigger import registry
        from pgtrigger.table import describe

        _first_use(
            result, pgtrigger, URI_SQLA, lambda: [registry.pgid_of(u) for u in registry.uris()]
        )
        pairs = pgtrigger.registered()
        with _Timed(result, "describe_all"):
            for table in {id(model): model for model, _ in pairs}.values():
                describe(table)
        with _Timed(result, "compile_all"):
            for model, trigger in pairs:
                trigger.compile(model)
    return result


def worker_django(variant: str) -> dict[str, float]:
    import django
    from django.conf import settings

    result: dict[str, float] = {}
    with _Timed(result, "defined"):
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                *(["pgtrigger"] if variant != "bare" else []),
                "benchapp_trig" if variant == "triggers" else "benchapp_plain",
            ],
            DATABASES={
                "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "bench_unused"}
            },
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            USE_TZ=True,
        )
        django.setup()
    if variant == "triggers":
        import pgtrigger

        def pgids() -> list[str]:
            return [trigger.get_pgid(model) for model, trigger in pgtrigger.registered()]

        _first_use(result, pgtrigger, URI_DJANGO, pgids)
    return result


def _first_use(result: dict[str, float], pgtrigger: Any, uri: str, pgids: Any) -> None:
    """The first ``ignore(uri)``, ``ignore()`` and pgid lookups (where lazy work would go)."""
    with _Timed(result, "first_ignore"), pgtrigger.ignore(uri):
        pass
    with _Timed(result, "ignore_all"), pgtrigger.ignore():
        pass
    with _Timed(result, "pgids_all"):
        result["triggers"] = float(len(pgids()))


def run_worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.project)
    work = worker_sqla if args.worker == "sqla" else worker_django
    if args.worker_profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        work(args.variant)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative")
        stats.print_stats(r"pgtrigger", 40)
        stats.sort_stats("tottime").print_stats(25)
        return
    print(json.dumps(work(args.variant)))


# -- driver -------------------------------------------------------------------------------------
def our_python() -> str:
    return sys.executable


def competitor_python() -> str | None:
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from competitors import DJANGO_PGTRIGGER, ensure_env
    finally:
        sys.path.pop(0)
    try:
        return str(ensure_env(DJANGO_PGTRIGGER))
    except Exception as exc:  # no network: run without the competitor
        print(f"bench: django-pgtrigger unavailable ({exc}); skipping (c)", file=sys.stderr)
        return None


def spawn(python: str, kind: str, variant: str, project: Path, profile: bool = False) -> Any:
    command = [
        python,
        "-P",
        __file__,
        "--worker",
        kind,
        "--variant",
        variant,
        "--project",
        str(project),
    ]
    if profile:
        command.append("--worker-profile")
    # Bytecode cached as in a deployed application (this environment may disable writing it),
    # in a throwaway directory: the warm-up run fills it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(project / "pycache")
    done = subprocess.run(
        command,
        env=env,
        check=True,
        capture_output=not profile,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    return None if profile else json.loads(done.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--no-competitor", action="store_true")
    parser.add_argument("--profile", choices=("sqla", "django", "competitor"))
    parser.add_argument("--json", help="write every timing to this file")
    parser.add_argument("--worker", choices=("sqla", "django"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--worker-profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    rounds = 3 if args.quick else args.rounds

    with tempfile.TemporaryDirectory(prefix="pgtrigger-bench-") as tmp:
        project = Path(tmp)
        write_project(project, args.models)
        if args.profile:
            python = competitor_python() if args.profile == "competitor" else our_python()
            kind = "sqla" if args.profile == "sqla" else "django"
            if python:
                spawn(python, kind, "triggers", project)  # warm-up: .pyc files
                spawn(python, kind, "triggers", project, profile=True)
            return
        competitor = None if args.no_competitor else competitor_python()
        runs: list[tuple[str, str, str, str]] = [  # (scenario, python, kind, variant)
            *(("sqla", our_python(), "sqla", v) for v in ("bare", "imported", "triggers")),
            *(("django", our_python(), "django", v) for v in ("bare", "imported", "triggers")),
        ]
        if competitor:
            runs += [
                ("competitor", competitor, "django", v) for v in ("bare", "imported", "triggers")
            ]
        for _, python, kind, variant in runs:  # warm-up
            spawn(python, kind, variant, project)
        results: dict[tuple[str, str], list[dict[str, float]]] = {(s, v): [] for s, _, _, v in runs}
        for index in range(rounds):
            order = runs if index % 2 == 0 else runs[::-1]
            for scenario, python, kind, variant in order:
                results[(scenario, variant)].append(spawn(python, kind, variant, project))
            print(f"round {index + 1}/{rounds} done", file=sys.stderr)
    report(results, rounds, args.models, competitor)
    if args.json:
        Path(args.json).write_text(
            json.dumps({f"{s}/{v}": r for (s, v), r in results.items()}, indent=1)
        )


def report(
    results: dict[tuple[str, str], list[dict[str, float]]],
    rounds: int,
    models: int,
    competitor: str | None,
) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"registry start-up: {models} models x 2 triggers, {rounds} rounds, fresh processes;"
        f" Python {platform.python_version()}, {os.cpu_count()} CPUs, load {load:.2f}"
    )
    print(f"target: registration extra <= {TARGET_MS:.0f} ms at 1,000 triggers")
    print(
        "CPU ms of the process from the models' first import to 'models defined' (medians);"
        " extra = triggers - bare,\nregistr. = triggers - imported (paired per round);"
        " wall = the same extras in wall time\n"
    )
    print(
        f"{'scenario':<30}{'bare':>8}{'imported':>10}{'triggers':>10}{'extra':>8}"
        f"{'registr.':>10}{'wall extra':>12}{'wall reg.':>11}"
    )
    extras: dict[str, tuple[float, float]] = {}
    names = {
        "sqla": "(a) SQLAlchemy, ours",
        "django": "(b) Django, ours",
        "competitor": "(c) Django, django-pgtrigger",
    }

    def paired(a: list[dict[str, float]], b: list[dict[str, float]], key: str) -> float:
        return median([x[key] - y[key] for x, y in zip(a, b)])

    for scenario in ("sqla", "django", "competitor"):
        if (scenario, "bare") not in results:
            continue
        bare, imported, trig = (results[(scenario, v)] for v in ("bare", "imported", "triggers"))
        extra = paired(trig, bare, "defined_cpu")
        registration = paired(trig, imported, "defined_cpu")
        extras[scenario] = (extra, registration)
        flag = "" if scenario == "competitor" or registration <= TARGET_MS else "  MISSED"
        print(
            f"{names[scenario]:<30}"
            + "".join(
                f"{median([r['defined_cpu'] for r in runs]):>{width}.1f}"
                for runs, width in ((bare, 8), (imported, 10), (trig, 10))
            )
            + f"{extra:>8.1f}{registration:>10.1f}"
            + f"{paired(trig, bare, 'defined'):>12.1f}{paired(trig, imported, 'defined'):>11.1f}"
            + flag
        )
    print("\nfirst use after start-up (CPU ms, medians; lazy work shows here):")
    for scenario in ("sqla", "django", "competitor"):
        if (scenario, "triggers") not in results:
            continue
        trig = results[(scenario, "triggers")]
        keys = [
            k
            for k in ("first_ignore", "ignore_all", "pgids_all", "describe_all", "compile_all")
            if k in trig[0]
        ]
        print(
            f"  {names[scenario]:<30}"
            + "  ".join(f"{k} {median([r[k + '_cpu'] for r in trig]):.2f}" for k in keys)
            + f"  ({int(trig[0]['triggers'])} triggers)"
        )
    if "competitor" in extras:
        (ours_extra, ours_reg), (their_extra, their_reg) = extras["django"], extras["competitor"]
        print(
            f"\nDjango, ours / django-pgtrigger: extra {ours_extra / their_extra:.3f},"
            f" registration {ours_reg / their_reg:.3f}"
        )


if __name__ == "__main__":
    main()
