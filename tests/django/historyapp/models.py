"""django-pghistory on top of pgtrigger: a tracked model (its event model is generated)."""

from __future__ import annotations

import pghistory
from django.db import models


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Thing(models.Model):
    name = models.CharField(max_length=32)
    count = models.IntegerField(default=0)
