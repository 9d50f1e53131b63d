"""The line at the top of every screen: where you are, and the collector's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from rintik_lite.tui.queries import CollectorState
from rintik_lite.tui.tables import age

if TYPE_CHECKING:
    from rintik_lite.tui.app import RintikTui


CHEVRON = " \u203a "


class CollectorBar(Horizontal):
    """Where you are on the left (`rintik-lite > Projects > acme-prod`, with a chevron);
    on the right the collector's state as the database shows it (see
    `queries.CollectorState`) and the time, in UTC."""

    def __init__(self, *crumbs: str) -> None:
        super().__init__()
        self.crumbs = crumbs

    def compose(self) -> ComposeResult:
        yield Label(CHEVRON.join(("rintik-lite", *self.crumbs)), id="crumb")
        yield Label("collector: …", id="collector")

    def on_mount(self) -> None:
        self.watch(self.app, "collector", self.show_state, init=True)

    def show_state(self, state: CollectorState | None) -> None:
        app = cast("RintikTui", self.app)
        label = self.query_one("#collector", Label)
        label.remove_class("-live", "-quiet", "-none")
        now = app.clock()
        clock = now.strftime("%H:%M UTC")
        if state is None:
            label.update(f"collector: … · {clock}")
            return
        status = state.status(now)
        label.add_class({"live": "-live", "quiet": "-quiet"}.get(status, "-none"))
        rate = f"{state.events_last_minute}{'+' if state.more else ''}/min"
        last = f"last {age(state.last_received, now)}" if state.last_received else ""
        parts = [f"● {status}", rate, last, clock]
        label.update(" · ".join(p for p in parts if p))
