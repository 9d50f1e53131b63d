"""The running invoice's adjustments are cached (`invoices.ADJUSTMENTS`) by a digest of what
they are computed from: every change behind them shows on the next read, and a cached read
equals a fresh one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from rintik_lite import invoices
from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import RatingRules
from rintik_lite.db import DigestCache, Prepared, RowMemo, database
from rintik_lite.models import Interval, IntervalRow, Invoice, Price
from tests.billing.trace import instance, utc
from tests.conftest import record

P = "proj-a"
NOV = Period(2026, 11)
DEC = Period(2026, 12)
RULES = RatingRules()
EARLY = utc(2026, 9, 1)


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    invoices.ADJUSTMENTS.clear()
    yield
    invoices.ADJUSTMENTS.clear()


def web(event: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return instance(event, at, project=P, instance_id=kw.pop("instance_id", "i-1"), **kw)


def adjustments(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (line["entity_id"], line["hours"], line["amount"])
        for line in doc["lines"]
        if line["adjusts"] is not None
    ]


def read(invoice_id: int, now: datetime) -> dict[str, Any]:
    """The invoice read twice (the second read from the cache when nothing changed), and
    once more with an empty cache: all three agree."""
    first = invoices.show_invoice(invoice_id, now, RULES)
    assert invoices.show_invoice(invoice_id, now, RULES) == first
    invoices.ADJUSTMENTS.clear()
    assert invoices.show_invoice(invoice_id, now, RULES) == first
    return first


def test_every_change_behind_the_adjustments_shows_on_the_next_read(db_url: str) -> None:
    record(web("create.end", utc(2026, 10, 3, 10)), now=utc(2026, 10, 3, 10))
    invoices.set_price("flavor", "m1.small", "0.10", currency="USD", now=EARLY)
    [october] = invoices.close_invoices(None, utc(2026, 11, 1, 0, 1), RULES)
    now = utc(2026, 11, 5)
    november = invoices.invoice_for(P, NOV, now, RULES)["id"]
    assert adjustments(read(november, now)) == []
    assert len(invoices.ADJUSTMENTS) == 1

    # The ledger: a late delete (Oct 20) shortens October's interval.
    record(web("delete.end", now, deleted=utc(2026, 10, 20)), now=now)
    # Oct 3 10:00 -> Oct 20 = 398 h x 0.10 = 39.80, billed 686 h = 68.60
    assert adjustments(read(november, now)) == [("i-1", "-288", "-28.80")]

    # The prices: a row in force from October 1 re-rates October.
    invoices.set_price(
        "flavor", "m1.small", "0.20", currency="USD", now=now, since=utc(2026, 10, 1)
    )
    # 398 h x 0.20 = 79.60, billed 68.60
    assert adjustments(read(november, now)) == [("i-1", "-288", "11.00")]

    # The closed invoices: closing November freezes the adjustment; December has none.
    invoices.close_invoices(None, utc(2026, 12, 1, 0, 1), RULES)
    later = utc(2026, 12, 2)
    record(web("create.end", later, instance_id="i-2"), now=later)
    december = invoices.invoice_for(P, DEC, utc(2026, 12, 3), RULES)
    assert adjustments(read(december["id"], utc(2026, 12, 3))) == []
    assert Invoice.get_by_id(october["id"]).state == "unpaid"


def test_an_interval_changed_in_place_is_seen(db_url: str) -> None:
    """Whatever way the ledger changes a row (today: rewritten), the digest covers it."""
    record(web("create.end", utc(2026, 10, 3, 10)), now=utc(2026, 10, 3, 10))
    invoices.set_price("flavor", "m1.small", "0.10", currency="USD", now=EARLY)
    invoices.close_invoices(None, utc(2026, 11, 1, 0, 1), RULES)
    now = utc(2026, 11, 5)
    november = invoices.invoice_for(P, NOV, now, RULES)["id"]
    assert adjustments(read(november, now)) == []
    Interval.update(start=utc(2026, 10, 13, 10)).where(Interval.entity_id == "i-1").execute()
    # 240 h fewer in October: -24.00
    assert adjustments(read(november, now)) == [("i-1", "-240", "-24.00")]


def test_the_cache_keeps_at_most_its_size() -> None:
    cache: DigestCache[tuple[()]] = DigestCache(size=2)
    for n in range(3):
        cache.put(bytes([n]), ())
    assert cache.get(bytes([0])) is None
    assert cache.get(bytes([1])) == ()
    cache.put(bytes([3]), ())  # 1 was used last: 2 goes
    assert cache.get(bytes([2])) is None
    assert cache.get(bytes([1])) == ()


def test_a_prepared_query_binds_values_and_converts_rows(db_url: str) -> None:
    invoices.set_price("flavor", "m1.small", "0.10", currency="USD", now=EARLY, since=EARLY)
    invoices.set_price("flavor", "m1.large", "0.40", currency="USD", now=EARLY, since=None)
    query = Prepared(
        lambda key: (
            Price.select(Price.key, Price.hourly, Price.since)
            .where((Price.kind == "flavor") & (Price.key == key))
            .order_by(Price.id)
        ),
        "key",
    )
    assert query.rows(key="m1.small") == [("m1.small", Decimal("0.10"), EARLY)]
    assert query.rows(key="m1.large") == [("m1.large", Decimal("0.40"), None)]
    assert query.rows(key="nothing") == []
    [(key, hourly, since)] = query.raw(key="m1.small")
    assert (key, hourly) == ("m1.small", "0.10")  # as stored: text
    assert since is not None
    assert database.obj is not None


def test_a_row_memo_converts_each_stored_row_once_and_follows_changes(db_url: str) -> None:
    record(web("create.end", utc(2026, 10, 3, 10)), now=utc(2026, 10, 3, 10))
    memo = RowMemo(size=2)
    build = lambda project_id: IntervalRow.query().where(Interval.project_id == project_id)  # noqa: E731
    plain, memoized = Prepared(build, "project_id"), Prepared(build, "project_id", memo=memo)
    [row] = memoized.rows(project_id=P)
    assert memoized.rows(project_id=P) == plain.rows(project_id=P) == [row]
    assert memoized.rows(project_id=P)[0] is row  # converted once
    assert len(memo) == 1
    Interval.update(name="renamed").where(Interval.entity_id == "i-1").execute()
    [changed] = memoized.rows(project_id=P)
    assert IntervalRow(*changed).name == "renamed"
    assert memoized.rows(project_id="nobody") == []
    record(web("create.end", utc(2026, 10, 4), instance_id="i-2"), now=utc(2026, 10, 4))
    assert len(memoized.rows(project_id=P)) == 2
    assert len(memo) <= 2  # full: emptied, then refilled
    other = Prepared(lambda: Interval.select(Interval.entity_id), memo=memo)
    with pytest.raises(ValueError, match="same columns"):
        other.rows()
