"""The TUI's own reads on the seeded cloud: the bulk month-to-date rating agrees with the
running invoice of each project, and the collector's state as the database shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rintik_lite import invoices
from rintik_lite.billing.periods import Period
from rintik_lite.tui import queries
from rintik_lite.tui.source import LedgerSource
from rintik_lite.tui.tables import Column, age, layout
from tests.conftest import NOW
from tests.tui.seed import ACME, GLOBEX, NAMELESS, STAGING, settings


def test_month_to_date_is_each_running_invoice_total(seeded: str) -> None:
    rules = invoices.rules_from(settings(seeded))
    bulk = invoices.month_to_date(NOW, rules)
    assert set(bulk) == {ACME, STAGING, GLOBEX, NAMELESS}
    for project, totals in bulk.items():
        running = invoices.invoice_for(project, Period(2026, 11), NOW, rules)
        assert (str(totals.subtotal), str(totals.tax), str(totals.total)) == (
            running["subtotal"],
            running["tax"],
            running["total"],
        )
    assert str(bulk[ACME].total) == "59.95"


def test_collector_state_from_the_event_store(seeded: str) -> None:
    state = queries.collector_state(NOW)
    assert (state.last_received, state.events_last_minute) == (NOW - timedelta(seconds=40), 1)
    assert state.status(NOW) == "live"
    assert state.status(NOW + timedelta(minutes=3)) == "quiet"
    assert queries.collector_state(NOW + timedelta(minutes=3)).events_last_minute == 0


def test_collector_state_of_an_empty_store(sqlite_url: str) -> None:
    state = queries.collector_state(NOW)
    assert (state.last_received, state.version, state.status(NOW)) == (
        None,
        (0, 0),
        "no events yet",
    )


def test_project_summaries_and_last_events(seeded: str) -> None:
    summaries = {p.project_id: p for p in queries.project_summaries()}
    assert {p: (s.name, s.active) for p, s in summaries.items()} == {
        ACME: ("acme-prod", 3),
        STAGING: ("acme-staging", 2),
        GLOBEX: ("globex", 2),
        NAMELESS: (None, 1),
    }
    assert queries.last_events()[NAMELESS] == NOW - timedelta(minutes=3)


@pytest.mark.parametrize(
    ("width", "expected"),
    [(80, [27, 18, 8, 12, 10]), (100, [39, 26, 8, 12, 10]), (120, [53, 32, 8, 12, 10])],
)
def test_project_columns_share_the_width(width: int, expected: list[int]) -> None:
    columns = [
        Column("name", "NAME", flex=3, least=10),
        Column("id", "ID", flex=2, least=8, most=32),
        Column("active", "ACTIVE", width=8),
        Column("cost", "MTD", width=12),
        Column("last", "LAST", width=10),
    ]
    assert layout(columns, width) == expected
    assert sum(expected) + 4 + 1 <= width


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (119, "119s"), (120, "2m"), (7200, "2h"), (172800, "2d")]
)
def test_age(seconds: int, text: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == text


def test_bulk_reads_in_a_child_process_match_the_direct_ones(seeded: str) -> None:
    direct = LedgerSource(settings(seeded), processes=False)
    child = LedgerSource(settings(seeded))
    child.start()
    try:
        assert child.projects() == direct.projects()
        assert child.month_to_date(NOW) == direct.month_to_date(NOW)
        assert child.currency == "USD"
    finally:
        child.close()
        child.close()  # twice is fine
