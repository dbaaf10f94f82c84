"""Django app and worker of ``bench/ignore_cost.py``, shared by pgtrigger and django-pgtrigger.

Both packages import as ``pgtrigger`` and declare triggers the same way (``Meta.triggers``,
``pgtrigger.Protect``, URIs ``app_label.Model:name``), so one app measures both: the worker
runs once with our virtualenv's python and once with django-pgtrigger's (``-P``).
"""
