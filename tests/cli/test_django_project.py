"""A Django project on disk, driven as its developers drive it: the ``pgtrigger`` console script
from the project root with ``DJANGO_SETTINGS_MODULE`` (the current directory is importable,
as with ``django-admin``), and ``manage.py pgtrigger`` refusing a schema that does not exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import Result, cli_env
from tests.pgservers import DatabaseDSN

MODELS = """\
from django.db import models

import pgtrigger


class Post(models.Model):
    status = models.CharField(max_length=16, default="draft")

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="lock_published",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="published"),
            ),
        ]
"""

MANAGE = """\
import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
execute_from_command_line(sys.argv)
"""


@pytest.fixture
def django_root(tmp_path: Path, database: DatabaseDSN) -> Path:
    root = tmp_path / "mysite-root"
    files = {
        "manage.py": MANAGE,
        "mysite/__init__.py": "",
        "mysite/settings.py": (
            'SECRET_KEY = "test"\nUSE_TZ = True\n'
            'INSTALLED_APPS = ["django.contrib.contenttypes", "pgtrigger", "shop"]\n'
            f"DATABASES = {{'default': {database.django_settings()!r}}}\n"
        ),
        "shop/__init__.py": "",
        "shop/models.py": MODELS,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def command(root: Path, *argv: str, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        argv, cwd=root, env=cli_env(env), capture_output=True, text=True, timeout=120
    )
    return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def test_console_script_from_the_project_root(django_root: Path, database: DatabaseDSN) -> None:
    manage = (sys.executable, "manage.py")
    migrated = command(django_root, *manage, "migrate", "--run-syncdb", "-v", "0")
    assert migrated.code == 0, migrated

    # The console script's sys.path[0] is its bin directory, not the project root.
    script = str(Path(sys.executable).with_name("pgtrigger"))
    env = {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    uninstalled = command(django_root, script, "uninstall", env=env)
    assert uninstalled.stdout == "uninstalled shop.Post:lock_published (public)\n", uninstalled
    installed = command(django_root, script, "install", env=env)
    assert installed.stdout == "installed shop.Post:lock_published (public)\n", installed
    listed = command(django_root, script, "check", env=env)
    assert listed.code == 0, listed
    assert listed.stdout == "ok: 1 trigger(s) installed and enabled, nothing to prune\n"

    # manage.py pgtrigger: a schema that does not exist is an error, not a silent no-op.
    for sub in ("install", "ls"):
        refused = command(django_root, *manage, "pgtrigger", sub, "-s", "nope")
        assert refused.code == 1, refused
        assert refused.stderr.strip().endswith(
            f'SchemaNotFoundError: schema "nope" does not exist in database "{database.name}"'
        ), refused
    listed = command(django_root, *manage, "pgtrigger", "ls", "-s", "public")
    assert listed.code == 0, listed
    assert re.search(r"INSTALLED\S* +\S*ENABLED\S* +shop\.Post:lock_published", listed.stdout)
