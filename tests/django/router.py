"""The test project's database router: ``otherapp`` on "other", everything else on "default"."""

from __future__ import annotations

from typing import Any

OTHER_APPS = frozenset({"otherapp"})


class Router:
    def _route(self, model: Any) -> str | None:
        return "other" if model._meta.app_label in OTHER_APPS else None

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._route(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._route(model)

    def allow_migrate(self, db: str, app_label: str, model_name: Any = None, **hints: Any) -> bool:
        if db == "other":
            return app_label in OTHER_APPS
        return app_label not in OTHER_APPS
