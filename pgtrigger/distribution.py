"""Is ``pgtrigger/`` really ours? The django-pgtrigger distribution ships a package of the same
name, and installing it (often as a dependency: django-pghistory requires it by name) writes
its files over ours without a word.

:func:`find_clash` reads the installed distributions' metadata: when django-pgtrigger is there
too, it compares the files both claim with the hashes our RECORD holds, to tell "theirs
replaced ours" (nothing of ours works reliably) from "ours are intact, for now" (uninstalling
or upgrading django-pgtrigger would delete or replace them). :func:`check_installation` turns
that into an error or a warning; the console script, the Alembic plugin and the Django app
call it where they start.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pgtrigger.errors import PgTriggerError

OURS = "pgtrigger"
THEIRS = "django-pgtrigger"
DOCS = "docs/install.md (django-pghistory and other packages that require django-pgtrigger)"


class PackageClashError(PgTriggerError, ImportError):
    """django-pgtrigger's files replaced pgtrigger's own ``pgtrigger`` package."""


class PackageClashWarning(UserWarning):
    """django-pgtrigger is installed next to pgtrigger; pgtrigger's files are still intact."""


@dataclass(frozen=True)
class Clash:
    ours: str
    theirs: str
    #: Our files (``pgtrigger/__init__.py``...) whose content is now django-pgtrigger's.
    replaced: tuple[str, ...]
    #: Installed distributions that require django-pgtrigger (``django-pghistory 3.9.2``).
    required_by: tuple[str, ...]

    @property
    def broken(self) -> bool:
        return bool(self.replaced)

    def message(self) -> str:
        why = f" (required by {', '.join(self.required_by)})" if self.required_by else ""
        head = f"{THEIRS} {self.theirs}{why} is installed next to {OURS} {self.ours}, and both"
        head += " install the same `pgtrigger` package directory: "
        if self.broken:
            shown = ", ".join(self.replaced[:3]) + (", ..." if len(self.replaced) > 3 else "")
            head += (
                f"its files replaced {len(self.replaced)} of {OURS}'s own ({shown}),"
                f" so {OURS} cannot work."
            )
        else:
            head += (
                f"{OURS}'s files are intact, but upgrading or uninstalling {THEIRS} would"
                " replace or delete them."
            )
        return (
            f"{head} Fix: `pip uninstall -y {THEIRS} {OURS}`, install {OURS} again (from its"
            f" checkout or wheel), and install packages that depend on {THEIRS} with"
            f" `pip install --no-deps` (uv: override-dependencies); see {DOCS}."
        )


def _name(dist: metadata.Distribution) -> str:
    return re.sub(r"[-_.]+", "-", str(dist.metadata["Name"] or "")).lower()


def _record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _replaced(ours: metadata.Distribution, theirs: metadata.Distribution) -> tuple[str, ...]:
    """Files both distributions list whose content differs from the hash in our RECORD."""
    their_files = {str(f) for f in theirs.files or ()}
    replaced = []
    for file in ours.files or ():
        name = str(file)
        if name not in their_files or not name.endswith(".py") or file.hash is None:
            continue
        path = Path(str(file.locate()))
        try:
            current = _record_hash(path)
        except OSError:
            replaced.append(name)  # deleted (an uninstall of theirs took it)
            continue
        if current != f"{file.hash.mode}={file.hash.value}":
            replaced.append(name)
    return tuple(sorted(replaced))


def _first(name: str, path: list[str] | None) -> metadata.Distribution | None:
    """The distribution ``name`` (cheap: matches directory names, reads no metadata)."""
    found = (
        metadata.distributions(name=name)
        if path is None
        else metadata.distributions(name=name, path=path)
    )
    return next(iter(found), None)


def find_clash(path: Iterable[str] | None = None) -> Clash | None:
    """The clash in this environment (``path``: where to look, default ``sys.path``), or None."""
    where = None if path is None else list(path)
    theirs = _first(THEIRS, where)
    ours = _first(OURS, where) if theirs is not None else None
    if ours is None or theirs is None:
        return None
    every = metadata.distributions() if where is None else metadata.distributions(path=where)
    required_by = sorted(
        {
            f"{_name(dist)} {dist.version}"
            for dist in every
            if any(re.match(r"django[-_.]pgtrigger\b", req, re.I) for req in dist.requires or ())
        }
    )
    return Clash(ours.version, theirs.version, _replaced(ours, theirs), tuple(required_by))


def check_installation(path: Iterable[str] | None = None) -> None:
    """Raise :class:`PackageClashError` if django-pgtrigger's files replaced ours; warn
    (:class:`PackageClashWarning`) if it is merely installed next to us."""
    clash = find_clash(path)
    if clash is None:
        return
    if clash.broken:
        raise PackageClashError(clash.message())
    warnings.warn(clash.message(), PackageClashWarning, stacklevel=2)
