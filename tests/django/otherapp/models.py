"""The app the router sends to the "other" database (and keeps away from "default")."""

from __future__ import annotations

from django.db import models

import pgtrigger


class OtherItem(models.Model):
    name = models.CharField(max_length=32, default="")

    class Meta:
        triggers = [pgtrigger.Protect(name="protect_other_delete", operation=pgtrigger.Delete)]
