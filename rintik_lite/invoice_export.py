"""Invoices as CSV and as a printable HTML page, from the JSON shape `invoices` returns.

Pure: no database, no clock. The HTML comes from `rintik_lite/templates/invoice.html`
(shipped in the wheel), filled with `string.Template`; every value is escaped.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping
from importlib import resources
from string import Template
from typing import Any

#: Columns of the CSV form, one row per invoice line, in this order.
CSV_COLUMNS: tuple[str, ...] = (
    "entity_type",
    "entity_id",
    "description",
    "start",
    "end",
    "hours",
    "quantity",
    "unit_price",
    "amount",
    "missing_price",
    "adjusts",
)


def invoice_csv(invoice: Mapping[str, Any]) -> str:
    """The invoice's lines as CSV with a header row (`CSV_COLUMNS`); totals are not rows.

    Money and hours are written as the decimal strings of the JSON; `missing_price` as
    `true`/`false`; `adjusts` is empty except on adjustment lines.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in invoice.get("lines", []):
        writer.writerow([_plain(line.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _template() -> Template:
    text = resources.files("rintik_lite").joinpath("templates/invoice.html").read_text("utf-8")
    return Template(text)


def _date(value: str | None) -> str:
    """`2026-11-01T00:00:00Z` -> `2026-11-01 00:00 UTC` (empty for None)."""
    if not value:
        return ""
    day, _, time = value.rstrip("Z").partition("T")
    return f"{day} {time[:5]} UTC" if time else day


def _row(line: Mapping[str, Any]) -> str:
    classes = []
    description = html.escape(str(line.get("description") or ""))
    if line.get("adjusts") is not None:
        classes.append("adjustment")
    if line.get("missing_price"):
        classes.append("missing")
        description += " <em>(no price)</em>"
    cells = [
        f"<td>{description}</td>",
        f"<td>{html.escape(_date(line.get('start')))}</td>",
        f"<td>{html.escape(_date(line.get('end')))}</td>",
        f'<td class="num">{html.escape(_plain(line.get("hours")))}</td>',
        f'<td class="num">{html.escape(_plain(line.get("quantity")))}</td>',
        f'<td class="num">{html.escape(_plain(line.get("unit_price")))}</td>',
        f'<td class="num">{html.escape(_plain(line.get("amount")))}</td>',
    ]
    css = f' class="{" ".join(classes)}"' if classes else ""
    return f"    <tr{css}>{''.join(cells)}</tr>"


def invoice_html(
    invoice: Mapping[str, Any], company_name: str = "", company_address: str = ""
) -> str:
    """A printable HTML invoice: company name and address, the lines, the totals."""

    def text(value: Any) -> str:
        return html.escape("" if value is None else str(value))

    number = invoice.get("number")
    heading = f"Invoice {number}" if number is not None else "Invoice (in progress)"
    address = "<br>".join(text(line) for line in company_address.splitlines() if line.strip())
    lines = invoice.get("lines", [])
    rows = "\n".join(_row(line) for line in lines) or (
        '    <tr><td colspan="7">No usage in this period.</td></tr>'
    )
    return _template().substitute(
        title=text(f"{heading} - {invoice.get('project_id')} - {invoice.get('period')}"),
        heading=text(heading),
        company_name=text(company_name),
        company_address=address,
        project_id=text(invoice.get("project_id")),
        period=text(invoice.get("period")),
        start=text(_date(invoice.get("start"))),
        end=text(_date(invoice.get("end"))),
        state=text(str(invoice.get("state") or "").replace("_", " ")),
        issued=text(_date(invoice.get("closed_at")) or "not yet"),
        currency=text(invoice.get("currency")),
        rows=rows,
        subtotal=text(invoice.get("subtotal")),
        tax_percent=text(invoice.get("tax_percent")),
        tax=text(invoice.get("tax")),
        total=text(invoice.get("total")),
    )
