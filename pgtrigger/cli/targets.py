"""Find the triggers a command acts on: ``--target pkg.module:attr`` or pyproject.toml."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from pgtrigger.errors import PgTriggerError


class UsageError(PgTriggerError):
    """Bad command-line input: exit code 2."""


def pyproject_settings(start: Path | None = None) -> dict[str, Any]:
    """``[tool.pgtrigger]`` of the nearest pyproject.toml (cwd upwards), or {}."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            with candidate.open("rb") as fh:
                data = tomllib.load(fh)
            settings = data.get("tool", {}).get("pgtrigger", {})
            if settings:
                settings = dict(settings)
                settings["_root"] = str(folder)
            return dict(settings)
    return {}


def importable(*paths: str | None) -> None:
    """Put ``paths`` first on ``sys.path`` (the last one first), as ``python -m`` puts the
    current directory: the console script's own ``sys.path[0]`` is its bin directory."""
    for path in paths:
        if path and path not in sys.path:
            sys.path.insert(0, path)


def load_target(spec: str, root: str | None = None) -> Any:
    """Import ``pkg.module:attr`` (the current directory and ``root`` are importable)."""
    if ":" not in spec:
        raise UsageError(f"--target {spec!r} must look like 'package.module:attribute'")
    module_name, _, attr = spec.partition(":")
    importable(root, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise UsageError(
            f"cannot import target module {module_name!r}: {type(exc).__name__}: {first_line}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"target module {module_name!r} has no attribute {attr!r}") from None
    return obj


def metadata_of(obj: Any) -> Any:
    """A MetaData, a declarative Base (its ``.metadata``) or a list of tables."""
    from sqlalchemy import MetaData, Table

    if isinstance(obj, MetaData):
        return obj
    meta = getattr(obj, "metadata", None)
    if isinstance(meta, MetaData):
        return meta
    if isinstance(obj, (list, tuple, set)) and all(isinstance(t, Table) for t in obj):
        return list(obj)
    raise UsageError(
        f"target {obj!r} is not a SQLAlchemy MetaData, declarative Base or list of tables"
    )
