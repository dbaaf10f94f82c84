"""Django integration: a drop-in for django-pgtrigger on the shared compiler.

List ``"pgtrigger"`` in ``INSTALLED_APPS``; everything else (``Meta.triggers``, migrations,
settings, the ``pgtrigger`` management command, runtime helpers) works as with
django-pgtrigger. This package is imported by Django only, never by ``import pgtrigger``.
"""
