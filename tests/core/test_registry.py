"""The registry at start-up: URIs from labels (no table description), eager pgid checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

import pgtrigger
from pgtrigger import registry
from pgtrigger import table as core_table
from tests.core.conftest import make_table


class Model:
    """An ORM object of a made-up integration: labelled cheaply, described on demand."""

    def __init__(self, name: str) -> None:
        self.name = name


@pytest.fixture
def integration(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A describer and labeler for ``Model``; yields the names described so far."""
    described: list[str] = []

    def describe(target: Any) -> pgtrigger.TableDescription | None:
        if not isinstance(target, Model):
            return None
        described.append(target.name)
        return make_table(name=target.name)

    def label(target: Any) -> str | None:
        return f"made_up.{target.name}" if isinstance(target, Model) else None

    monkeypatch.setattr(core_table, "_describers", list(core_table._describers))
    monkeypatch.setattr(core_table, "_labelers", list(core_table._labelers))
    core_table.register_describer(describe, label=label)
    saved = registry.snapshot()
    try:
        yield described
    finally:
        registry.restore(saved)


def _protect(name: str = "protect_it") -> pgtrigger.Protect:
    return pgtrigger.Protect(
        name=name, operation=pgtrigger.Update, condition=pgtrigger.Q(old__status="locked")
    )


def test_registering_needs_no_description(integration: list[str]) -> None:
    models = [Model(f"m{i}") for i in range(100)]
    for model in models:
        _protect().register(model)
        pgtrigger.Trigger(
            name="bump", when=pgtrigger.Before, operation=pgtrigger.Insert, func="RETURN NEW;"
        ).register(model)
    assert registry.pgid_of("made_up.m5:protect_it") == _protect().get_pgid(models[5])
    expected = hashlib.sha1(b"made_up.m5:protect_it").hexdigest()[:5]
    assert registry.pgid_of("made_up.m5:protect_it") == f"pgtrigger_protect_it_{expected}"
    with pgtrigger.ignore("made_up.m5:bump"), pgtrigger.ignore():
        pass
    assert integration == []
    compiled = _protect().compile(models[5])  # described when compiled, not before
    assert "post_status" in compiled.install_sql_for(150000)
    assert integration and set(integration) == {"m5"}


def test_label_falls_back_to_the_description(integration: list[str]) -> None:
    table = make_table(name="plain", schema="s")
    assert core_table.label_of(table) == "s.plain"
    with pytest.raises(pgtrigger.CompileError, match="Cannot compile a trigger for"):
        _protect().register(object())
    assert core_table.label_of(Model("x")) == "made_up.x"


def test_pgid_collision_is_refused_when_the_second_trigger_registers(
    integration: list[str],
) -> None:
    seen: dict[str, str] = {}
    pair = None
    for i in range(200000):
        digest = hashlib.sha1(f"made_up.c{i}:protect_it".encode()).hexdigest()[:5]
        if digest in seen:
            pair = (seen[digest], f"c{i}")
            break
        seen[digest] = f"c{i}"
    assert pair is not None
    first, second = Model(pair[0]), Model(pair[1])
    _protect().register(first)
    before = registry.snapshot()
    with pytest.raises(pgtrigger.RegistrationError) as info:
        _protect().register(second)
    message = str(info.value)
    assert f"made_up.{pair[0]}:protect_it" in message and f"made_up.{pair[1]}:protect_it" in message
    assert registry.snapshot() == before
    assert integration == []


def test_register_returns_an_undo_for_clean_exits(integration: list[str]) -> None:
    model, trigger = Model("undo"), _protect()
    with trigger.register(model):
        assert "made_up.undo:protect_it" in registry.uris()
    assert "made_up.undo:protect_it" not in registry.uris()
    trigger.register(model)  # not entered: stays registered
    assert "made_up.undo:protect_it" in registry.uris()
    with trigger.unregister(model):
        assert "made_up.undo:protect_it" not in registry.uris()
    assert "made_up.undo:protect_it" in registry.uris()
    # As in django-pgtrigger, an exception leaves the registration as the block made it.
    with pytest.raises(RuntimeError), trigger.unregister(model):
        raise RuntimeError
    assert "made_up.undo:protect_it" not in registry.uris()


def test_same_trigger_on_the_same_model_twice_is_a_no_op(integration: list[str]) -> None:
    model, trigger = Model("twice"), _protect()
    trigger.register(model)
    trigger.register(model)
    assert registry.uris().count("made_up.twice:protect_it") == 1
    with pytest.raises(pgtrigger.RegistrationError, match="already used"):
        _protect().register(model)
