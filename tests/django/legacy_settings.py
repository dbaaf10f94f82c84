"""Settings for running django-pgtrigger 4.17 itself on ``legacyapp`` (not for our tests' process).

Used to regenerate ``legacyapp``'s migrations (tests/django/README.md) and by
``test_legacy.py::test_installed_by_django_pgtrigger`` (which sets
``PGTRIGGER_LEGACY_DATABASE`` to a JSON ``DATABASES`` entry).
"""

import json
import os

from tests.django.settings import DATABASES, DEFAULT_AUTO_FIELD, SECRET_KEY, USE_TZ  # noqa: F401

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.postgres",
    "pgtrigger",
    "tests.django.legacyapp",
]
DATABASES = {
    "default": json.loads(os.environ["PGTRIGGER_LEGACY_DATABASE"])
    if os.environ.get("PGTRIGGER_LEGACY_DATABASE")
    else DATABASES["default"]
}
