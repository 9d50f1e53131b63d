"""The TUI's data source: the database `run` writes, through the functions the CLI and the
API call.

The app is given a factory of `LedgerSource` (`RintikTui(source_factory=...)`), so tests
hand it a prepared database. Every method runs in a worker thread with a connection of its
own, opened and closed around the call (peewee keeps one per thread; Textual starts a
thread per worker); on SQLite, WAL lets these reads run beside the collector's writes.
Writes go through the very services the CLI and the API use, each one transaction.

The two reads that grow with the ledger (the projects list, and rating the month for every
project: seconds of pure Python on a million intervals) run in a child process, which the
worker thread waits for: in a thread they would hold the GIL and freeze the keyboard.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rintik_lite import invoice_export, invoices, services
from rintik_lite.api.ledger import keystone_for_names, project_names
from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import RatingRules, Totals
from rintik_lite.db import database, open_database, sqlite_path
from rintik_lite.errors import NotFound
from rintik_lite.settings import Settings
from rintik_lite.tui import queries
from rintik_lite.tui.queries import CollectorState, EventRow, ProjectSummary, Resource

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def connection() -> Iterator[None]:
    """This thread's connection for the duration of a call (kept if it was already open)."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened:
            database.close()


@dataclass(frozen=True)
class ProjectDetail:
    """A project's resources, its running invoice (None with nothing to bill), the others."""

    project_id: str
    name: str | None
    resources: list[Resource]
    running: dict[str, Any] | None
    invoices: list[dict[str, Any]]


@dataclass(frozen=True)
class PriceList:
    """Every price row, and what is billed 0 for lack of a price this month."""

    prices: list[dict[str, Any]]
    missing: list[dict[str, Any]]


@dataclass(frozen=True)
class PriceDraft:
    """A price to add, as the operator typed it (validated by `invoices.set_price`)."""

    kind: str
    key: str
    hourly: str
    monthly: str | None = None
    project_id: str | None = None

    def describe(self, currency: str) -> str:
        scope = f" for project {self.project_id}" if self.project_id else " for every project"
        cap = f", capped at {self.monthly} a month" if self.monthly else ""
        return f"{self.kind} {self.key}: {self.hourly} {currency}/hour{cap}{scope}"


# --- the bulk reads, in a child process ------------------------------------------------------


_KEYSTONE: Any = None  # project names from Keystone, when [keystone] is set up


def _open_child(settings: Settings) -> None:
    global _KEYSTONE
    open_database(settings["database.url"], settings["database.busy_timeout_ms"], migrate=False)
    _KEYSTONE = keystone_for_names(settings)


def _ready() -> bool:
    return True


def _projects() -> list[ProjectSummary]:
    with connection():
        return queries.project_summaries(_KEYSTONE)


def _month_to_date(
    settings: Settings, now: datetime
) -> tuple[dict[str, Totals], dict[str, datetime], str]:
    with connection():
        rules = invoices.rules_from(settings)
        return invoices.month_to_date(now, rules), queries.last_events(), rules.currency


class LedgerSource:
    """Reads and writes of the TUI, on the database `settings` name (already opened).

    `processes=False` keeps the bulk reads in the calling thread (tests, an in-memory
    database). `start()` the child processes before the app runs: starting them needs the
    real stderr, which a running Textual app has replaced. `close()` stops them.
    """

    def __init__(self, settings: Settings, *, processes: bool = True) -> None:
        self.settings = settings
        self.keystone = keystone_for_names(settings)
        global _KEYSTONE
        _KEYSTONE = self.keystone  # for `_projects` when it runs here, without children
        self.metadata_whitelist = settings["ledger.metadata_whitelist"]
        #: The billing currency as last read (the API can change it at run time).
        self.currency = str(settings["billing.currency"]).strip().upper()
        url = settings["database.url"]
        in_memory = url.startswith("sqlite:") and sqlite_path(url) is None
        self.processes = processes and not in_memory
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the two child processes (and multiprocessing's resource tracker)."""
        if not self.processes:
            return
        pool = self._get_pool()
        for future in [pool.submit(_ready) for _ in range(2)]:
            future.result()

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=2,  # rating the month must not hold up the projects list
                    mp_context=multiprocessing.get_context("spawn"),  # never fork threads
                    initializer=_open_child,
                    initargs=(self.settings,),
                )
            return self._pool

    def _in_child(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function` in a child process with its own connection (or here, when child
        processes are off or cannot be started)."""
        if not self.processes:
            with connection():
                return function(*args)
        pool = self._get_pool()
        try:
            future = pool.submit(function, *args)
        except (OSError, ValueError) as exc:  # no process could be started
            log.warning("bulk reads stay in the UI process: %s", exc)
            self.processes = False
            return self._in_child(function, *args)
        try:
            return future.result()
        except BrokenProcessPool:  # a child died (killed, out of memory): start afresh
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise

    def close(self) -> None:
        """Stop the child processes; safe to call twice."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def rules(self) -> RatingRules:
        """The rating rules in force (the settings file, with what the API changed):
        read on every call, inside its connection."""
        rules = invoices.rules_from(self.settings)
        self.currency = rules.currency
        return rules

    # --- reads -----------------------------------------------------------------------------

    def projects(self) -> list[ProjectSummary]:
        return self._in_child(_projects)

    def month_to_date(self, now: datetime) -> tuple[dict[str, Totals], dict[str, datetime]]:
        """Each project's rated usage this month, and its latest ledger change."""
        costs, last_events, self.currency = self._in_child(_month_to_date, self.settings, now)
        return costs, last_events

    def collector_state(self, now: datetime) -> CollectorState:
        with connection():
            return queries.collector_state(now)

    def project(self, project_id: str, now: datetime) -> ProjectDetail:
        with connection():
            rules = self.rules()
            resources = [queries.resource(doc) for doc in services.usage(project_id)]
            try:
                running: dict[str, Any] | None = invoices.invoice_for(
                    project_id, Period.containing(now), now, rules
                )
            except NotFound:
                running = None
            return ProjectDetail(
                project_id=project_id,
                name=project_names([project_id], self.keystone).get(project_id),
                resources=resources,
                running=running,
                invoices=invoices.list_invoices(now, rules, project_id),
            )

    def invoice(self, invoice_id: int, now: datetime) -> dict[str, Any]:
        with connection():
            return invoices.show_invoice(invoice_id, now, self.rules())

    def prices(self, now: datetime) -> PriceList:
        with connection():
            return PriceList(invoices.list_prices(), invoices.missing_prices(now, self.rules()))

    def events(self, limit: int = 200) -> tuple[list[EventRow], list[dict[str, Any]]]:
        """The newest notifications and the quarantine (oldest first)."""
        with connection():
            return queries.latest_events(limit), services.quarantined()

    # --- writes ----------------------------------------------------------------------------

    def pay(self, invoice_id: int, now: datetime) -> dict[str, Any]:
        with connection():
            return invoices.pay_invoice(invoice_id, now)

    def unpay(self, invoice_id: int, now: datetime) -> dict[str, Any]:
        with connection():
            return invoices.unpay_invoice(invoice_id, now)

    def set_price(self, draft: PriceDraft, now: datetime) -> dict[str, Any]:
        with connection():
            return invoices.set_price(
                draft.kind,
                draft.key,
                invoices.parse_decimal(draft.hourly, "hourly"),
                monthly=(
                    invoices.parse_decimal(draft.monthly, "monthly") if draft.monthly else None
                ),
                project_id=draft.project_id or None,
                currency=self.rules().currency,
                now=now,
            )

    def retry_quarantined(self, now: datetime) -> services.BatchResult:
        with connection():
            return services.retry_quarantined(now, self.metadata_whitelist)

    def export(self, invoice: dict[str, Any], fmt: str, path: Path) -> Path:
        """Write an invoice as CSV or printable HTML (the CLI's `invoice show --format`)."""
        if fmt == "csv":
            text = invoice_export.invoice_csv(invoice)
        else:
            with connection():
                company = invoices.billing_settings(self.settings)  # the API may change them
            text = invoice_export.invoice_html(
                invoice, company["company_name"], company["company_address"]
            )
        path = path.expanduser()
        path.write_text(text, encoding="utf-8")
        return path.resolve()
