"""Invoice: its lines and totals; mark it paid or roll that back, export it to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from rintik_lite.tui.confirm import ConfirmScreen
from rintik_lite.tui.header import CollectorBar
from rintik_lite.tui.messages import InvoiceExported, InvoiceLoaded, InvoiceSaved
from rintik_lite.tui.save_as import SaveAsScreen
from rintik_lite.tui.screen import LedgerScreen
from rintik_lite.tui.tables import LiveTable, money

STATE_NAMES = {"in_progress": "IN PROGRESS", "unpaid": "UNPAID", "finished": "PAID"}


def describe(doc: dict[str, Any], project_name: str | None) -> str:
    """`invoice #12 of acme-prod (2026-10, 13.57 USD)`, to name it in questions."""
    label = f"#{doc['number']}" if doc.get("number") is not None else f"{doc['id']} (running)"
    who = project_name or doc["project_id"]
    return f"invoice {label} of {who} ({doc['period']}, {doc['total']} {doc['currency']})"


def line_cells(line: dict[str, Any]) -> tuple[Text | str, ...]:
    """An invoice line as (description, hours, quantity, unit price, amount)."""
    description = Text(line["description"])
    if line.get("missing_price"):
        description = Text.assemble(("no price: ", "bold red"), line["description"])
    return (
        description,
        Text(money(line["hours"]), justify="right"),
        Text(str(line["quantity"]), justify="right"),
        Text(money(line.get("unit_price")), justify="right"),
        Text(money(line["amount"]), justify="right"),
    )


LINE_COLUMNS = [("DESCRIPTION", 36), ("HOURS", 7), ("QTY", 5), ("UNIT", 8), ("AMOUNT", 10)]


class InvoiceScreen(LedgerScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("p", "pay", "Paid"),
        Binding("u", "unpay", "Roll back"),
        Binding("c", "export('csv')", "CSV"),
        Binding("h", "export('html')", "HTML"),
    ]

    def __init__(self, invoice_id: int, project_name: str | None = None) -> None:
        super().__init__()
        self.invoice_id = invoice_id
        self.project_name = project_name
        self.invoice: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield CollectorBar(self.project_name or "Project", "Invoice")
        yield Static(f"Invoice {self.invoice_id}", id="invoice-title")
        yield LiveTable(LINE_COLUMNS, id="invoice-lines")
        yield Static("", id="invoice-totals")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(LiveTable).focus()

    # --- loading ---------------------------------------------------------------------------

    reading = "load the invoice"

    def read(self) -> InvoiceLoaded:
        return InvoiceLoaded(self.source.invoice(self.invoice_id, self.now()))

    def on_invoice_loaded(self, message: InvoiceLoaded) -> None:
        doc = self.invoice = message.invoice
        number = f"#{doc['number']}" if doc["number"] is not None else "(running)"
        state = STATE_NAMES.get(doc["state"], doc["state"])
        who = self.project_name or doc["project_id"]
        self.query_one("#invoice-title", Static).update(
            f"Invoice {number} · {who} · {doc['period']} · {state}"
        )
        self.query_one("#invoice-title", Static).set_class(doc["state"] == "unpaid", "-unpaid")
        self.query_one(LiveTable).show(
            [(str(i), line_cells(line)) for i, line in enumerate(doc["lines"])]
        )
        self.query_one("#invoice-totals", Static).update(
            f"Subtotal {doc['subtotal']}   Tax {doc['tax_percent']}% {doc['tax']}   "
            f"Total {doc['total']} {doc['currency']}"
        )

    # --- paid and rolled back --------------------------------------------------------------

    def action_pay(self) -> None:
        self._change_state(paid=True)

    def action_unpay(self) -> None:
        self._change_state(paid=False)

    def _change_state(self, paid: bool) -> None:
        doc = self.invoice
        if doc is None:
            return
        if doc["state"] == "in_progress":
            self.notify("This invoice is still running: it can be paid once closed.")
            return
        if doc["state"] == ("finished" if paid else "unpaid"):
            self.notify(f"This invoice is already {'paid' if paid else 'unpaid'}.")
            return
        named = describe(doc, self.project_name)
        question = f"Mark {named} paid?" if paid else f"Roll {named} back to unpaid?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.save_state(paid)

        self.app.push_screen(ConfirmScreen(question, "Paid" if paid else "Roll back"), answered)

    @work(thread=True, exclusive=True, group="invoice-write", exit_on_error=False)
    def save_state(self, paid: bool) -> None:
        try:
            change = self.source.pay if paid else self.source.unpay
            doc = change(self.invoice_id, self.now())
        except Exception as exc:
            self.failed("change the invoice", exc)
            return
        self.post_message(InvoiceSaved(doc))

    def on_invoice_saved(self, message: InvoiceSaved) -> None:
        state = STATE_NAMES.get(message.invoice["state"], message.invoice["state"])
        self.notify(f"Invoice #{message.invoice['number']} is {state.lower()}.")
        self.reload()

    # --- export ----------------------------------------------------------------------------

    def action_export(self, fmt: str) -> None:
        doc = self.invoice
        if doc is None:
            return
        label = doc["number"] if doc["number"] is not None else f"{doc['id']}-running"
        default = Path.cwd() / f"invoice-{label}-{doc['period']}.{fmt}"

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.export(doc, fmt, path)

        self.app.push_screen(SaveAsScreen(f"Export as {fmt.upper()} to", default), chosen)

    @work(thread=True, group="export", exit_on_error=False)
    def export(self, doc: dict[str, Any], fmt: str, path: Path) -> None:
        try:
            written = self.source.export(doc, fmt, path)
        except Exception as exc:
            self.failed(f"write {path}", exc)
            return
        self.post_message(InvoiceExported(str(written)))

    def on_invoice_exported(self, message: InvoiceExported) -> None:
        self.notify(f"Wrote {message.path}")
