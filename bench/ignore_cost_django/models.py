"""The benchmark's model: a row counter behind a conditional ``Protect`` (as in the SQLAlchemy run)."""

from __future__ import annotations

from django.db import models

import pgtrigger

TRIGGER_URI = "ignore_cost_django.Item:protect_negative"


class Item(models.Model):
    id = models.IntegerField(primary_key=True)
    counter = models.IntegerField(default=0)

    class Meta:
        app_label = "ignore_cost_django"
        triggers = [
            pgtrigger.Protect(
                name="protect_negative",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(new__counter__lt=0),
            )
        ]
