"""Add or change a price: kind, key, hourly and monthly amounts, optional project."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from rintik_lite.billing.rating import DEFAULT_KEY, PRICE_KINDS
from rintik_lite.tui.source import PriceDraft


class PriceFormScreen(ModalScreen[PriceDraft | None]):
    """Dismissed with the draft (Save, or Enter in a field), or None (Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, draft: PriceDraft, currency: str) -> None:
        super().__init__()
        self.draft = draft
        self.currency = currency

    def compose(self) -> ComposeResult:
        draft = self.draft
        with Vertical(id="dialog"):
            yield Label("Add or change a price", id="dialog-title")
            with Horizontal(classes="field"):
                yield Label("Kind")
                yield Select(
                    [(kind, kind) for kind in PRICE_KINDS],
                    value=draft.kind,
                    allow_blank=False,
                    compact=True,
                    id="kind",
                )
            for field, label, value, placeholder in (
                ("key", "Key", draft.key, "flavor or volume type, id or name"),
                ("hourly", "Hourly", draft.hourly, f"{self.currency} per hour (per GB-hour)"),
                ("monthly", "Monthly", draft.monthly or "", "cap per month (optional)"),
                ("project", "Project", draft.project_id or "", "project id (empty: all)"),
            ):
                with Horizontal(classes="field"):
                    yield Label(label)
                    yield Input(value, placeholder=placeholder, compact=True, id=field)
            with Horizontal(id="buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#key" if not self.draft.key else "#hourly", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        key = self.query_one("#key", Input)
        if event.value not in ("flavor", "volume"):
            key.value = DEFAULT_KEY
        elif key.value == DEFAULT_KEY:
            key.value = ""

    def value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def result(self) -> PriceDraft:
        return PriceDraft(
            kind=str(self.query_one("#kind", Select).value),
            key=self.value("key"),
            hourly=self.value("hourly"),
            monthly=self.value("monthly") or None,
            project_id=self.value("project") or None,
        )

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.save()
        else:
            self.dismiss(None)

    def save(self) -> None:
        draft = self.result()
        if not draft.key or not draft.hourly:
            self.notify("A price needs a key and an hourly amount.", severity="warning")
            return
        self.dismiss(draft)

    def action_cancel(self) -> None:
        self.dismiss(None)
