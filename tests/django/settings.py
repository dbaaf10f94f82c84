"""Settings of the Django test project (``tests/django``).

The tests load them with ``settings.configure()`` (see ``conftest.py``) and point the
``default`` and ``other`` aliases at databases of each test server in turn. To run a
``manage.py`` command by hand (for instance to regenerate the committed migrations)::

    DJANGO_SETTINGS_MODULE=tests.django.settings .venv/bin/python -m django makemigrations

which uses the databases named below (host, port, user and password from the usual ``PG*``
environment variables; ``makemigrations`` only warns when it cannot connect). See README.md.
"""

from __future__ import annotations

import importlib.util
import os

SECRET_KEY = "pgtrigger-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

#: django-pghistory is installed by scripts/test with ``--no-deps`` (it requires
#: "django-pgtrigger" by name); without it the pghistory app and its tests are left out.
HAS_PGHISTORY = importlib.util.find_spec("pghistory") is not None

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.postgres",
    "pgtrigger",
    *(["pghistory"] if HAS_PGHISTORY else []),
    "tests.django.testapp",
    "tests.django.otherapp",
    "tests.django.migapp",
    "tests.django.legacyapp",
    *(["tests.django.historyapp"] if HAS_PGHISTORY else []),
]


def _database(name: str) -> dict[str, object]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }


#: Replaced by the test fixtures (tests/django/conftest.py: ``bind``).
DATABASES = {
    "default": _database("pgtrigger_django_dev"),
    "other": _database("pgtrigger_django_dev_other"),
    # Not PostgreSQL: every trigger is UNALLOWED there, and nothing is installed or queried.
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}

#: ``otherapp`` lives on "other" only, every other app on "default" only.
DATABASE_ROUTERS = ["tests.django.router.Router"]
