"""SVG snapshots of every screen on the seeded cloud at a fixed time (pytest-textual-snapshot).

80x24 unless said; one larger; dark, and light for one. Update after a deliberate change
with `pytest tests/tui --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import keys, make_app, settle

SnapCompare = Callable[..., bool]


def pressing(*pressed: str) -> Callable[[Pilot[None]], Any]:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await keys(pilot, *pressed)

    return run_before


@pytest.mark.parametrize(
    ("pressed", "size"),
    [
        pytest.param((), (80, 24), id="projects"),
        pytest.param(("a", "c", "m", "e"), (80, 24), id="projects-filtered"),
        pytest.param(("enter",), (80, 24), id="project-resources"),
        pytest.param(("enter", "2"), (80, 24), id="project-this-month"),
        pytest.param(("enter", "3"), (80, 24), id="project-invoices"),
        pytest.param(("enter", "3", "down", "enter"), (80, 24), id="invoice"),
        pytest.param(("enter", "3", "down", "enter", "p"), (80, 24), id="invoice-confirm-paid"),
        pytest.param(("f3",), (80, 24), id="prices"),
        pytest.param(("f3", "enter"), (80, 24), id="price-form"),
        pytest.param(("f4",), (80, 24), id="events"),
        pytest.param(("f1",), (80, 24), id="help"),
        pytest.param(("enter",), (120, 36), id="project-120x36"),
    ],
)
def test_screen_dark(
    snap_compare: SnapCompare, seeded: str, pressed: tuple[str, ...], size: tuple[int, int]
) -> None:
    assert snap_compare(make_app(seeded), run_before=pressing(*pressed), terminal_size=size)


@pytest.mark.parametrize(
    ("pressed", "size"),
    [
        pytest.param((), (120, 36), id="projects-120x36"),
        pytest.param(("enter", "3", "down", "enter"), (80, 24), id="invoice"),
    ],
)
def test_screen_light(
    snap_compare: SnapCompare, seeded: str, pressed: tuple[str, ...], size: tuple[int, int]
) -> None:
    app = make_app(seeded, theme="textual-light")
    assert snap_compare(app, run_before=pressing(*pressed), terminal_size=size)
