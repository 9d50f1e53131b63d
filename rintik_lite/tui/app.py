"""`rintik-lite tui`: who is using what and who owes what, at a glance, from the terminal.

The app reads the database a `run` writes (WAL makes that safe on SQLite) through a
`LedgerSource` it gets from a factory, and tells time with the clock it is given, so that
tests hand it a prepared database and a fixed time. Every read runs in a thread worker
(the two that grow with the ledger in a child process) and comes back as a typed message
(`messages.py`); nothing blocks the UI. Screens are modes: projects (F2), prices (F3),
events (F4), each with its own stack (project, invoice, dialogs).

Every `refresh_seconds` it polls the newest events (bounded, by id): the header shows the
collector's state, and when new events were committed the current screen reloads (spaced
by the time its loads take). Month-to-date costs, a pass over the month's ledger, are
rated again every `cost_seconds` (spaced the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from rintik_lite.settings import Settings
from rintik_lite.tui.events import EventsScreen
from rintik_lite.tui.help import HelpScreen
from rintik_lite.tui.messages import CollectorPolled, Failed, LedgerChanged
from rintik_lite.tui.prices import PricesScreen
from rintik_lite.tui.projects import ProjectsScreen
from rintik_lite.tui.queries import CollectorState
from rintik_lite.tui.source import Clock, LedgerSource, utc_now


class RintikTui(App[None]):
    """The k9s of a small cloud's usage and billing."""

    CSS_PATH = "app.tcss"
    TITLE = "rintik-lite"
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "projects": ProjectsScreen,
        "prices": PricesScreen,
        "events": EventsScreen,
    }
    DEFAULT_MODE = "projects"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("f2", "projects", "Projects"),
        Binding("f3", "prices", "Prices"),
        Binding("f4", "events", "Events"),
        Binding("f5", "refresh", "Refresh", show=False),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    collector: reactive[CollectorState | None] = reactive(None)

    def __init__(
        self,
        source_factory: Callable[[], LedgerSource],
        clock: Clock = utc_now,
        *,
        refresh_seconds: float = 2.0,
        cost_seconds: float = 60.0,
        theme: str = "textual-dark",
    ) -> None:
        super().__init__()
        self.source_factory = source_factory
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.cost_seconds = cost_seconds
        self.theme = theme
        self._source: LedgerSource | None = None
        self._last_failure: tuple[tuple[str, str] | None, float] = (None, 0.0)

    @property
    def source(self) -> LedgerSource:
        if self._source is None:
            self._source = self.source_factory()
        return self._source

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The key of the screen you are on is not offered."""
        return not (action in self.MODES and action == self.current_mode)

    def on_unmount(self) -> None:
        if self._source is not None:
            self._source.close()

    def on_mount(self) -> None:
        self.poll_collector()
        self.set_interval(self.refresh_seconds, self.poll_collector)

    # --- the collector ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="collector", exit_on_error=False)
    def poll_collector(self) -> None:
        try:
            state = self.source.collector_state(self.clock())
        except Exception as exc:  # a locked or vanished database: say so, keep polling
            self.post_message(Failed("read the collector's state", str(exc)))
            return
        self.post_message(CollectorPolled(state))

    def on_collector_polled(self, message: CollectorPolled) -> None:
        before = self.collector
        self.collector = message.state
        if before is not None and before.version != message.state.version:
            self.screen.post_message(LedgerChanged())

    def on_failed(self, message: Failed) -> None:
        """Say what failed; the same failure again (a poll every 2 s) once a minute."""
        key = (message.action, message.error)
        if key == self._last_failure[0] and monotonic() - self._last_failure[1] < 60:
            return
        self._last_failure = (key, monotonic())
        self.notify(message.error, title=f"Cannot {message.action}", severity="error")

    # --- navigation ------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_projects(self) -> None:
        self.switch_mode("projects")

    def action_prices(self) -> None:
        self.switch_mode("prices")

    def action_events(self) -> None:
        self.switch_mode("events")

    def action_refresh(self) -> None:
        self.screen.post_message(LedgerChanged())
        self.poll_collector()


def run(settings: Settings) -> None:
    """Run the TUI on the (already opened) database of `settings` until the user quits."""
    source = LedgerSource(settings)
    source.start()
    try:
        RintikTui(lambda: source).run()
    finally:
        source.close()
