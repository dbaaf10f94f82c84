"""Tables of the replication tests: one trigger per firing, each logging into ``repl_fired``.

Registered once per process (trigger URIs are global), shared by the test modules here.
The trigger bodies qualify the log table: a logical replication apply worker runs them with
an empty search path.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, Text

import pgtrigger

FIRINGS = {
    "origin_log": pgtrigger.Origin,
    "replica_log": pgtrigger.Replica,
    "always_log": pgtrigger.Always,
    "disabled_log": pgtrigger.Disabled,
}


def log_trigger(name: str, firing: pgtrigger.Firing) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.After,
        operation=pgtrigger.Insert,
        func=f"INSERT INTO public.repl_fired (trigger, item_id) VALUES ('{name}', NEW.id);"
        " RETURN NULL;",
        firing=firing,
    )


metadata = MetaData()
fired = Table(
    "repl_fired",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trigger", Text, nullable=False),
    Column("item_id", Integer, nullable=False),
)
item = Table(
    "repl_item",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("note", Text),
    *(log_trigger(name, firing) for name, firing in FIRINGS.items()),
)

#: The table as the publisher has it: no triggers there.
ITEM_SQL = "CREATE TABLE public.repl_item (id integer PRIMARY KEY, note text)"
