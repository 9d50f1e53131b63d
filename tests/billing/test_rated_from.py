"""Closing records what each invoice was rated from (`Invoice.rated_from`), and the
adjustments skip re-rating a closed invoice whose inputs still give that digest and that
no adjustment was frozen for: the invoices are the same as when every one is re-rated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rintik_lite import db, invoices
from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import RatingRules
from rintik_lite.db import database
from rintik_lite.models import Invoice
from tests.billing.test_invoices import (
    AFTER_OCT,
    PROPERTY_SETTINGS,
    TAXED,
    _clear,
    _prices,
    _snapshot,
    traces,
)
from tests.billing.trace import instance, utc, volume, volume_type
from tests.conftest import record

P = "proj-a"
RULES = RatingRules()
EARLY = utc(2026, 9, 1)
OCT_CLOSE = utc(2026, 11, 1, 0, 1)
NOV_CLOSE = utc(2026, 12, 1, 0, 1)


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    invoices.ADJUSTMENTS.clear()
    yield
    invoices.ADJUSTMENTS.clear()


@pytest.fixture
def rerated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The projects whose billed lines `_adjustments` read to re-rate a closed invoice."""
    seen: list[str] = []
    billed = invoices._billed

    def spy(project_id: str, wanted: set[int]) -> Any:
        seen.append(project_id)
        return billed(project_id, wanted)

    monkeypatch.setattr(invoices, "_billed", spy)
    return seen


def price(kind: str, key: str, hourly: str) -> None:
    invoices.set_price(kind, key, hourly, currency="USD", now=EARLY)


def adjustments(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(line["entity_id"], line["amount"]) for line in doc["lines"] if line["adjusts"]]


def test_an_unchanged_closed_invoice_is_not_re_rated(db_url: str, rerated: list[str]) -> None:
    record(
        instance("create.end", utc(2026, 10, 3, 10), project=P, instance_id="i-1"),
        now=utc(2026, 10, 3, 10),
    )
    price("flavor", "m1.small", "0.10")
    [october] = invoices.close_invoices(None, OCT_CLOSE, RULES)
    stored = Invoice.get_by_id(october["id"]).rated_from
    assert stored is not None and len(stored) == 64

    running = invoices.invoice_for(P, Period(2026, 11), utc(2026, 11, 5), RULES)
    assert (adjustments(running), rerated) == ([], [])

    # A price for October's flavor from Oct 20 changes what October re-rates to: the digest
    # differs, October is re-rated, and the difference is an adjustment.
    invoices.set_price(
        "flavor", "m1.small", "0.20", currency="USD", now=utc(2026, 11, 4), since=utc(2026, 10, 20)
    )
    invoices.ADJUSTMENTS.clear()
    running = invoices.invoice_for(P, Period(2026, 11), utc(2026, 11, 5), RULES)
    # Oct 20 00:00 -> Nov 1 00:00 = 288 h at 0.20 instead of 0.10: + 28.80
    assert (adjustments(running), rerated) == ([("i-1", "28.80")], [P])


def test_a_late_event_changes_the_digest_and_is_adjusted(db_url: str, rerated: list[str]) -> None:
    record(
        instance("create.end", utc(2026, 10, 3, 10), project=P, instance_id="i-1"),
        now=utc(2026, 10, 3, 10),
    )
    price("flavor", "m1.small", "0.10")
    invoices.close_invoices(None, OCT_CLOSE, RULES)
    late = utc(2026, 11, 5)
    record(
        instance(
            "delete.end",
            late,
            project=P,
            instance_id="i-1",
            launched=utc(2026, 10, 3, 10),
            deleted=utc(2026, 10, 20),
        ),
        now=late,
    )
    running = invoices.invoice_for(P, Period(2026, 11), late, RULES)
    # 398 h instead of 686 h at 0.10: -28.80 (as in test_invoices' late delete)
    assert (adjustments(running), rerated) == ([("i-1", "-28.80")], [P])


def test_an_adjusted_invoice_whose_inputs_come_back_is_adjusted_back(
    db_url: str, rerated: list[str]
) -> None:
    """October's inputs give its closing digest again after an adjustment to it was frozen:
    what was billed for it is no longer its own lines, so it must still be re-rated."""

    def vol(event: str, at: datetime) -> dict[str, Any]:
        return volume(event, at, project=P, volume_id="v-1", size=10, volume_type="vt-1")

    created = utc(2026, 10, 1)
    record(volume_type("vt-1", "ssd", EARLY), vol("create.end", created), now=created)
    price("volume", "ssd", "0.001")  # by type name; "hdd" has no price
    [october] = invoices.close_invoices(None, OCT_CLOSE, RULES)
    assert october["total"] == "7.44"  # 744 h x 10 GB x 0.001

    record(volume_type("vt-1", "hdd", utc(2026, 11, 10)), now=utc(2026, 11, 10))
    [november] = invoices.close_invoices(None, NOV_CLOSE, RULES)
    frozen = invoices.show_invoice(november["id"], NOV_CLOSE, RULES)
    assert adjustments(frozen) == [("v-1", "-7.44")]  # October re-rated without a price

    record(volume_type("vt-1", "ssd", utc(2026, 12, 3)), now=utc(2026, 12, 3))
    rerated.clear()
    december = invoices.invoice_for(P, Period(2026, 12), utc(2026, 12, 4), RULES)
    # October back to 7.44, billed 7.44 - 7.44: + 7.44; November (no price when closed,
    # priced now: 720 h x 10 GB x 0.001) + 7.20
    assert sorted(adjustments(december)) == [("v-1", "7.20"), ("v-1", "7.44")]
    assert rerated == [P]


def test_the_migration_adds_the_column_to_a_version_3_database(db_url: str) -> None:
    record(
        instance("create.end", utc(2026, 10, 3, 10), project=P, instance_id="i-1"),
        now=utc(2026, 10, 3, 10),
    )
    price("flavor", "m1.small", "0.10")
    [october] = invoices.close_invoices(None, OCT_CLOSE, RULES)
    with database.atomic():
        database.execute_sql("ALTER TABLE invoice DROP COLUMN rated_from")
        db.SchemaVersion.update(version=3).execute()
    assert db.upgrade() == (3, db.SCHEMA_VERSION)
    assert db.upgrade() == (db.SCHEMA_VERSION, db.SCHEMA_VERSION)
    # Closed before the column: no digest, so re-rated as before; the same invoice.
    assert Invoice.get_by_id(october["id"]).rated_from is None
    running = invoices.invoice_for(P, Period(2026, 11), utc(2026, 11, 5), RULES)
    assert (running["total"], adjustments(running)) == ("9.60", [])  # 96 h x 0.10


def _close_in_two_steps(trace: list[dict[str, Any]], cut: int, after: Callable[[], None]) -> None:
    """September closed with part of the trace recorded, the rest recorded late, October
    closed; `after` runs after each close."""
    _clear()
    _prices()
    record(*trace[:cut], now=AFTER_OCT)
    invoices.close_invoices(Period(2026, 9), AFTER_OCT, TAXED)
    after()
    record(*trace[cut:], now=AFTER_OCT)
    invoices.set_price(  # a price change that re-rates a closed September
        "flavor", "m1.large", "0.2", currency="USD", now=AFTER_OCT, since=utc(2026, 9, 20)
    )
    invoices.close_invoices(None, AFTER_OCT, TAXED)
    after()
    invoices.ADJUSTMENTS.clear()


def _forget_digests() -> None:
    Invoice.update(rated_from=None).execute()
    invoices.ADJUSTMENTS.clear()


@PROPERTY_SETTINGS
@given(trace=traces(), data=st.data())
def test_skipping_unchanged_invoices_gives_the_invoices_re_rating_all_gives(
    db_url: str, trace: list[dict[str, Any]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(trace)))
    _close_in_two_steps(trace, cut, lambda: None)
    skipped = _snapshot(AFTER_OCT, TAXED)
    _close_in_two_steps(trace, cut, _forget_digests)
    assert _snapshot(AFTER_OCT, TAXED) == skipped
    database.close()
