"""Invoices on the real databases: worked examples computed by hand, and properties.

Every expected amount is worked out in the comment above it, from the rules: hours are
ceil(seconds / 3600) per line, amount = min(hours x hourly, monthly) x GB, rounded half up
to the cent; subtotal = sum of lines; tax = subtotal x rate / 100 rounded the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rintik_lite import invoice_export, invoices
from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import RatingRules
from rintik_lite.db import database
from rintik_lite.errors import InvalidInput, NotFound
from rintik_lite.models import (
    V1_TABLES,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Price,
)
from tests.billing.trace import floating_ip, instance, router, utc, volume, volume_type
from tests.conftest import record

D = Decimal
P = "proj-a"
OCT = Period(2026, 10)
NOV = Period(2026, 11)
RULES = RatingRules()
OCT_CLOSE = utc(2026, 11, 1, 0, 1)  # the scheduler's time: 00:01 on the 1st
NOV_CLOSE = utc(2026, 12, 1, 0, 1)
EARLY = utc(2026, 9, 1)


def price(kind: str, key: str, hourly: str, monthly: str | None = None, **kw: Any) -> None:
    invoices.set_price(kind, key, hourly, monthly=monthly, currency="USD", now=EARLY, **kw)


def lines(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(entity, start, end, hours, quantity, unit price, amount) of each line."""
    return [
        (
            line["entity_id"],
            line["start"],
            line["end"],
            line["hours"],
            line["quantity"],
            line["unit_price"],
            line["amount"],
        )
        for line in doc["lines"]
    ]


def only(docs: list[dict[str, Any]], project: str = P, period: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["project_id"] == project and (period is None or d["period"] == period)
    ]
    assert len(found) == 1, found
    return found[0]


def web(event: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return instance(event, at, project=P, instance_id=kw.pop("instance_id", "i-1"), **kw)


# --- worked examples -----------------------------------------------------------------------


def test_a_resize_mid_month_bills_each_flavor_for_its_own_hours(db_url: str) -> None:
    record(
        web("create.end", utc(2026, 10, 3, 10)),
        web("resize.confirm.end", utc(2026, 10, 10, 6, 30), flavor="m1.large"),
        now=utc(2026, 10, 10, 7),
    )
    price("flavor", "id-m1.small", "0.10")  # by flavor id
    price("flavor", "m1.large", "0.40")  # by flavor name
    rules = RatingRules(tax_percent=D("11"))
    [closed] = invoices.close_invoices(OCT, OCT_CLOSE, rules)
    doc = invoices.show_invoice(closed["id"], OCT_CLOSE, rules)
    # m1.small: Oct 3 10:00 -> Oct 10 06:30 = 6 d 20.5 h = 164.5 h -> 165 h x 0.10 = 16.50
    # m1.large: Oct 10 06:30 -> Nov 1 00:00 = 21 d 17.5 h = 521.5 h -> 522 h x 0.40 = 208.80
    assert lines(doc) == [
        ("i-1", "2026-10-03T10:00:00Z", "2026-10-10T06:30:00Z", "165", 1, "0.10", "16.50"),
        ("i-1", "2026-10-10T06:30:00Z", "2026-11-01T00:00:00Z", "522", 1, "0.40", "208.80"),
    ]
    # subtotal 225.30; tax 11 % = 24.783 -> 24.78; total 250.08
    assert (doc["subtotal"], doc["tax"], doc["total"]) == ("225.30", "24.78", "250.08")
    assert (doc["number"], doc["state"], doc["currency"], doc["tax_percent"]) == (
        1,
        "unpaid",
        "USD",
        "11",
    )
    assert [line["description"] for line in doc["lines"]] == [
        "m1.small (instance web)",
        "m1.large (instance web)",
    ]
    # November, live at 00:01: one minute of m1.large bills one hour: 0.40, tax 0.044 -> 0.04
    nov = only(invoices.list_invoices(OCT_CLOSE, rules), period="2026-11")
    assert (nov["state"], nov["number"], nov["subtotal"], nov["tax"], nov["total"]) == (
        "in_progress",
        None,
        "0.40",
        "0.04",
        "0.44",
    )


def test_a_volume_attached_across_the_month_boundary(db_url: str) -> None:
    def vol(event: str, at: datetime, **kw: Any) -> dict[str, Any]:
        return volume(event, at, project=P, volume_id="v-1", size=20, **kw)

    record(
        volume_type("vt-ssd", "ssd", utc(2026, 9, 1)),
        vol("create.end", utc(2026, 10, 20)),
        vol("attach.end", utc(2026, 10, 25, 12), attached=["i-9"]),
        vol("detach.end", utc(2026, 11, 3, 8)),
        vol("delete.end", utc(2026, 11, 10)),
        now=utc(2026, 11, 10),
    )
    price("volume", "ssd", "0.001")  # by volume type name, per GB-hour
    [oct_] = invoices.close_invoices(None, OCT_CLOSE, RULES)
    [nov] = invoices.close_invoices(None, NOV_CLOSE, RULES)
    # Oct 20 00:00 -> Oct 25 12:00 = 132 h x 0.001 x 20 GB = 2.64
    # Oct 25 12:00 -> Nov 1 00:00 (attached, clipped) = 156 h x 0.001 x 20 = 3.12
    assert lines(invoices.show_invoice(oct_["id"], NOV_CLOSE, RULES)) == [
        ("v-1", "2026-10-20T00:00:00Z", "2026-10-25T12:00:00Z", "132", 20, "0.001", "2.64"),
        ("v-1", "2026-10-25T12:00:00Z", "2026-11-01T00:00:00Z", "156", 20, "0.001", "3.12"),
    ]
    # Nov 1 00:00 -> Nov 3 08:00 (still attached) = 56 h x 0.02 = 1.12
    # Nov 3 08:00 -> Nov 10 00:00 (detached) = 160 h x 0.02 = 3.20
    assert lines(invoices.show_invoice(nov["id"], NOV_CLOSE, RULES)) == [
        ("v-1", "2026-11-01T00:00:00Z", "2026-11-03T08:00:00Z", "56", 20, "0.001", "1.12"),
        ("v-1", "2026-11-03T08:00:00Z", "2026-11-10T00:00:00Z", "160", 20, "0.001", "3.20"),
    ]
    assert (oct_["number"], oct_["total"], nov["number"], nov["total"]) == (1, "5.76", 2, "4.32")
    assert invoices.show_invoice(oct_["id"], NOV_CLOSE, RULES)["lines"][0]["description"] == (
        "20 GB ssd (volume data)"
    )


def test_a_monthly_price_caps_each_line(db_url: str) -> None:
    record(
        web("create.end", utc(2026, 9, 28)),
        web("create.end", utc(2026, 10, 5), instance_id="i-2"),
        web("delete.end", utc(2026, 10, 15), instance_id="i-2", deleted=utc(2026, 10, 15)),
        volume("create.end", utc(2026, 9, 1), project=P, volume_id="v-1", size=100),
        now=utc(2026, 10, 15),
    )
    price("flavor", "m1.small", "0.10", "50.00")
    price("volume", "vt-ssd", "0.0002", "0.10")  # by volume type id
    [closed] = invoices.close_invoices(OCT, OCT_CLOSE, RULES)
    doc = invoices.show_invoice(closed["id"], OCT_CLOSE, RULES)
    # i-1 all October: 744 h x 0.10 = 74.40, capped at 50.00
    # i-2 Oct 5 -> Oct 15: 240 h x 0.10 = 24.00, under the cap
    # v-1 all October: 744 h x 0.0002 = 0.1488 per GB, capped at 0.10, x 100 GB = 10.00
    assert [(line[0], line[3], line[6]) for line in lines(doc)] == [
        ("i-1", "744", "50.00"),
        ("i-2", "240", "24.00"),
        ("v-1", "744", "10.00"),
    ]
    assert doc["subtotal"] == doc["total"] == "84.00"
    # September was not named: it stays open
    assert only(invoices.list_invoices(OCT_CLOSE, RULES), period="2026-09")["state"] == (
        "in_progress"
    )


def test_a_missing_price_bills_zero_until_set_then_at_once(db_url: str) -> None:
    now = utc(2026, 11, 21, 12)
    record(
        floating_ip("create.end", utc(2026, 11, 1), project=P, fip_id="f-1"),
        router("create.end", utc(2026, 11, 1), project=P, router_id="r-1"),
        now=now,
    )
    price("router", "default", "0.01")
    doc = invoices.invoice_for(P, NOV, now, RULES)
    # router Nov 1 -> Nov 21 12:00 = 492 h x 0.01 = 4.92; floating IP: no price -> 0
    assert [(line[0], line[5], line[6]) for line in lines(doc)] == [
        ("f-1", "0", "0.00"),
        ("r-1", "0.01", "4.92"),
    ]
    assert [line["missing_price"] for line in doc["lines"]] == [True, False]
    assert doc["total"] == "4.92"
    assert invoices.missing_prices(now, RULES) == [
        {
            "kind": "floating_ip",
            "keys": ["default"],
            "entity_type": "floating_ip",
            "entities": 1,
            "projects": [P],
        }
    ]
    invoices.set_price("floating_ip", "default", "0.005", currency="USD", now=now)
    again = invoices.show_invoice(doc["id"], now, RULES)
    # 492 h x 0.005 = 2.46; total 4.92 + 2.46 = 7.38
    assert [(line[0], line[5], line[6]) for line in lines(again)] == [
        ("f-1", "0.005", "2.46"),
        ("r-1", "0.01", "4.92"),
    ]
    assert (again["id"], again["total"]) == (doc["id"], "7.38")
    assert invoices.missing_prices(now, RULES) == []


def test_a_late_delete_after_close_becomes_an_adjustment_on_the_running_invoice(
    db_url: str,
) -> None:
    record(web("create.end", utc(2026, 10, 3, 10)), now=utc(2026, 10, 3, 10))
    price("flavor", "m1.small", "0.10")
    [october] = invoices.close_invoices(None, OCT_CLOSE, RULES)
    # Oct 3 10:00 -> Nov 1 (still running at close) = 686 h x 0.10 = 68.60
    frozen = invoices.show_invoice(october["id"], OCT_CLOSE, RULES)
    assert (frozen["number"], frozen["total"]) == (1, "68.60")

    # The delete (Oct 20 00:00) arrives on Nov 5, after October was closed.
    late = utc(2026, 11, 5)
    record(web("delete.end", late, deleted=utc(2026, 10, 20)), now=late)
    assert invoices.show_invoice(october["id"], late, RULES) == frozen  # never edited
    november = only(invoices.list_invoices(late, RULES), period="2026-11")
    doc = invoices.show_invoice(november["id"], late, RULES)
    # Oct 3 10:00 -> Oct 20 00:00 = 16 d 14 h = 398 h x 0.10 = 39.80; billed 68.60:
    # adjustment 39.80 - 68.60 = -28.80 over 398 - 686 = -288 h
    assert doc["lines"] == [
        {
            "entity_id": "i-1",
            "entity_type": "instance",
            "description": "adjustment to invoice #1 (2026-10): m1.small (instance web)",
            "start": "2026-10-01T00:00:00Z",
            "end": "2026-11-01T00:00:00Z",
            "hours": "-288",
            "quantity": 1,
            "unit_price": None,
            "amount": "-28.80",
            "missing_price": False,
            "adjusts": october["id"],
        }
    ]
    assert (doc["state"], doc["subtotal"], doc["total"]) == ("in_progress", "-28.80", "-28.80")

    # Closing November freezes the adjustment with it; it is never billed twice.
    [closed] = invoices.close_invoices(None, NOV_CLOSE, RULES)
    assert (closed["id"], closed["number"], closed["total"]) == (doc["id"], 2, "-28.80")
    assert invoices.show_invoice(closed["id"], NOV_CLOSE, RULES)["lines"] == doc["lines"]
    assert invoices.list_invoices(utc(2026, 12, 5), RULES, period=Period(2026, 12)) == []
    assert invoices.close_invoices(None, utc(2027, 1, 1, 0, 1), RULES) == []


def test_a_price_set_after_close_is_adjusted_on_the_next_invoice(db_url: str) -> None:
    record(web("create.end", utc(2026, 10, 31, 22)), now=utc(2026, 10, 31, 22))
    [october] = invoices.close_invoices(None, OCT_CLOSE, RULES)  # no price yet: 0.00
    assert october["total"] == "0.00"
    now = utc(2026, 11, 2)
    invoices.set_price("flavor", "m1.small", "0.10", currency="USD", now=now)
    doc = invoices.invoice_for(P, NOV, now, RULES)
    # November: Nov 1 -> Nov 2 = 24 h x 0.10 = 2.40. October's 2 h (22:00 -> 24:00), billed
    # at 0 with missing_price, now cost 0.20: adjustment + 0.20 over 0 more hours.
    assert [(line[0], line[3], line[6]) for line in lines(doc)] == [
        ("i-1", "24", "2.40"),
        ("i-1", "0", "0.20"),
    ]
    assert doc["lines"][1]["adjusts"] == october["id"]
    assert doc["total"] == "2.60"


def test_a_late_event_for_a_project_without_an_invoice_gets_its_own_at_the_next_close(
    db_url: str,
) -> None:
    record(web("create.end", utc(2026, 10, 3)), now=utc(2026, 10, 3))
    price("flavor", "m1.small", "0.10")
    assert [d["project_id"] for d in invoices.close_invoices(None, OCT_CLOSE, RULES)] == [P]
    # proj-b's October instance is only heard of on November 3: there is no October
    # invoice of proj-b to correct, so October stays open for it until the next close.
    late = utc(2026, 11, 3)
    record(
        instance("create.end", utc(2026, 10, 30), project="proj-b", instance_id="i-b"),
        instance(
            "delete.end",
            utc(2026, 10, 31),
            project="proj-b",
            instance_id="i-b",
            launched=utc(2026, 10, 30),
            deleted=utc(2026, 10, 31),
        ),
        now=late,
    )
    pending = only(invoices.list_invoices(late, RULES, project_id="proj-b"), "proj-b")
    assert (pending["period"], pending["state"], pending["total"]) == (
        "2026-10",
        "in_progress",
        "2.40",  # Oct 30 -> Oct 31 = 24 h x 0.10
    )
    closed = invoices.close_invoices(None, NOV_CLOSE, RULES)
    assert [(d["project_id"], d["period"], d["number"]) for d in closed] == [
        ("proj-b", "2026-10", 2),  # the late October invoice, before November's
        (P, "2026-11", 3),
    ]


def test_changing_the_rules_after_close_does_not_adjust_closed_invoices(db_url: str) -> None:
    record(web("create.end", utc(2026, 10, 3, 10, 20)), now=utc(2026, 10, 3, 11))
    price("flavor", "m1.small", "0.10")
    invoices.close_invoices(None, OCT_CLOSE, RULES)
    exact = RatingRules(rounding="exact", tax_percent=D("20"))
    nov = invoices.invoice_for(P, NOV, utc(2026, 11, 2), exact)
    # only November's own line (24 h x 0.10 = 2.40, tax 20 % 0.48): October keeps its rules
    assert [line["adjusts"] for line in nov["lines"]] == [None]
    assert (nov["subtotal"], nov["tax"], nov["total"]) == ("2.40", "0.48", "2.88")


def test_the_html_invoice_escapes_what_users_named() -> None:
    doc = {
        "number": 7,
        "project_id": "p<1>",
        "period": "2026-10",
        "state": "unpaid",
        "lines": [
            {
                "description": "m1 (instance <script>alert(1)</script>)",
                "start": "2026-10-01T00:00:00Z",
                "end": "2026-11-01T00:00:00Z",
                "hours": "744",
                "quantity": 0,
                "unit_price": None,
                "amount": "-1.00",
                "missing_price": False,
                "adjusts": 3,
            }
        ],
    }
    page = invoice_export.invoice_html(doc, "A & B", "Line 1\n<Line 2>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "p&lt;1&gt;" in page and "A &amp; B" in page and "Line 1<br>&lt;Line 2&gt;" in page
    assert '<tr class="adjustment">' in page and "<td>2026-10-01 00:00 UTC</td>" in page
    assert '<td class="num">0</td>' in page  # a quantity of 0 is shown, not blanked


def test_prices_for_a_project_override_global_ones(db_url: str) -> None:
    record(
        web("create.end", utc(2026, 10, 1)),
        instance("create.end", utc(2026, 10, 1), project="proj-b", instance_id="i-b"),
        now=utc(2026, 10, 1),
    )
    price("flavor", "m1.small", "0.10")
    price("flavor", "m1.small", "0.05", project_id="proj-b")
    closed = invoices.close_invoices(OCT, OCT_CLOSE, RULES)
    # 744 h x 0.10 = 74.40 for proj-a; 744 h x 0.05 = 37.20 for proj-b
    assert [(d["project_id"], d["number"], d["total"]) for d in closed] == [
        ("proj-a", 1, "74.40"),
        ("proj-b", 2, "37.20"),
    ]


def test_closing_refuses_a_period_that_has_not_ended_and_dry_run_writes_nothing(
    db_url: str,
) -> None:
    record(web("create.end", utc(2026, 10, 3)), now=utc(2026, 10, 3))
    with pytest.raises(InvalidInput, match="2026-11 has not ended"):
        invoices.close_invoices(NOV, utc(2026, 11, 30, 23, 59), RULES)
    draft = invoices.close_invoices(None, OCT_CLOSE, RULES, dry_run=True)
    assert [(d["period"], d["number"], d["state"]) for d in draft] == [
        ("2026-10", None, "in_progress")
    ]
    assert Invoice.select().count() == 0
    assert invoices.close_invoices(None, OCT_CLOSE, RULES)[0]["number"] == 1
    assert invoices.close_invoices(OCT, OCT_CLOSE, RULES) == []


def test_pay_and_unpay_move_between_unpaid_and_finished(db_url: str) -> None:
    record(web("create.end", utc(2026, 10, 3)), now=utc(2026, 10, 3))
    [closed] = invoices.close_invoices(None, OCT_CLOSE, RULES)
    paid_at = utc(2026, 11, 3)
    paid = invoices.pay_invoice(closed["id"], paid_at)
    assert (paid["state"], paid["paid_at"]) == ("finished", "2026-11-03T00:00:00Z")
    assert invoices.pay_invoice(str(closed["id"]), utc(2026, 11, 4))["paid_at"] == (
        "2026-11-03T00:00:00Z"
    )
    back = invoices.unpay_invoice(closed["id"], utc(2026, 11, 5))
    assert (back["state"], back["paid_at"]) == ("unpaid", None)
    running = only(invoices.list_invoices(OCT_CLOSE, RULES), period="2026-11")
    with pytest.raises(InvalidInput, match="in progress"):
        invoices.pay_invoice(running["id"], OCT_CLOSE)
    with pytest.raises(NotFound, match="invoice 9999 does not exist"):
        invoices.pay_invoice(9999, OCT_CLOSE)
    with pytest.raises(NotFound):
        invoices.show_invoice("99999999999999999999", OCT_CLOSE, RULES)
    with pytest.raises(InvalidInput, match="whole number"):
        invoices.show_invoice("abc", OCT_CLOSE, RULES)


def test_set_price_refuses_bad_input(db_url: str) -> None:
    now = utc(2026, 11, 1)
    bad = [
        (("gpu", "x", "1"), {}, "unknown price kind 'gpu'"),
        (("router", "edge", "1"), {}, "router prices have no key: use 'default'"),
        (("flavor", " ", "1"), {}, "must not be empty"),
        (("flavor", "m1", "abc"), {}, "hourly: 'abc' is not a decimal number"),
        (("flavor", "m1", "NaN"), {}, "not a finite decimal"),
        (("flavor", "m1", "-1"), {}, "hourly must not be negative"),
        (("flavor", "m1", "1e999999"), {}, "out of range"),
        (("flavor", "m1", 0.1), {}, "not a decimal number"),
        (("flavor", "m1", "1"), {"monthly": "x"}, "monthly: 'x' is not a decimal"),
    ]
    for args, kw, message in bad:
        with pytest.raises(InvalidInput, match=message):
            invoices.set_price(*args, currency="USD", now=now, **kw)  # type: ignore[arg-type]
    assert Price.select().count() == 0


def test_money_is_stored_as_exact_decimal_text(db_url: str) -> None:
    now = utc(2026, 11, 1)
    invoices.set_price(
        "volume", "ssd", "0.000123456789012345678901", monthly="12.50", currency="eur", now=now
    )
    [row] = invoices.list_prices()
    assert (row["hourly"], row["monthly"], row["currency"]) == (
        "0.000123456789012345678901",
        "12.50",
        "EUR",
    )
    stored = database.execute_sql("SELECT hourly FROM price").fetchone()[0]
    assert stored == "0.000123456789012345678901"


def test_one_invoice_per_project_period_and_unique_numbers_in_the_schema(db_url: str) -> None:
    Invoice.create(project_id=P, period="2026-10", state="unpaid", number=1, created_at=EARLY)
    with pytest.raises(peewee.IntegrityError), database.atomic():
        Invoice.create(project_id=P, period="2026-10", state="unpaid", number=2, created_at=EARLY)
    with pytest.raises(peewee.IntegrityError), database.atomic():
        Invoice.create(project_id="b", period="2026-10", state="unpaid", number=1, created_at=EARLY)


def test_an_open_invoice_has_a_stable_id_and_nothing_to_bill_is_not_found(db_url: str) -> None:
    now = utc(2026, 11, 10)
    record(web("create.end", utc(2026, 11, 2)), now=now)
    first = invoices.invoice_for(P, NOV, now, RULES)
    assert invoices.invoice_for(P, NOV, now + timedelta(hours=1), RULES)["id"] == first["id"]
    assert only(invoices.list_invoices(now, RULES, project_id=P))["id"] == first["id"]
    with pytest.raises(NotFound, match="proj-z has no invoice for 2026-11"):
        invoices.invoice_for("proj-z", NOV, now, RULES)
    with pytest.raises(InvalidInput, match="has not begun"):
        invoices.invoice_for(P, Period(2026, 12), now, RULES)


# --- properties ----------------------------------------------------------------------------

FLAVORS = ["m1.small", "m1.large", "m1.xlarge"]  # m1.xlarge has no price
PROJECTS = ["pa", "pb"]
TRACE_START = utc(2026, 9, 1)
AFTER_OCT = utc(2026, 11, 15)  # September and October have ended; November is running


def _clear() -> None:
    InvoiceLine.delete().execute()
    Invoice.delete().execute()
    Price.delete().execute()
    InvoiceCounter.update(value=0).execute()
    for model in V1_TABLES:
        model.delete().execute()


def _prices() -> None:
    price("flavor", "m1.small", "0.013")
    price("flavor", "m1.small", "0.017", since=utc(2026, 10, 12, 7, 30))  # a price change
    price("flavor", "m1.large", "0.107", "45.5")
    price("volume", "vt-ssd", "0.00031", "0.2")
    price("floating_ip", "default", "0.0047")
    price("flavor", "m1.large", "0.09", project_id="pb")


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Instances (resized, deleted), volumes (attached, resized, deleted), floating IPs of
    two projects, between September 1 and November 15, at whole minutes."""

    def later(t: datetime, most_days: int = 25) -> datetime:
        return t + timedelta(minutes=draw(st.integers(1, most_days * 24 * 60)))

    messages: list[dict[str, Any]] = []
    for project in PROJECTS:
        for n in range(draw(st.integers(0, 2))):
            iid = f"i-{project}-{n}"
            t0 = later(TRACE_START, 50)
            messages.append(instance("create.end", t0, project=project, instance_id=iid))
            t, flavor = t0, "m1.small"
            for _ in range(draw(st.integers(0, 2))):
                t, flavor = later(t), draw(st.sampled_from(FLAVORS))
                messages.append(
                    instance(
                        "resize.confirm.end", t, project=project, instance_id=iid, flavor=flavor
                    )
                )
            if draw(st.booleans()):
                t = later(t)
                messages.append(
                    instance(
                        "delete.end",
                        t,
                        project=project,
                        instance_id=iid,
                        flavor=flavor,
                        launched=t0,
                        deleted=t,
                    )
                )
        if draw(st.booleans()):
            vid, size = f"v-{project}", draw(st.sampled_from([1, 10, 20]))
            t = later(TRACE_START, 50)
            messages.append(volume("create.end", t, project=project, volume_id=vid, size=size))
            for op in draw(st.lists(st.sampled_from(["attach", "detach", "resize"]), max_size=3)):
                t = later(t, 15)
                if op == "resize":
                    size = draw(st.sampled_from([10, 20, 40]))
                attached = ["i-x"] if op == "attach" else None
                event = "resize.end" if op == "resize" else f"{op}.end"
                messages.append(
                    volume(event, t, project=project, volume_id=vid, size=size, attached=attached)
                )
            if draw(st.booleans()):
                messages.append(
                    volume("delete.end", later(t, 15), project=project, volume_id=vid, size=size)
                )
        if draw(st.booleans()):
            t = later(TRACE_START, 60)
            messages.append(floating_ip("create.end", t, project=project, fip_id=f"f-{project}"))
    return messages


def _snapshot(now: datetime, rules: RatingRules) -> list[dict[str, Any]]:
    """Every invoice with its lines; database ids replaced by invoice numbers or keys."""
    docs = [invoices.show_invoice(d["id"], now, rules) for d in invoices.list_invoices(now, rules)]
    numbers = {d["id"]: d["number"] for d in docs}
    for doc in docs:
        doc["id"] = (doc["project_id"], doc["period"])
        for line in doc["lines"]:
            line["adjusts"] = numbers.get(line["adjusts"])
    return sorted(docs, key=lambda d: d["id"])


PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TAXED = RatingRules(tax_percent=D("7.5"))


@PROPERTY_SETTINGS
@given(trace=traces())
def test_lines_sum_to_the_subtotal_exactly(db_url: str, trace: list[dict[str, Any]]) -> None:
    _clear()
    _prices()
    record(*trace, now=AFTER_OCT)
    invoices.close_invoices(Period(2026, 9), AFTER_OCT, TAXED)
    for doc in _snapshot(AFTER_OCT, TAXED):  # September closed; October and November live
        subtotal = sum((D(line["amount"]) for line in doc["lines"]), D("0.00"))
        assert D(doc["subtotal"]) == subtotal
        tax = (subtotal * D("7.5") / 100).quantize(D("0.01"), ROUND_HALF_UP)
        assert (D(doc["tax"]), D(doc["total"])) == (tax, subtotal + tax)
        assert all(
            D(line["amount"]) == D(line["amount"]).quantize(D("0.01")) for line in doc["lines"]
        )
    database.close()


@PROPERTY_SETTINGS
@given(trace=traces())
def test_closing_twice_is_closing_once(db_url: str, trace: list[dict[str, Any]]) -> None:
    _clear()
    _prices()
    record(*trace, now=AFTER_OCT)
    first = invoices.close_invoices(None, AFTER_OCT, RULES)
    once = _snapshot(AFTER_OCT, RULES)
    assert invoices.close_invoices(None, AFTER_OCT, RULES) == []
    assert invoices.close_invoices(Period(2026, 10), AFTER_OCT, RULES) == []
    assert _snapshot(AFTER_OCT, RULES) == once
    assert sorted(d["number"] for d in first) == list(range(1, len(first) + 1))
    database.close()


@PROPERTY_SETTINGS
@given(trace=traces(), data=st.data())
def test_invoices_do_not_depend_on_event_order_or_repetition(
    db_url: str, trace: list[dict[str, Any]], data: st.DataObject
) -> None:
    _clear()
    _prices()
    record(*trace, now=AFTER_OCT)
    invoices.close_invoices(None, AFTER_OCT, TAXED)
    expected = _snapshot(AFTER_OCT, TAXED)

    _clear()
    _prices()
    repeated = trace + data.draw(
        st.lists(st.sampled_from(trace), max_size=len(trace)) if trace else st.just([])
    )
    shuffled = data.draw(st.permutations(repeated))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=3)))
    for lo, hi in zip([0, *cuts], [*cuts, len(shuffled)], strict=True):
        if hi > lo:
            record(*shuffled[lo:hi], now=AFTER_OCT)
    invoices.close_invoices(None, AFTER_OCT, TAXED)
    assert _snapshot(AFTER_OCT, TAXED) == expected
    database.close()


# With `exact` hours and a minor unit of 1e-6, a whole second of one GB at 0.0036 an hour
# costs exactly 0.000001, so no line is rounded and the split property holds exactly.
EXACT = RatingRules(rounding="exact", decimal_places=6)


@PROPERTY_SETTINGS
@given(
    start=st.integers(0, 31 * 86400 - 2),
    length=st.integers(2, 40 * 86400),
    cut=st.floats(0.001, 0.999),
    size=st.integers(1, 50),
)
def test_with_exact_rounding_splitting_an_interval_does_not_change_its_amount(
    db_url: str, start: int, length: int, cut: float, size: int
) -> None:
    _clear()
    price("volume", "vt-ssd", "0.0036")
    t0 = utc(2026, 10, 1) + timedelta(seconds=start)
    length = min(length, int((AFTER_OCT - t0).total_seconds()))  # billed up to `now`
    t1 = t0 + timedelta(seconds=length)
    split = t0 + timedelta(seconds=max(1, min(length - 1, round(length * cut))))

    def vol(project: str, event: str, at: datetime, **kw: Any) -> dict[str, Any]:
        return volume(event, at, project=project, volume_id=f"v-{project}", size=size, **kw)

    record(
        vol("whole", "create.end", t0),
        vol("whole", "delete.end", t1),
        vol("split", "create.end", t0),
        vol("split", "attach.end", split, attached=["i-1"]),  # splits the interval at `split`
        vol("split", "delete.end", t1),
        now=AFTER_OCT,
    )
    docs = {d["project_id"]: d for d in invoices.close_invoices(None, AFTER_OCT, EXACT)}
    nov = {d["project_id"]: d for d in invoices.list_invoices(AFTER_OCT, EXACT, period=NOV)}
    for period in (docs, nov):
        if "whole" in period:
            assert period["split"]["total"] == period["whole"]["total"]
    # and the amount is the exact product: seconds x 0.000001 x GB
    total = sum(
        D(d["total"]) for d in [*docs.values(), *nov.values()] if d["project_id"] == "whole"
    )
    assert total == D(length) * D("0.000001") * size
    database.close()


def test_invoice_rows_closing_inserts_keep_one_row_per_project_and_period(db_url: str) -> None:
    # Closing creates the missing invoice rows with `insert_values(..., ignore=True)`: a
    # row created meanwhile (by a reader, lazily) is kept, not doubled nor an error.
    from rintik_lite.db import insert_values, write_transaction

    created = Invoice.created_at.db_value(OCT_CLOSE)
    names = ("project_id", "period", "state", "created_at")
    with write_transaction():
        insert_values(Invoice, names, [("proj-a", "2026-10", "in_progress", created)])
        insert_values(
            Invoice,
            names,
            [
                ("proj-a", "2026-10", "unpaid", created),
                ("proj-b", "2026-10", "in_progress", created),
            ],
            ignore=True,
        )
    rows = Invoice.select().order_by(Invoice.project_id)
    assert [(r.project_id, r.state) for r in rows] == [
        ("proj-a", "in_progress"),
        ("proj-b", "in_progress"),
    ]
    with pytest.raises(peewee.IntegrityError), write_transaction():
        insert_values(Invoice, names, [("proj-b", "2026-10", "in_progress", created)])
