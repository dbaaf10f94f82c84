"""django-pgtrigger's ``pgtrigger.apps`` path: Django finds the app config here."""

from pgtrigger.django.apps import PGTriggerConfig

__all__ = ["PGTriggerConfig"]
