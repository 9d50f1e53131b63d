"""Prices: the price list, with what is billed 0 for lack of a price this month on top."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from rintik_lite.billing.rating import DEFAULT_KEY
from rintik_lite.ledger.notifications import parse_time
from rintik_lite.tui.confirm import ConfirmScreen
from rintik_lite.tui.header import CollectorBar
from rintik_lite.tui.messages import PriceSaved, PricesLoaded
from rintik_lite.tui.price_form import PriceFormScreen
from rintik_lite.tui.screen import LedgerScreen
from rintik_lite.tui.source import PriceDraft, PriceList
from rintik_lite.tui.tables import LiveTable, day


def in_effect(prices: list[dict[str, Any]], now: datetime) -> set[int]:
    """Ids of the rows in effect now. `list_prices` orders each kind, key and project by
    `since` (none first), so the last row that has begun is the one in effect."""
    current: dict[tuple[str, str, str | None], int] = {}
    for row in prices:
        if row["since"] is None or parse_time(row["since"]) <= now:
            current[(row["kind"], row["key"], row["project_id"])] = row["id"]
    return set(current.values())


class PricesScreen(LedgerScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.projects", "Back"),
        Binding("a", "add", "Add price"),
        Binding("enter", "change", "Change", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.price_list: PriceList | None = None

    def compose(self) -> ComposeResult:
        yield CollectorBar("Prices")
        yield Static("loading prices…", id="prices-summary")
        yield LiveTable(
            [
                ("KIND", 11),
                ("KEY", 15),
                ("PROJECT", 10),
                ("HOURLY", 12),
                ("MONTHLY", 7),
                ("SINCE", 10),
            ],
            id="prices-table",
        )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(LiveTable).focus()

    reading = "list the prices"

    def read(self) -> PricesLoaded:
        return PricesLoaded(self.source.prices(self.now()))

    def on_prices_loaded(self, message: PricesLoaded) -> None:
        self.price_list = listing = message.prices
        current = in_effect(listing.prices, self.now())
        rows: list[tuple[str, tuple[Any, ...]]] = []
        for missing in listing.missing:
            projects = len(missing["projects"])
            rows.append(
                (
                    f"missing:{missing['kind']}:{missing['keys'][-1]}",
                    (
                        Text(missing["kind"], style="bold"),
                        Text(missing["keys"][-1], style="bold"),
                        f"{projects} project{'s' if projects != 1 else ''}",
                        Text("NO PRICE", style="bold red"),
                        "",
                        "",
                    ),
                )
            )
        for price in listing.prices:
            style = "" if price["id"] in current else "dim strike"
            rows.append(
                (
                    f"price:{price['id']}",
                    (
                        Text(price["kind"], style=style),
                        Text(price["key"], style=style),
                        Text(price["project_id"] or "all", style=style),
                        Text(f"{price['hourly']} {price['currency']}", style=style),
                        Text(price["monthly"] or "", style=style),
                        Text(
                            day(parse_time(price["since"])) if price["since"] else "always",
                            style=style,
                        ),
                    ),
                )
            )
        self.query_one(LiveTable).show(rows)
        count = len(listing.missing)
        self.query_one("#prices-summary", Static).update(
            f"{len(listing.prices)} price rows · "
            + (
                f"{count} missing, billed 0 this month (on top)"
                if count
                else "no price missing this month"
            )
        )
        self.query_one("#prices-summary", Static).set_class(bool(count), "-missing")

    # --- writing ---------------------------------------------------------------------------

    def selected_draft(self) -> PriceDraft:
        """A draft for the row under the cursor: its kind and key, and current amounts."""
        key = self.query_one(LiveTable).cursor_key or ""
        listing = self.price_list
        if listing is None:
            return PriceDraft("flavor", "", "")
        if key.startswith("missing:"):
            _, kind, price_key = key.split(":", 2)
            return PriceDraft(kind, price_key, "")
        if key.startswith("price:"):
            price_id = int(key.split(":", 1)[1])
            row = next((p for p in listing.prices if p["id"] == price_id), None)
            if row is not None:
                return PriceDraft(
                    row["kind"], row["key"], row["hourly"], row["monthly"], row["project_id"]
                )
        return PriceDraft("flavor", "", "")

    def action_add(self) -> None:
        self.ask(PriceDraft("flavor", "", ""))

    def action_change(self) -> None:
        self.ask(self.selected_draft())

    def ask(self, draft: PriceDraft) -> None:
        currency = self.source.currency
        if draft.kind not in ("flavor", "volume") and not draft.key:
            draft = PriceDraft(draft.kind, DEFAULT_KEY, draft.hourly)

        def confirmed(yes: bool | None, chosen: PriceDraft) -> None:
            if yes:
                self.save(chosen)

        def filled(chosen: PriceDraft | None) -> None:
            if chosen is None:
                return
            question = (
                f"Set the price of {chosen.describe(currency)}, from now on and for "
                "running resources? (A row is added; closed invoices it changes get "
                "adjustments.)"
            )
            self.app.push_screen(
                ConfirmScreen(question, "Set price"), lambda yes: confirmed(yes, chosen)
            )

        self.app.push_screen(PriceFormScreen(draft, currency), filled)

    @work(thread=True, group="price-write", exit_on_error=False)
    def save(self, draft: PriceDraft) -> None:
        try:
            row = self.source.set_price(draft, self.now())
        except Exception as exc:
            self.failed("set the price", exc)
            return
        self.post_message(PriceSaved(row))

    def on_price_saved(self, message: PriceSaved) -> None:
        row = message.price
        self.notify(f"Price {row['id']}: {row['kind']} {row['key']} {row['hourly']}/hour")
        self.reload()
