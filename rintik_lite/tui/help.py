"""The keys of every screen, and what the header means."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Everywhere",
        (
            ("F1", "this help"),
            ("F2 F3 F4", "projects, prices, events"),
            ("F5", "reload now"),
            ("Esc", "back"),
            ("Ctrl+T", "light / dark theme"),
            ("Ctrl+Q", "quit"),
        ),
    ),
    (
        "Projects",
        (
            ("type", "filter by name or id (Esc clears)"),
            ("↑ ↓ PgUp PgDn", "move"),
            ("Enter", "open the project"),
            ("Ctrl+S Ctrl+R", "next sort column, reverse (or click a header)"),
        ),
    ),
    ("Project", (("1 2 3", "resources, this month, invoices"), ("Enter", "open the invoice"))),
    (
        "Invoice",
        (
            ("p / u", "mark paid / roll back to unpaid (asks first)"),
            ("c / h", "export CSV / HTML to a file"),
        ),
    ),
    ("Prices", (("a", "add a price"), ("Enter", "change the price or set the missing one"))),
    ("Events", (("r", "retry the quarantined messages"), ("Tab", "notifications / quarantine"))),
)

ABOUT = (
    "The header shows the collector as the database sees it: live when a batch was "
    "committed in the last two minutes, quiet otherwise (an idle cloud and a stopped "
    "collector look alike), with events in the last minute and the age of the last one."
)


def keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for section, keys in KEYS:
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in keys:
            table.add_row(f"  {key}", what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "app.pop_screen", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(keys_table())
            yield Static(ABOUT, classes="hint")
