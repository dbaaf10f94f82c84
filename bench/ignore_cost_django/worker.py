"""Django side of ``bench/ignore_cost.py``: times ORM updates, plain and inside ``ignore``.

Run by the benchmark, never by hand, with either virtualenv's python and ``-P`` (the checkout
must not shadow the venv's ``pgtrigger``)::

    python -P bench/ignore_cost_django/worker.py --url URL --wire-url URL

It configures Django (``settings.configure``) with two aliases on the same database:
``default`` (direct, for timings) and ``wire`` (through the benchmark's counting proxy, for
statement counts), so timings never pay for the proxy. Requests arrive as JSON lines on stdin,
one JSON line answers each on stdout (anything Django prints goes to stderr):

``{"op": "setup"}``
    create the table, install the trigger with the package's own ``pgtrigger.install``, seed
    100 rows, and check that a blocked write really fails and passes inside ``ignore``.
``{"op": "batch", "alias", "kind", "mode", "ignored", "updates"}``
    ``updates`` single-row updates (``kind`` ``update``: ``filter(pk=..).update(..)``;
    ``save``: ``obj.save(update_fields=[..])``), in Django's autocommit or in one
    ``transaction.atomic()``, optionally inside ``pgtrigger.ignore``; answers wall and
    client CPU seconds of the whole batch (ignore and atomic blocks included).
``{"op": "probe", "alias"}``
    one plain autocommit update: whatever an ``ignore`` block left to undo on the connection
    is sent with the next statement, and the benchmark charges it to the ignored batch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the app package's parent

import django
from django.conf import settings


def database(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a ``postgresql://`` URL (host may be a socket directory)."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    host = options.pop("host", None) or unquote(parts.hostname or "")
    port = options.pop("port", None) or parts.port or ""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port),
        "OPTIONS": options,
    }


def configure(url: str, wire_url: str) -> None:
    settings.configure(
        DATABASES={"default": database(url), "wire": database(wire_url)},
        INSTALLED_APPS=["pgtrigger", "ignore_cost_django"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def setup() -> dict[str, Any]:
    from django.db import DatabaseError, connection

    import pgtrigger
    from ignore_cost_django.models import TRIGGER_URI, Item

    with connection.schema_editor() as editor:
        editor.create_model(Item)
    pgtrigger.install(database="default")
    Item.objects.bulk_create(Item(id=i, counter=0) for i in range(1, 101))
    try:
        Item.objects.filter(pk=1).update(counter=-1)
    except DatabaseError:
        pass
    else:
        raise AssertionError("the Protect trigger did not block a write: not installed?")
    with pgtrigger.ignore(TRIGGER_URI):
        Item.objects.filter(pk=1).update(counter=-1)
    Item.objects.filter(pk=1).update(counter=0)
    package = imported_package(pgtrigger.__file__)
    return {
        "package": package,
        "version": importlib.metadata.version(package),
        "django": django.get_version(),
        "python": sys.version.split()[0],
    }


def imported_package(path: str) -> str:
    """Which distribution the imported ``pgtrigger`` comes from (both name it ``pgtrigger``)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        theirs = importlib.metadata.distribution("django-pgtrigger")
        if Path(str(theirs.locate_file("pgtrigger/__init__.py"))).resolve() == Path(path).resolve():
            return "django-pgtrigger"
    return "pgtrigger"


_items: dict[str, dict[int, Any]] = {}


def batch(alias: str, kind: str, mode: str, ignored: bool, updates: int) -> dict[str, float]:
    from django.db import transaction
    from django.db.models import F

    import pgtrigger
    from ignore_cost_django.models import TRIGGER_URI, Item

    items = _items.get(alias)
    if items is None:  # loaded once per alias, so that counted batches hold only the updates
        items = _items[alias] = {item.pk: item for item in Item.objects.using(alias).all()}
    block = pgtrigger.ignore(TRIGGER_URI) if ignored else contextlib.nullcontext()
    atomic = transaction.atomic(using=alias) if mode == "atomic" else contextlib.nullcontext()
    queryset = Item.objects.using(alias)
    start, cpu = time.perf_counter(), time.process_time()
    with block, atomic:
        if kind == "update":
            for i in range(updates):
                queryset.filter(pk=i % 100 + 1).update(counter=F("counter") + 1)
        else:
            for i in range(updates):
                item = items[i % 100 + 1]
                item.counter += 1
                item.save(using=alias, update_fields=["counter"])
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}


def probe(alias: str) -> dict[str, float]:
    from django.db.models import F

    from ignore_cost_django.models import Item

    Item.objects.using(alias).filter(pk=1).update(counter=F("counter") + 1)
    return {}


HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {
    "setup": setup,
    "batch": batch,
    "probe": probe,
}


def serve(requests: TextIO, answers: TextIO) -> None:
    for line in requests:
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            break
        handler = HANDLERS[op]
        try:
            answer = handler(**request)
        except Exception:
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--wire-url", required=True)
    args = parser.parse_args()
    answers = sys.stdout
    sys.stdout = sys.stderr  # keep the answer channel clean of anything else printed
    configure(args.url, args.wire_url)
    from django.db import connections

    try:
        serve(sys.stdin, answers)
    finally:
        connections.close_all()


if __name__ == "__main__":
    main()
