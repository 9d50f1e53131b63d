"""Events: the latest notifications as they arrive, and the quarantine with its reasons."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Label

from rintik_lite.ledger.notifications import parse_time
from rintik_lite.tui.confirm import ConfirmScreen
from rintik_lite.tui.header import CollectorBar
from rintik_lite.tui.messages import EventsLoaded, QuarantineRetried
from rintik_lite.tui.screen import LedgerScreen
from rintik_lite.tui.tables import LiveTable, age

#: Notifications listed (the newest).
LATEST = 200


class EventsScreen(LedgerScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.projects", "Back"),
        Binding("r", "retry", "Retry quarantined"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.quarantine_size = 0

    def compose(self) -> ComposeResult:
        yield CollectorBar("Events")
        yield Label(f"Latest notifications (newest first, up to {LATEST})", classes="section")
        yield LiveTable(
            [("AGE", 5), ("TYPE", 28), ("ACTION", 7), ("RESOURCE", 18), ("SOURCE", 6)],
            id="events-table",
        )
        yield Label("Quarantine", id="quarantine-title", classes="section")
        yield LiveTable(
            [("ID", 4), ("AGE", 5), ("TYPE", 20), ("TRIES", 5), ("REASON", 34)],
            id="quarantine-table",
        )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#events-table", LiveTable).focus()

    reading = "list the events"

    def read(self) -> EventsLoaded:
        return EventsLoaded(*self.source.events(LATEST))

    def on_events_loaded(self, message: EventsLoaded) -> None:
        now = self.now()
        self.query_one("#events-table", LiveTable).show(
            [
                (
                    str(e.id),
                    (
                        Text(age(e.received_at, now), justify="right"),
                        e.event_type,
                        e.action or "",
                        e.entity_id or "",
                        e.source,
                    ),
                )
                for e in message.events
            ]
        )
        self.quarantine_size = len(message.quarantined)
        self.query_one("#quarantine-table", LiveTable).show(
            [
                (
                    str(q["id"]),
                    (
                        str(q["id"]),
                        age(parse_time(q["received_at"]), now),
                        q["event_type"] or "?",
                        str(q["attempts"]),
                        (q["reason"] or "").splitlines()[0] if q["reason"] else "",
                    ),
                )
                for q in message.quarantined
            ]
        )
        title = self.query_one("#quarantine-title", Label)
        title.update(
            f"Quarantine: {self.quarantine_size} message"
            f"{'s' if self.quarantine_size != 1 else ''}"
            + (" (r retries them all)" if self.quarantine_size else "")
        )
        title.set_class(bool(self.quarantine_size), "-missing")

    def action_retry(self) -> None:
        if not self.quarantine_size:
            self.notify("The quarantine is empty.")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.retry()

        count = self.quarantine_size
        question = (
            f"Apply the {count} quarantined message{'s' if count != 1 else ''} again? "
            "Those that apply now leave the quarantine."
        )
        self.app.push_screen(ConfirmScreen(question, "Retry"), answered)

    @work(thread=True, group="retry", exit_on_error=False)
    def retry(self) -> None:
        try:
            result = self.source.retry_quarantined(self.now())
        except Exception as exc:
            self.failed("retry the quarantine", exc)
            return
        self.post_message(QuarantineRetried(result))

    def on_quarantine_retried(self, message: QuarantineRetried) -> None:
        r = message.result
        self.notify(
            f"{r.received} retried: {r.applied + r.ignored} applied, "
            f"{r.duplicate} duplicate, {r.quarantined} still quarantined"
        )
        self.reload()
