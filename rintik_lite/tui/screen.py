"""What every screen shares: the data source, the clock, (re)loading, reporting failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import TYPE_CHECKING, cast

from textual import events, work
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from rintik_lite.tui.messages import Failed, LedgerChanged
from rintik_lite.tui.source import LedgerSource

if TYPE_CHECKING:
    from rintik_lite.tui.app import RintikTui

#: A screen reloads at most once per this many times its last load took (so a 2 s query
#: on a big ledger runs at most every 8 s however busy the collector; a fast one at once).
LOAD_SPACING = 4.0


@dataclass
class Loaded(Message):
    """A load finished (well or not) after `seconds`."""

    seconds: float


class LedgerScreen(Screen[None]):
    """A screen that shows part of the ledger and reloads it when it changes.

    It loads when it becomes current (first shown, or back from another screen or a
    dialog) and whenever the app sees new events committed (`LedgerChanged`). `read()`
    runs in a thread worker and returns the typed message the screen handles; one load
    at a time, spaced by LOAD_SPACING times the last one's duration.
    """

    #: What loading does, for the error message: "Cannot <reading>".
    reading = "load"

    def __init__(self) -> None:
        super().__init__()
        self._loading = False
        self._again = False
        self._next_load = 0.0
        self._timer: Timer | None = None

    @property
    def tui(self) -> RintikTui:
        return cast("RintikTui", self.app)

    @property
    def source(self) -> LedgerSource:
        return self.tui.source

    def now(self) -> datetime:
        return self.tui.clock()

    # --- loading ---------------------------------------------------------------------------

    def read(self) -> Message | None:
        """Read what the screen shows (in a worker thread) as a message for it."""
        return None

    def reload(self) -> None:
        if self._loading:
            self._again = True
            return
        wait = self._next_load - monotonic()
        if wait > 0:
            if self._timer is None:
                self._timer = self.set_timer(wait, self._reload_later)
            return
        self._loading = True
        self._load()

    @property
    def busy(self) -> bool:
        """A load is running or waiting for its turn."""
        return self._loading or self._timer is not None

    def _reload_later(self) -> None:
        self._timer = None
        self.reload()

    @work(thread=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        started = monotonic()
        try:
            message = self.read()
            if message is not None:
                self.post_message(message)
        except Exception as exc:  # a locked or vanished database: say so, keep going
            self.failed(self.reading, exc)
        finally:
            self.post_message(Loaded(monotonic() - started))

    def on_loaded(self, message: Loaded) -> None:
        self._loading = False
        self._next_load = monotonic() + LOAD_SPACING * message.seconds
        if self._again:
            self._again = False
            self.reload()

    def on_screen_resume(self, _: events.ScreenResume) -> None:
        self.reload()

    def on_ledger_changed(self, _: LedgerChanged) -> None:
        self.reload()

    def failed(self, action: str, error: Exception) -> None:
        """Report a failure from a worker thread (post_message is thread-safe)."""
        self.app.post_message(Failed(action, str(error) or type(error).__name__))
