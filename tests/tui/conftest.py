"""The TUI on a seeded SQLite file (`seed.py`), at a fixed time, with helpers to drive it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from rintik_lite.tui.app import RintikTui
from rintik_lite.tui.screen import LedgerScreen
from rintik_lite.tui.source import LedgerSource
from tests.conftest import NOW
from tests.tui.seed import seed, settings


@pytest.fixture
def seeded(sqlite_url: str) -> str:
    seed(sqlite_url)
    return sqlite_url


def make_app(url: str, theme: str = "textual-dark") -> RintikTui:
    """The app on `url` at NOW; its timers never fire during a test (F5 reloads); its bulk
    reads stay in the worker threads (`test_queries` runs them in a child process)."""
    return RintikTui(
        lambda: LedgerSource(settings(url), processes=False),
        lambda: NOW,
        refresh_seconds=3600,
        cost_seconds=3600,
        theme=theme,
    )


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every worker is done and its message handled (handlers may start
    more workers), and stop input cursors blinking, so what is on screen is final."""
    app = pilot.app
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        busy = isinstance(app.screen, LedgerScreen) and app.screen.busy
        if not busy and not any(worker.is_running for worker in app.workers):
            break
        if busy:
            await pilot.pause(0.02)
    for widget in app.screen.query(Input):
        widget.cursor_blink = False


async def keys(pilot: Pilot[None], *pressed: str) -> None:
    """Press keys one at a time, settling after each."""
    for key in pressed:
        await pilot.press(key)
        await settle(pilot)


def drive(
    app: RintikTui,
    scenario: Callable[[Pilot[None]], Awaitable[None]],
    size: tuple[int, int] = (100, 30),
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await scenario(pilot)

    asyncio.run(main())
