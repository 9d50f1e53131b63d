"""The garbage collector's settings: the serving ones while `run` and `demo` serve, the
bulk ones while a bulk command runs (tests/test_cli.py), and the process's own put back
after either."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rintik_lite import gctune, runtime
from rintik_lite.cli import app
from tests.conftest import Broker


def test_serving_freezes_what_exists_and_undoes_it_after() -> None:
    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    assert before != gctune.SERVING_THRESHOLDS
    kept = [{"made": "before"}]  # a container that exists when serving starts
    with gctune.serving():
        assert gc.get_threshold() == gctune.SERVING_THRESHOLDS
        assert gc.get_freeze_count() > frozen_before
        assert not any(o is kept for o in gc.get_objects())  # out of every generation
        made_inside = [{"made": "inside"}]
        assert any(o is made_inside for o in gc.get_objects())  # still collected
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
    assert any(o is kept for o in gc.get_objects())


def test_serving_undoes_itself_when_the_block_raises() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), gctune.serving():
        raise RuntimeError("stop")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_cycle_made_while_serving_is_still_collected() -> None:
    with gctune.serving():
        cycle: list[Any] = []
        cycle.append(cycle)
        marker = id(cycle)
        del cycle
        gc.collect()
        assert not any(id(o) == marker and isinstance(o, list) for o in gc.get_objects())


def test_run_serves_under_the_serving_settings(
    broker: Broker, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[tuple[int, int, int], bool]] = []

    def wait(self: runtime.Runtime) -> None:  # instead of waiting for a signal
        seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))

    monkeypatch.setattr(runtime.Runtime, "wait", wait)
    monkeypatch.setattr(runtime.Runtime, "install_signal_handlers", lambda self: None)
    settings = broker.settings(sqlite_url, api__port=0, scheduler__enabled=False)
    before = gc.get_threshold()
    runtime.run(settings)
    assert seen == [(gctune.SERVING_THRESHOLDS, True)]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_demo_serves_under_the_serving_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rintik_lite import demo

    seen: list[tuple[tuple[int, int, int], bool]] = []
    monkeypatch.setattr(
        demo, "run", lambda *a, **k: seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--duration", "0"])
    assert result.exit_code == 0, result.output
    assert seen == [(gctune.SERVING_THRESHOLDS, True)]
    assert gc.get_freeze_count() == 0
