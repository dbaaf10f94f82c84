"""Empty on purpose: Django sends ``post_migrate`` only to apps with a models module, and
``PGTRIGGER_INSTALL_ON_MIGRATE`` installs triggers from that signal."""
