"""Trigger columns whose type migrations change: 0002 (atomic) makes amount a bigint,
0003 (atomic = False) makes label a text; both columns are read by WHEN clauses.
"""

from __future__ import annotations

from django.db import models

import pgtrigger


class Measure(models.Model):
    amount = models.BigIntegerField(default=0)
    label = models.TextField(default="")

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="protect_negative",
                operation=pgtrigger.Insert | pgtrigger.Update,
                condition=pgtrigger.Q(new__amount__lt=0),
            ),
            pgtrigger.Protect(
                name="protect_final_label",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__label="final")
                & pgtrigger.Q(new__label__df=pgtrigger.F("old__label")),
            ),
        ]
