"""django-pgtrigger installed next to (or over) pgtrigger: told apart from the distributions'
RECORD files, in a site directory made up for the test. (tests/docs/test_release.py installs
the real django-pgtrigger over a built wheel and runs the console script.)"""

from __future__ import annotations

import base64
import hashlib
import warnings
from pathlib import Path

import pytest

from pgtrigger.distribution import (
    PackageClashError,
    PackageClashWarning,
    check_installation,
    find_clash,
)

OURS = b'"""pgtrigger"""\n'
THEIRS = b"import django\n"
SHARED = ("pgtrigger/__init__.py", "pgtrigger/compiler.py")


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist(site: Path, name: str, version: str, files: dict[str, bytes], requires: str = "") -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    (info / "METADATA").write_text(meta + (f"Requires-Dist: {requires}\n" if requires else ""))
    record = [f"{path},{_hash(data)},{len(data)}" for path, data in files.items()]
    (info / "RECORD").write_text("\n".join([*record, f"{info.name}/RECORD,,"]) + "\n")


def _site(tmp_path: Path, installed: bytes, with_theirs: bool = True) -> Path:
    site = tmp_path / "site-packages"
    _dist(site, "pgtrigger", "0.1.0", {p: OURS for p in (*SHARED, "pgtrigger/engine.py")})
    if with_theirs:
        _dist(site, "django-pgtrigger", "4.17.0", dict.fromkeys(SHARED, THEIRS))
        _dist(site, "django-pghistory", "3.9.2", {}, requires="django-pgtrigger>=4.5.0")
    for path in (*SHARED, "pgtrigger/engine.py"):
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(OURS if path.endswith("engine.py") else installed)
    return site


def test_no_clash(tmp_path: Path) -> None:
    site = _site(tmp_path, OURS, with_theirs=False)
    assert find_clash([str(site)]) is None
    check_installation([str(site)])  # silent


def test_their_files_replaced_ours(tmp_path: Path) -> None:
    site = _site(tmp_path, THEIRS)
    clash = find_clash([str(site)])
    assert clash is not None and clash.broken
    assert clash.replaced == SHARED
    assert clash.message() == (
        "django-pgtrigger 4.17.0 (required by django-pghistory 3.9.2) is installed next to"
        " pgtrigger 0.1.0, and both install the same `pgtrigger` package directory: its files"
        " replaced 2 of pgtrigger's own (pgtrigger/__init__.py, pgtrigger/compiler.py), so"
        " pgtrigger cannot work. Fix: `pip uninstall -y django-pgtrigger pgtrigger`, install"
        " pgtrigger again (from its checkout or wheel), and install packages that depend on"
        " django-pgtrigger with `pip install --no-deps` (uv: override-dependencies); see"
        " docs/install.md (django-pghistory and other packages that require django-pgtrigger)."
    )
    with pytest.raises(PackageClashError) as caught:
        check_installation([str(site)])
    assert isinstance(caught.value, ImportError)


def test_ours_reinstalled_over_theirs_warns(tmp_path: Path) -> None:
    site = _site(tmp_path, OURS)
    clash = find_clash([str(site)])
    assert clash is not None and not clash.broken
    assert "pgtrigger's files are intact, but upgrading or uninstalling django-pgtrigger" in (
        clash.message()
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_installation([str(site)])
    assert [w.category for w in caught] == [PackageClashWarning]


def test_a_deleted_file_counts_as_replaced(tmp_path: Path) -> None:
    """``pip uninstall django-pgtrigger`` deletes the files both distributions list."""
    site = _site(tmp_path, OURS)
    (site / "pgtrigger/compiler.py").unlink()
    clash = find_clash([str(site)])
    assert clash is not None and clash.replaced == ("pgtrigger/compiler.py",)


def test_this_environment_has_no_clash() -> None:
    """scripts/test installs django-pghistory with --no-deps: django-pgtrigger stays out."""
    assert find_clash() is None
