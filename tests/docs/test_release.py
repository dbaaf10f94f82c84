"""A release others can install: the README's install lines work as written in a fresh copy of
the checkout, the sdist and wheel pass ``twine check``, the quick starts run in the virtualenvs
those lines make, django-pgtrigger installed over the wheel is caught, the changelog names the
package version, and the documentation site builds with ``mkdocs build --strict``.

These tests make virtualenvs (tens of seconds): they run in the full ``scripts/test`` run, and
with ``scripts/test tests/docs``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version

import pgtrigger
from tests.docs.installs import README_INSTALLS, Installed, install_blocks, start_installs
from tests.docs.installs import state as install_state
from tests.docs.test_docs import ROOT, run_page
from tests.pgservers import DatabaseDSN

pytestmark = pytest.mark.slow


def test_changelog_names_the_package_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[0] == "Unreleased"
    assert headings[1] == pgtrigger.__version__
    assert str(Version(pgtrigger.__version__)) == pgtrigger.__version__  # PEP 440, normalized


def test_the_install_page_says_what_the_readme_says() -> None:
    """docs/install.md repeats the README's install lines; only the README's are run."""
    assert len(README_INSTALLS) == 2
    assert install_blocks(ROOT / "docs" / "install.md") == README_INSTALLS


def test_the_documentation_site_builds_strictly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "index.html").is_file() and (tmp_path / "install" / "index.html").is_file()


@pytest.fixture(scope="module")
def installs(request: pytest.FixtureRequest) -> Iterator[dict[str, Installed]]:
    start_installs(request.config)  # already started, unless run alone
    made = install_state().wait()
    yield made
    if not hasattr(request.config, "workerinput"):  # other xdist workers may still use them
        for installed in made.values():
            shutil.rmtree(installed.checkout, ignore_errors=True)


@pytest.mark.parametrize("how", ["checkout", "wheel"])
def test_the_quick_starts_run_where_the_readme_installed(
    installs: dict[str, Installed], how: str, database: DatabaseDSN, tmp_path: Path
) -> None:
    installed = installs[how]
    # Our package, not the one of the test venv's editable install.
    where = subprocess.run(
        [installed.python, "-c", "import pgtrigger; print(pgtrigger.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.checkout / ".venv")), where
    run_page(ROOT / "README.md", tmp_path, database, python=installed.python)


def test_the_sdist_and_wheel_pass_twine_check(installs: dict[str, Installed]) -> None:
    dist = installs["wheel"].checkout / "dist"
    version = pgtrigger.__version__
    built = sorted(p.name for p in dist.iterdir())
    assert built == [f"pgtrigger-{version}-py3-none-any.whl", f"pgtrigger-{version}.tar.gz"]
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *sorted(map(str, dist.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_django_pgtrigger_over_the_wheel_is_caught(
    installs: dict[str, Installed], tmp_path: Path
) -> None:
    """What ``pip install django-pghistory`` (without --no-deps) does to an environment."""
    venv = installs["wheel"].checkout / ".venv"
    pip = subprocess.run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "django-pgtrigger==4.17.0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert pip.returncode == 0, pip.stderr
    try:
        script = subprocess.run(
            [venv / "bin" / "pgtrigger", "--version"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert script.returncode == 1, script
        assert script.stdout == ""
        assert script.stderr.startswith(
            "pgtrigger: error: django-pgtrigger 4.17.0 is installed next to pgtrigger"
            f" {pgtrigger.__version__}, and both install the same `pgtrigger` package"
            " directory: its files replaced "
        ), script.stderr
        assert "Fix: `pip uninstall -y django-pgtrigger pgtrigger`" in script.stderr

        plugin = subprocess.run(
            [venv / "bin" / "python", "-c", "import alembic_ext.plugin as p; p.setup(None)"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert plugin.returncode == 1
        assert "pgtrigger.distribution.PackageClashError: django-pgtrigger 4.17.0" in plugin.stderr
    finally:
        # Put the wheel's files back for whatever runs after.
        for command in (
            ["uninstall", "-y", "django-pgtrigger", "pgtrigger"],
            ["install", "-q", "--no-deps", "--find-links", "dist", "pgtrigger"],
        ):
            subprocess.run(
                [venv / "bin" / "python", "-m", "pip", *command],
                cwd=venv.parent,
                capture_output=True,
                timeout=300,
            )
