"""Project: its resources, the running month's invoice with its lines, its invoices."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from rintik_lite.ledger.notifications import parse_time
from rintik_lite.tui.header import CollectorBar
from rintik_lite.tui.invoice import LINE_COLUMNS, InvoiceScreen, line_cells
from rintik_lite.tui.messages import ProjectLoaded
from rintik_lite.tui.screen import LedgerScreen
from rintik_lite.tui.source import ProjectDetail
from rintik_lite.tui.tables import LiveTable, day, duration, short_when


def invoice_label(doc: dict[str, Any]) -> str:
    number = doc.get("number")
    return f"#{number}" if number is not None else "running"


SHORT_TYPES = {"floating_ip": "fip"}


class ProjectScreen(LedgerScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1", "tab('resources')", "Resources", show=False),
        Binding("2", "tab('month')", "This month", show=False),
        Binding("3", "tab('invoices')", "Invoices", show=False),
    ]

    def __init__(self, project_id: str, name: str | None) -> None:
        super().__init__()
        self.project_id = project_id
        self.project_name = name
        self.detail: ProjectDetail | None = None

    def compose(self) -> ComposeResult:
        yield CollectorBar("Projects", self.project_name or self.project_id)
        yield Static(self.title_text(), id="project-title")
        with TabbedContent(initial="resources"):
            with TabPane("Resources [1]", id="resources"):
                yield LiveTable(
                    [
                        ("TYPE", 8),
                        ("NAME", 12),
                        ("FLAVOR/SIZE", 11),
                        ("START", 11),
                        ("END", 11),
                        ("RUNNING", 8),
                    ],
                    id="resources-table",
                )
            with TabPane("This month [2]", id="month"):
                yield Static("", id="month-summary")
                yield LiveTable(LINE_COLUMNS, id="month-lines")
            with TabPane("Invoices [3]", id="invoices"):
                yield LiveTable(
                    [
                        ("INVOICE", 8),
                        ("PERIOD", 7),
                        ("STATE", 11),
                        ("TOTAL", 14),
                        ("CLOSED", 10),
                        ("PAID", 10),
                    ],
                    id="invoices-table",
                )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#resources-table", LiveTable).focus()

    def title_text(self) -> str:
        name = self.project_name or "(no name)"
        if self.detail is None:
            return f"{name} · {self.project_id}"
        active = sum(1 for r in self.detail.resources if r.end is None)
        return f"{name} · {self.project_id} · {active} active"

    # --- loading ---------------------------------------------------------------------------

    reading = "load the project"

    def read(self) -> ProjectLoaded:
        return ProjectLoaded(self.source.project(self.project_id, self.now()))

    def on_project_loaded(self, message: ProjectLoaded) -> None:
        detail = self.detail = message.detail
        self.project_name = detail.name or self.project_name
        self.query_one("#project-title", Static).update(self.title_text())
        now = self.now()
        self.query_one("#resources-table", LiveTable).show(
            [
                (
                    f"{r.entity_id}@{r.start.isoformat()}",
                    (
                        SHORT_TYPES.get(r.entity_type, r.entity_type),
                        r.name or r.entity_id,
                        r.detail,
                        short_when(r.start, now),
                        short_when(r.end, now) if r.end else "running",
                        Text(duration(r.running_time(now)), justify="right"),
                    ),
                )
                for r in sorted(detail.resources, key=lambda r: (r.end is not None, r.start))
            ]
        )
        running = detail.running
        summary = self.query_one("#month-summary", Static)
        if running is None:
            summary.update("Nothing billed this month yet.")
            self.query_one("#month-lines", LiveTable).show([])
        else:
            summary.update(
                f"{running['period']} so far: subtotal {running['subtotal']} · tax "
                f"{running['tax']} · total {running['total']} {running['currency']} · ⏎ opens"
            )
            self.query_one("#month-lines", LiveTable).show(
                [(str(i), line_cells(line)) for i, line in enumerate(running["lines"])]
            )
        self.query_one("#invoices-table", LiveTable).show(
            [
                (
                    str(doc["id"]),
                    (
                        invoice_label(doc),
                        doc["period"],
                        doc["state"].replace("_", " "),
                        Text(f"{doc['total']} {doc['currency']}", justify="right"),
                        day(parse_time(doc["closed_at"])) if doc["closed_at"] else "",
                        day(parse_time(doc["paid_at"])) if doc["paid_at"] else "",
                    ),
                )
                for doc in detail.invoices
            ]
        )

    # --- actions ---------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        table = {"resources": "#resources-table", "month": "#month-lines"}.get(
            tab, "#invoices-table"
        )
        self.query_one(table, LiveTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table_id = event.data_table.id
        if table_id == "invoices-table" and event.row_key.value is not None:
            self.open_invoice(int(event.row_key.value))
        elif table_id == "month-lines" and self.detail and self.detail.running:
            self.open_invoice(int(self.detail.running["id"]))

    def open_invoice(self, invoice_id: int) -> None:
        self.app.push_screen(InvoiceScreen(invoice_id, self.project_name))
