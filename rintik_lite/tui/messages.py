"""Typed messages: what worker threads bring back to the screens, and what screens say.

Workers never touch widgets: they read through the `LedgerSource` and post one of these;
the handler, on the UI thread, updates the widgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from textual.message import Message

from rintik_lite.billing.rating import Totals
from rintik_lite.services import BatchResult
from rintik_lite.tui.queries import CollectorState, EventRow, ProjectSummary
from rintik_lite.tui.source import PriceList, ProjectDetail


@dataclass
class CollectorPolled(Message):
    """The collector's state, as the database shows it."""

    state: CollectorState


@dataclass
class LedgerChanged(Message):
    """New events or quarantined messages were committed since the last poll."""


@dataclass
class Failed(Message):
    """A read or a write failed; `action` says which, `error` why."""

    action: str
    error: str


@dataclass
class ProjectsLoaded(Message):
    projects: list[ProjectSummary]


@dataclass
class CostsLoaded(Message):
    """Month-to-date totals and latest ledger change per project."""

    costs: dict[str, Totals]
    last_events: dict[str, datetime]


@dataclass
class ProjectLoaded(Message):
    detail: ProjectDetail


@dataclass
class InvoiceLoaded(Message):
    invoice: dict[str, Any]


@dataclass
class InvoiceSaved(Message):
    """An invoice was marked paid or rolled back."""

    invoice: dict[str, Any]


@dataclass
class InvoiceExported(Message):
    path: str


@dataclass
class PricesLoaded(Message):
    prices: PriceList


@dataclass
class PriceSaved(Message):
    price: dict[str, Any]


@dataclass
class EventsLoaded(Message):
    events: list[EventRow]
    quarantined: list[dict[str, Any]]


@dataclass
class QuarantineRetried(Message):
    result: BatchResult
