"""The README's quick starts and every page of docs/ run as written (tests/docs/pageblocks.py
says how a page marks blocks that are fragments, output, files or commands)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs import pageblocks
from tests.pgservers import DatabaseDSN

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("runner.py")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
WITH_DATABASE = [p for p in PAGES if pageblocks.needs_database(p)]
WITHOUT_DATABASE = [p for p in PAGES if not pageblocks.needs_database(p)]


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def run_page(
    page: Path, workdir: Path, url: str | None = None, python: str | Path = sys.executable
) -> None:
    """Run the page's blocks with ``python`` (default: this interpreter) in ``workdir``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    if url:
        env["PGTRIGGER_DOCS_URL"] = url
    proc = subprocess.run(
        [str(python), str(RUNNER), str(page.relative_to(ROOT)), str(ROOT)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{page.name}:\n{proc.stderr[-6000:]}"


@pytest.mark.parametrize("page", WITH_DATABASE, ids=_ids(WITH_DATABASE))
def test_page_on_a_database(page: Path, tmp_path: Path, database: DatabaseDSN) -> None:
    run_page(page, tmp_path, database)


@pytest.mark.parametrize("page", WITHOUT_DATABASE, ids=_ids(WITHOUT_DATABASE))
def test_page(page: Path, tmp_path: Path) -> None:
    run_page(page, tmp_path)


def test_the_readme_quick_starts_are_run() -> None:
    blocks = pageblocks.blocks(ROOT / "README.md", ROOT)
    run = [b for b in blocks if b.language == "python" and b.directive in ("", "file")]
    assert len(run) >= 2  # SQLAlchemy's runs, Django's is written to shop/models.py
    assert any(b.directive == "output" for b in blocks)
    assert any(b.directive == "run" and b.language == "console" for b in blocks)
    assert len([b for b in blocks if b.directive == "install"]) == 2


@pytest.mark.parametrize(
    ("actual", "expected", "ok"),
    [
        ("a\nb\n", "a\nb", True),
        ("a  \nb\n", "a\nb\n", True),
        ("a\nb\n", "a\nc", False),
        ("a\nx\ny\nb\n", "a\n...\nb", True),
        ("a\nb\n", "a\n...\nb", True),
        ("a\n", "a\nb", False),
    ],
)
def test_output_matching(actual: str, expected: str, ok: bool) -> None:
    sys.path.insert(0, str(RUNNER.parent))
    try:
        from tests.docs.runner import matches
    finally:
        sys.path.pop(0)
    assert matches(actual, expected) is ok


def test_directives_must_precede_a_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- test: skip -->\ntext\n```python\n1/0\n```\n")
    with pytest.raises(pageblocks.DirectiveError, match=r"page\.md:1: directive not followed"):
        pageblocks.blocks(page, tmp_path)
    page.write_text("<!-- test: frobnicate -->\n```python\n```\n")
    with pytest.raises(pageblocks.DirectiveError, match="unknown test directive 'frobnicate'"):
        pageblocks.blocks(page, tmp_path)
