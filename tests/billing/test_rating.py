"""Rating rules: hand-worked invoice examples, case tables and properties.

Every expected amount is worked out by hand in the comment above it.
"""

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import (
    ENTITY_PRICE_KIND,
    PRICE_KINDS,
    Line,
    Price,
    RatingRules,
    Usage,
    UsageRater,
    billable_hours,
    billable_quantity,
    find_price,
    price_changes,
    rate_usage,
    round_money,
    totals,
    unrounded_amount,
)

D = Decimal
NOV = Period(2026, 11)
OCT = Period(2026, 10)
AFTER_NOV = datetime(2026, 12, 1, tzinfo=UTC)  # November has ended: invoice-closing time
CEIL = RatingRules()
EXACT = RatingRules(rounding="exact")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def price(
    kind: str,
    key: str,
    hourly: str,
    monthly: str | None = None,
    since: datetime | None = None,
    project_id: str | None = None,
    currency: str = "USD",
) -> Price:
    return Price(
        kind=kind,
        key=key,
        hourly=D(hourly),
        monthly=None if monthly is None else D(monthly),
        currency=currency,
        since=since,
        project_id=project_id,
    )


def instance(
    start: datetime,
    end: datetime | None,
    flavor_id: str = "f-small",
    flavor: str = "m1.small",
    project_id: str = "p1",
) -> Usage:
    return Usage(
        entity_id="i-1",
        entity_type="instance",
        project_id=project_id,
        start=start,
        end=end,
        name="web-1",
        flavor_id=flavor_id,
        flavor=flavor,
    )


def router(start: datetime, end: datetime | None) -> Usage:
    return Usage("r-1", "router", "p1", start, end, name="edge")


SMALL = price("flavor", "f-small", "0.0125")
LARGE_BY_NAME = price("flavor", "m1.large", "0.05")


# --- worked examples ---------------------------------------------------------------


def test_resize_mid_month_gives_two_lines() -> None:
    # The ledger split web-1 at the resize into two intervals.
    # m1.small 1 Nov 00:00 -> 10 Nov 12:30 = 9 d 12.5 h = 228.5 h -> ceil 229 h
    #   229 x 0.0125 = 2.8625 -> 2.86
    # m1.large 10 Nov 12:30 -> (open) 1 Dec 00:00 = 11.5 h + 20 d = 491.5 h -> ceil 492 h
    #   492 x 0.05 = 24.60 (price found by flavor name: no row for id "f-large")
    # subtotal 2.86 + 24.60 = 27.46
    before = instance(utc(2026, 11, 1), utc(2026, 11, 10, 12, 30))
    after = instance(utc(2026, 11, 10, 12, 30), None, flavor_id="f-large", flavor="m1.large")
    prices = [SMALL, LARGE_BY_NAME]
    lines = [
        *rate_usage(before, NOV, AFTER_NOV, prices, CEIL),
        *rate_usage(after, NOV, AFTER_NOV, prices, CEIL),
    ]
    assert [(ln.description, ln.hours, ln.amount, ln.price_key) for ln in lines] == [
        ("m1.small (instance web-1)", D(229), D("2.86"), "f-small"),
        ("m1.large (instance web-1)", D(492), D("24.60"), "m1.large"),
    ]
    assert lines[1].end == AFTER_NOV
    assert totals(lines, CEIL).subtotal == D("27.46")


def test_interval_across_month_boundary_is_billed_in_each_month() -> None:
    # 20 GB ssd volume, 31 Oct 18:00 -> 2 Nov 06:00, 0.0004 per GB-hour.
    # October: 6 h x 0.0004 x 20 = 0.048 -> 0.05
    # November: 30 h x 0.0004 x 20 = 0.24
    volume = Usage(
        "v-1",
        "volume",
        "p1",
        utc(2026, 10, 31, 18),
        utc(2026, 11, 2, 6),
        name="data",
        volume_type_id="vt-ssd",
        volume_type="ssd",
        size=20,
    )
    prices = [price("volume", "vt-ssd", "0.0004")]
    (october,) = rate_usage(volume, OCT, AFTER_NOV, prices, CEIL)
    (november,) = rate_usage(volume, NOV, AFTER_NOV, prices, CEIL)
    assert (october.start, october.end) == (utc(2026, 10, 31, 18), utc(2026, 11, 1))
    assert (october.hours, october.quantity, october.amount) == (D(6), 20, D("0.05"))
    assert october.exact_amount == D("0.048")
    assert (november.start, november.end) == (utc(2026, 11, 1), utc(2026, 11, 2, 6))
    assert (november.hours, november.amount) == (D(30), D("0.24"))
    assert october.description == "20 GB ssd (volume data)"


@pytest.mark.parametrize(
    ("usage", "prices", "expected"),
    [
        # Floating IP all November: 720 h x 0.01 = 7.20, capped at 5.00.
        (
            Usage("fip-1", "floating_ip", "p1", utc(2026, 11, 1), None, name="203.0.113.7"),
            [price("floating_ip", "default", "0.01", monthly="5.00")],
            D("5.00"),
        ),
        # Floating IP 100 h: 100 x 0.01 = 1.00, under the cap.
        (
            Usage("fip-1", "floating_ip", "p1", utc(2026, 11, 1), utc(2026, 11, 5, 4)),
            [price("floating_ip", "default", "0.01", monthly="5.00")],
            D("1.00"),
        ),
        # 10 GB volume all month: per GB 720 x 0.001 = 0.72, capped at 0.50; x 10 = 5.00.
        (
            Usage("v-1", "volume", "p1", utc(2026, 10, 1), None, volume_type="hdd", size=10),
            [price("volume", "hdd", "0.001", monthly="0.50")],
            D("5.00"),
        ),
    ],
)
def test_monthly_amount_caps_the_per_unit_charge(
    usage: Usage, prices: list[Price], expected: Decimal
) -> None:
    (line,) = rate_usage(usage, NOV, AFTER_NOV, prices, CEIL)
    assert line.amount == expected


def test_missing_price_is_a_zero_line_flagged_missing() -> None:
    # No router price at all: 48 h still shown, amount 0.00, flagged.
    (line,) = rate_usage(router(utc(2026, 11, 3), utc(2026, 11, 5)), NOV, AFTER_NOV, [SMALL], CEIL)
    assert line.missing_price is True
    assert (line.hours, line.unit_price, line.amount) == (D(48), D(0), D("0.00"))
    assert (line.price_kind, line.price_key, line.description) == (
        "router",
        "default",
        "router edge",
    )


def test_missing_flavor_price_reports_the_id_key_it_looked_for() -> None:
    usage = instance(utc(2026, 11, 3), utc(2026, 11, 4), flavor_id="f-x", flavor="x.big")
    (line,) = rate_usage(usage, NOV, AFTER_NOV, [SMALL], CEIL)
    assert (line.missing_price, line.price_kind, line.price_key) == (True, "flavor", "f-x")
    assert line.amount == D("0.00")


def test_price_in_another_currency_is_not_used() -> None:
    eur = price("router", "default", "0.02", currency="EUR")
    (line,) = rate_usage(router(utc(2026, 11, 3), utc(2026, 11, 4)), NOV, AFTER_NOV, [eur], CEIL)
    assert line.missing_price is True
    (line,) = rate_usage(
        router(utc(2026, 11, 3), utc(2026, 11, 4)),
        NOV,
        AFTER_NOV,
        [eur],
        RatingRules(currency="EUR"),
    )
    # 24 h x 0.02 = 0.48
    assert (line.missing_price, line.amount) == (False, D("0.48"))


@pytest.mark.parametrize(
    ("end", "rules", "hours", "amount"),
    [
        # 1 h 30 min at 0.10: ceil -> 2 h = 0.20; exact -> 1.5 h = 0.15
        (utc(2026, 11, 3, 1, 30), CEIL, D(2), D("0.20")),
        (utc(2026, 11, 3, 1, 30), EXACT, D("1.5"), D("0.15")),
        # 1 s at 0.10: ceil -> 1 h = 0.10; exact -> 1/3600 h = 0.0000277... -> 0.00
        (utc(2026, 11, 3, 0, 0, 1), CEIL, D(1), D("0.10")),
        (
            utc(2026, 11, 3, 0, 0, 1),
            EXACT,
            D("0.00027777777777777777777777777777777777777777777777778"),
            D("0.00"),
        ),
    ],
)
def test_hour_ceil_versus_exact(
    end: datetime, rules: RatingRules, hours: Decimal, amount: Decimal
) -> None:
    prices = [price("router", "default", "0.10")]
    (line,) = rate_usage(router(utc(2026, 11, 3), end), NOV, AFTER_NOV, prices, rules)
    assert (line.hours, line.amount) == (hours, amount)


def test_project_override_price() -> None:
    # Global m1.small (by id) 0.0125; project p-edu has its own m1.small (by name) 0.01.
    # The project row wins although the global row matches the id key.
    # 100 h: p-edu 100 x 0.01 = 1.00; p1 100 x 0.0125 = 1.25.
    prices = [SMALL, price("flavor", "m1.small", "0.01", project_id="p-edu")]
    start, end = utc(2026, 11, 3), utc(2026, 11, 7, 4)
    (edu,) = rate_usage(instance(start, end, project_id="p-edu"), NOV, AFTER_NOV, prices, CEIL)
    (other,) = rate_usage(instance(start, end, project_id="p1"), NOV, AFTER_NOV, prices, CEIL)
    assert (edu.unit_price, edu.amount, edu.price_key) == (D("0.01"), D("1.00"), "m1.small")
    assert (other.unit_price, other.amount, other.price_key) == (D("0.0125"), D("1.25"), "f-small")


def test_price_change_mid_interval_splits_the_line() -> None:
    # Router all November; price 0.02 from the start, 0.03 from 16 Nov 00:00.
    # 1 -> 16 Nov = 15 d = 360 h x 0.02 = 7.20; 16 Nov -> 1 Dec = 360 h x 0.03 = 10.80
    prices = [
        price("router", "default", "0.02"),
        price("router", "default", "0.03", since=utc(2026, 11, 16)),
    ]
    lines = rate_usage(router(utc(2026, 10, 20), None), NOV, AFTER_NOV, prices, CEIL)
    assert [(ln.start, ln.end, ln.hours, ln.unit_price, ln.amount) for ln in lines] == [
        (utc(2026, 11, 1), utc(2026, 11, 16), D(360), D("0.02"), D("7.20")),
        (utc(2026, 11, 16), utc(2026, 12, 1), D(360), D("0.03"), D("10.80")),
    ]
    assert totals(lines, CEIL).subtotal == D("18.00")


def test_split_lines_round_hours_separately() -> None:
    # 15 Nov 23:30 -> 16 Nov 00:30 with the change at midnight: two 30-min lines,
    # each ceil'd to 1 h: 0.02 + 0.03 = 0.05 (unsplit it would bill 1 h only).
    prices = [
        price("router", "default", "0.02"),
        price("router", "default", "0.03", since=utc(2026, 11, 16)),
    ]
    lines = rate_usage(
        router(utc(2026, 11, 15, 23, 30), utc(2026, 11, 16, 0, 30)), NOV, AFTER_NOV, prices, CEIL
    )
    assert [(ln.hours, ln.amount) for ln in lines] == [(D(1), D("0.02")), (D(1), D("0.03"))]


def test_repeating_the_same_price_does_not_split() -> None:
    prices = [
        price("router", "default", "0.02"),
        price("router", "default", "0.02", since=utc(2026, 11, 16)),
    ]
    lines = rate_usage(
        router(utc(2026, 11, 15, 23, 30), utc(2026, 11, 16, 0, 30)), NOV, AFTER_NOV, prices, CEIL
    )
    assert [(ln.hours, ln.amount) for ln in lines] == [(D(1), D("0.02"))]


def test_project_override_starting_mid_interval_splits() -> None:
    # p1 gets its own router price 0.01 from 11 Nov: 1 -> 11 Nov = 240 h x 0.02 = 4.80;
    # 11 -> 21 Nov = 240 h x 0.01 = 2.40.
    prices = [
        price("router", "default", "0.02"),
        price("router", "default", "0.01", since=utc(2026, 11, 11), project_id="p1"),
        price("router", "default", "0.50", since=utc(2026, 11, 5), project_id="p-other"),
    ]
    lines = rate_usage(router(utc(2026, 11, 1), utc(2026, 11, 21)), NOV, AFTER_NOV, prices, CEIL)
    assert [(ln.end, ln.amount) for ln in lines] == [
        (utc(2026, 11, 11), D("4.80")),
        (utc(2026, 11, 21), D("2.40")),
    ]


def test_open_interval_is_clipped_at_now() -> None:
    # Started 20 Nov 08:00, still running at 21 Nov 09:15:30 = 25 h 15 min 30 s -> 26 h.
    # 26 x 0.0125 = 0.325 -> 0.33 (ROUND_HALF_UP; half-even would give 0.32)
    now = utc(2026, 11, 21, 9, 15, 30)
    usage = instance(utc(2026, 11, 20, 8), None)
    (line,) = rate_usage(usage, NOV, now, [SMALL], CEIL)
    assert (line.end, line.hours, line.exact_amount, line.amount) == (
        now,
        D(26),
        D("0.325"),
        D("0.33"),
    )
    assert rate_usage(usage, Period(2026, 12), now, [SMALL], CEIL) == []


def test_interval_outside_period_gives_no_line() -> None:
    usage = router(utc(2026, 10, 3), utc(2026, 10, 5))
    assert rate_usage(usage, NOV, AFTER_NOV, [price("router", "default", "1")], CEIL) == []


@pytest.mark.parametrize(
    ("amounts", "tax_percent", "subtotal", "tax", "total"),
    [
        # 0.05 x 10% = 0.005 -> 0.01 (half up; half-even would give 0.00)
        (["0.05"], "10", "0.05", "0.01", "0.06"),
        # 0.04 x 10% = 0.004 -> 0.00
        (["0.04"], "10", "0.04", "0.00", "0.04"),
        # 0.25 x 10% = 0.025 -> 0.03 (half-even would give 0.02)
        (["0.20", "0.05"], "10", "0.25", "0.03", "0.28"),
        # 12.35 x 21% = 2.5935 -> 2.59
        (["12.30", "0.05"], "21", "12.35", "2.59", "14.94"),
        # 10.00 x 7.5% = 0.75
        (["3.33", "3.33", "3.34"], "7.5", "10.00", "0.75", "10.75"),
        # No lines: everything 0.00
        ([], "10", "0.00", "0.00", "0.00"),
    ],
)
def test_totals(amounts: list[str], tax_percent: str, subtotal: str, tax: str, total: str) -> None:
    rules = RatingRules(tax_percent=D(tax_percent))
    lines = [_line(D(amount)) for amount in amounts]
    result = totals(lines, rules)
    assert (result.subtotal, result.tax, result.total) == (D(subtotal), D(tax), D(total))
    assert str(result.total) == total  # two decimal places, always


def test_totals_with_zero_decimal_places() -> None:
    # JPY-like currency: 1235 x 10% = 123.5 -> 124
    rules = RatingRules(decimal_places=0, tax_percent=D(10), currency="JPY")
    result = totals([_line(D(1000)), _line(D(235))], rules)
    assert (str(result.subtotal), str(result.tax), str(result.total)) == ("1235", "124", "1359")


# --- case tables for the pure helpers ------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "rounding", "expected"),
    [
        (0, "hour_ceil", D(0)),
        (1, "hour_ceil", D(1)),
        (D("0.000001"), "hour_ceil", D(1)),
        (3599, "hour_ceil", D(1)),
        (3600, "hour_ceil", D(1)),
        (3601, "hour_ceil", D(2)),
        (7200, "hour_ceil", D(2)),
        (0, "exact", D(0)),
        (1800, "exact", D("0.5")),
        (5400, "exact", D("1.5")),
        (D("9.0"), "exact", D("0.0025")),
        (2_592_000, "exact", D(720)),
    ],
)
def test_billable_hours(seconds: int | Decimal, rounding: str, expected: Decimal) -> None:
    assert billable_hours(seconds, rounding) == expected


def test_billable_hours_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="rounding must be one of"):
        billable_hours(10, "hour_floor")
    with pytest.raises(ValueError, match="must not be negative"):
        billable_hours(-1, "exact")


@pytest.mark.parametrize(
    ("entity_type", "size", "expected"),
    [
        ("volume", 20, 20),
        ("volume", D("20.1"), 21),
        ("snapshot", Fraction(1, 3), 1),
        ("image", D("2.000"), 2),
        ("image", None, 0),
        ("volume", 0, 0),
        ("instance", 40, 1),
        ("floating_ip", None, 1),
        ("router", None, 1),
    ],
)
def test_billable_quantity(
    entity_type: str, size: int | Decimal | Fraction | None, expected: int
) -> None:
    assert billable_quantity(entity_type, size) == expected


def test_fractional_size_is_rounded_up_on_the_line() -> None:
    # 1.5 GB image -> 2 GB; 10 h x 0.01 x 2 = 0.20
    usage = Usage("img-1", "image", "p1", utc(2026, 11, 3), utc(2026, 11, 3, 10), size=D("1.5"))
    (line,) = rate_usage(usage, NOV, AFTER_NOV, [price("image", "default", "0.01")], CEIL)
    assert (line.quantity, line.amount, line.description) == (2, D("0.20"), "2 GB (image img-1)")


@pytest.mark.parametrize(
    ("amount", "places", "expected"),
    [
        ("0.005", 2, "0.01"),
        ("0.0049999", 2, "0.00"),
        ("0.015", 2, "0.02"),
        ("0.025", 2, "0.03"),
        ("-0.005", 2, "-0.01"),
        ("2.8625", 2, "2.86"),
        ("7", 2, "7.00"),
        ("0.5", 0, "1"),
        ("1.2345", 3, "1.235"),
    ],
)
def test_round_money_is_half_up(amount: str, places: int, expected: str) -> None:
    assert str(round_money(D(amount), places)) == expected


@pytest.mark.parametrize(
    ("hours", "hourly", "monthly", "quantity", "expected"),
    [
        ("10", "0.5", None, 1, "5.0"),
        ("10", "0.5", "3", 1, "3"),
        ("10", "0.5", "3", 4, "12"),
        ("10", "0.5", "6", 4, "20.0"),
        ("1.5", "0.0125", None, 20, "0.37500"),
    ],
)
def test_unrounded_amount(
    hours: str, hourly: str, monthly: str | None, quantity: int, expected: str
) -> None:
    result = unrounded_amount(
        D(hours), D(hourly), None if monthly is None else D(monthly), quantity
    )
    assert result == D(expected)


FIND_PRICES = [
    price("flavor", "f-small", "1", since=None),
    price("flavor", "f-small", "2", since=utc(2026, 11, 10)),
    price("flavor", "m1.small", "3", since=None),
    price("flavor", "m1.small", "4", since=utc(2026, 11, 20), project_id="p-edu"),
    price("flavor", "f-small", "5", since=utc(2026, 11, 25), project_id="p-edu"),
    price("volume", "f-small", "9", since=None),  # another kind: never matched
]


@pytest.mark.parametrize(
    ("keys", "project_id", "at", "expected_hourly"),
    [
        # Global id row in effect before its successor's since.
        (["f-small", "m1.small"], "p1", utc(2026, 11, 9, 23, 59), "1"),
        # since is inclusive.
        (["f-small", "m1.small"], "p1", utc(2026, 11, 10), "2"),
        # Id key before name key (global scope).
        (["f-small", "m1.small"], "p1", utc(2026, 12, 1), "2"),
        # Only the name key matches.
        (["f-other", "m1.small"], "p1", utc(2026, 11, 5), "3"),
        # p-edu: no project row yet -> global rows.
        (["f-small", "m1.small"], "p-edu", utc(2026, 11, 19), "2"),
        # p-edu: project row by name beats global row by id.
        (["f-small", "m1.small"], "p-edu", utc(2026, 11, 20), "4"),
        # p-edu: project id row beats project name row once in effect.
        (["f-small", "m1.small"], "p-edu", utc(2026, 11, 25), "5"),
        # Nothing matches.
        (["f-other"], "p1", utc(2026, 11, 5), None),
        ([], "p1", utc(2026, 11, 5), None),
    ],
)
def test_find_price(
    keys: list[str], project_id: str, at: datetime, expected_hourly: str | None
) -> None:
    found = find_price(FIND_PRICES, "flavor", keys, project_id, at)
    assert (None if found is None else found.hourly) == (
        None if expected_hourly is None else D(expected_hourly)
    )


def test_find_price_before_first_since_is_none_and_ties_go_to_the_later_row() -> None:
    prices = [
        price("router", "default", "1", since=utc(2026, 11, 10)),
        price("router", "default", "2", since=utc(2026, 11, 10)),
    ]
    assert find_price(prices, "router", ["default"], "p1", utc(2026, 11, 9)) is None
    found = find_price(prices, "router", ["default"], "p1", utc(2026, 11, 10))
    assert found is not None
    assert found.hourly == D(2)


def test_price_changes_lists_only_real_changes_strictly_inside() -> None:
    prices = [
        price("router", "default", "1", since=utc(2026, 11, 5)),  # appears: a change
        price("router", "default", "1", since=utc(2026, 11, 8)),  # same amounts: no change
        price("router", "default", "1", monthly="9", since=utc(2026, 11, 12)),  # cap: change
        price("router", "default", "2", since=utc(2026, 11, 1)),  # at start: not inside
        price("router", "default", "3", since=utc(2026, 11, 20)),  # at end: not inside
        price("router", "default", "4", since=utc(2026, 11, 15), project_id="p-other"),
        price("floating_ip", "default", "4", since=utc(2026, 11, 16)),
    ]
    changes = price_changes(
        prices, "router", ["default"], "p1", utc(2026, 11, 1), utc(2026, 11, 20)
    )
    assert changes == [utc(2026, 11, 5), utc(2026, 11, 12)]


def test_validation_refuses_floats_naive_datetimes_and_unknown_names() -> None:
    with pytest.raises(TypeError, match=r"hourly must be a decimal\.Decimal"):
        Price("router", "default", 0.1, None, "USD", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="price kind must be one of"):
        price("gpu", "default", "1")
    with pytest.raises(ValueError, match="since must be a timezone-aware"):
        price("router", "default", "1", since=datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="rounding must be one of"):
        RatingRules(rounding="round")
    with pytest.raises(TypeError, match=r"tax_percent must be a decimal\.Decimal"):
        RatingRules(tax_percent=0.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start must be a timezone-aware"):
        router(datetime(2026, 11, 1), None)
    with pytest.raises(ValueError, match="unknown entity type 'gpu'"):
        rate_usage(Usage("g", "gpu", "p1", utc(2026, 11, 1), None), NOV, AFTER_NOV, [], CEIL)


def test_every_entity_type_maps_to_a_price_kind() -> None:
    assert set(ENTITY_PRICE_KIND.values()) == set(PRICE_KINDS)
    assert ENTITY_PRICE_KIND["instance"] == "flavor"


# --- properties ----------------------------------------------------------------------


def _line(amount: Decimal) -> Line:
    return Line(
        entity_id="x",
        entity_type="router",
        description="router x",
        start=utc(2026, 11, 1),
        end=utc(2026, 11, 2),
        hours=D(24),
        quantity=1,
        unit_price=amount,
        amount=amount,
        missing_price=False,
        price_kind="router",
        price_key="default",
        exact_amount=amount,
    )


instants = st.datetimes(
    min_value=datetime(2026, 9, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC)
)
in_november = st.datetimes(
    min_value=datetime(2026, 11, 1),
    max_value=datetime(2026, 11, 30, 23, 59),
    timezones=st.just(UTC),
)
money_rates = st.decimals(min_value=D(0), max_value=D(100), places=4)
sizes = st.integers(min_value=0, max_value=2000)
ENTITY_TYPES = ["instance", "volume", "snapshot", "image", "floating_ip", "router"]


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    start = draw(instants)
    end = draw(st.none() | instants)
    return Usage(
        entity_id=draw(st.sampled_from(["a", "b", "c"])),
        entity_type=draw(st.sampled_from(ENTITY_TYPES)),
        project_id=draw(st.sampled_from(["p1", "p2"])),
        start=start,
        end=end,
        flavor_id="f-1",
        flavor="m1.small",
        volume_type="ssd",
        size=draw(sizes),
    )


@st.composite
def price_lists(draw: st.DrawFn) -> list[Price]:
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(PRICE_KINDS))
        key = {"flavor": draw(st.sampled_from(["f-1", "m1.small"])), "volume": "ssd"}.get(
            kind, "default"
        )
        rows.append(
            Price(
                kind=kind,
                key=key,
                hourly=draw(money_rates),
                monthly=draw(st.none() | money_rates),
                currency="USD",
                since=draw(st.none() | instants),
                project_id=draw(st.sampled_from([None, "p1"])),
            )
        )
    return rows


@given(
    st.lists(usages(), max_size=6),
    price_lists(),
    st.sampled_from([CEIL, EXACT, RatingRules(tax_percent=D("19.6"), decimal_places=3)]),
)
def test_lines_sum_to_subtotal_and_cover_the_clipped_interval(
    usage_list: list[Usage], prices: list[Price], rules: RatingRules
) -> None:
    lines: list[Line] = []
    for usage in usage_list:
        rated = rate_usage(usage, NOV, AFTER_NOV, prices, rules)
        if rated:
            # Lines of one interval are contiguous and cover its clip exactly.
            assert rated[0].start == max(usage.start, NOV.start)
            assert rated[-1].end == min(usage.end or AFTER_NOV, NOV.end)
            assert all(a.end == b.start for a, b in pairwise(rated))
        lines.extend(rated)
    result = totals(lines, rules)
    minor_unit = D(1).scaleb(-rules.decimal_places)
    assert result.subtotal == sum((line.amount for line in lines), D(0))
    assert result.subtotal.as_tuple().exponent == -rules.decimal_places
    for line in lines:
        assert line.amount == round_money(line.exact_amount, rules.decimal_places)
    exact_sum = sum((line.exact_amount for line in lines), D(0))
    assert abs(result.subtotal - exact_sum) <= len(lines) * minor_unit / 2


@given(in_november, in_november, in_november, money_rates, sizes, st.sampled_from(ENTITY_TYPES))
def test_exact_amounts_add_up_when_an_interval_is_split(
    a: datetime, b: datetime, c: datetime, hourly: Decimal, size: int, entity_type: str
) -> None:
    # Rounding to the minor unit is per line, so only the unrounded amounts add up;
    # exact hours are 50-digit quotients, so "add up" means to within 1e-30.
    start, split, end = sorted([a, b, c])
    assume(start < split < end)
    prices = [
        Price(ENTITY_PRICE_KIND[entity_type], key, hourly, None, "USD", None)
        for key in ("default", "f-1", "ssd")
    ]

    def rate(s: datetime, e: datetime) -> Line:
        usage = Usage("e", entity_type, "p1", s, e, flavor_id="f-1", volume_type="ssd", size=size)
        (line,) = rate_usage(usage, NOV, AFTER_NOV, prices, EXACT)
        return line

    whole, first, second = rate(start, end), rate(start, split), rate(split, end)
    with localcontext() as context:
        context.prec = 80  # so that this test's own sums are not rounded at 28 digits
        assert abs(first.exact_amount + second.exact_amount - whole.exact_amount) <= D("1e-30")
        assert abs(first.hours + second.hours - whole.hours) <= D("1e-40")
    # Per-line rounding: the split pair differs from the whole by at most 1.5 minor units.
    assert abs(first.amount + second.amount - whole.amount) <= D("0.015")


@given(st.integers(min_value=0, max_value=10**9) | st.decimals(D(0), D(10**9), places=6))
def test_hour_ceil_is_at_least_exact_and_less_than_one_more(seconds: int | Decimal) -> None:
    exact = billable_hours(seconds, "exact")
    ceil = billable_hours(seconds, "hour_ceil")
    assert ceil == ceil.to_integral_value()
    assert exact <= ceil < exact + 1
    assert (ceil == 0) == (seconds == 0)


@given(
    st.lists(st.decimals(D(0), D(10_000), places=2), max_size=20),
    st.decimals(D(0), D(100), places=3),
)
def test_total_is_subtotal_plus_half_up_tax(amounts: list[Decimal], tax_percent: Decimal) -> None:
    rules = RatingRules(tax_percent=tax_percent)
    result = totals([_line(amount) for amount in amounts], rules)
    exact_tax = result.subtotal * tax_percent / 100
    assert result.total == result.subtotal + result.tax
    assert result.tax.as_tuple().exponent == -2
    assert abs(result.tax - exact_tax) <= D("0.005")
    # Half up: a tax exactly half-way rounds up, never down.
    if exact_tax - exact_tax.quantize(D("0.01"), rounding=ROUND_DOWN) == D("0.005"):
        assert result.tax > exact_tax


# Few instants, so that usages share their clipped spans (what `UsageRater` rates once).
shared_instants = st.sampled_from(
    [utc(2026, 10, 20), NOV.start, utc(2026, 11, 9, 12), utc(2026, 11, 20), NOV.end]
)


@st.composite
def price_lists_of_many_scopes(draw: st.DrawFn) -> list[Price]:
    """Rows in two currencies, global and per project, some changing inside November."""
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(PRICE_KINDS))
        key = {
            "flavor": draw(st.sampled_from(["f-1", "f-2", "m1.small"])),
            "volume": "ssd",
        }.get(kind, "default")
        rows.append(
            Price(
                kind=kind,
                key=key,
                hourly=draw(money_rates),
                monthly=draw(st.none() | money_rates),
                currency=draw(st.sampled_from(["USD", "USD", "EUR"])),
                since=draw(st.none() | shared_instants | instants),
                project_id=draw(st.sampled_from([None, None, "p1", "p2"])),
            )
        )
    return rows


@given(
    st.lists(
        usages()
        | st.builds(
            Usage,
            entity_id=st.sampled_from(["a", "b"]),
            entity_type=st.sampled_from(ENTITY_TYPES),
            project_id=st.sampled_from(["p1", "p2", "p3"]),
            start=shared_instants,
            end=st.none() | shared_instants,
            flavor_id=st.sampled_from(["f-1", "f-2"]),
            flavor=st.just("m1.small"),
            volume_type=st.sampled_from(["ssd", None]),
            size=st.sampled_from([None, 1, 20]),
        ),
        max_size=12,
    ),
    price_lists_of_many_scopes(),
    st.sampled_from([CEIL, EXACT, RatingRules(decimal_places=3, currency="EUR")]),
    st.sampled_from([AFTER_NOV, utc(2026, 11, 15)]),
)
def test_a_rater_gives_the_lines_of_rate_usage(
    usage_list: list[Usage], prices: list[Price], rules: RatingRules, now: datetime
) -> None:
    rater, forgetful = UsageRater(NOV, now, prices, rules), UsageRater(NOV, now, prices, rules)
    forgetful.MAX_SPANS = 2
    for usage in usage_list:
        expected = rate_usage(usage, NOV, now, prices, rules)
        assert rater.rate(usage) == expected
        assert forgetful.rate(usage) == expected


def test_a_rater_rates_each_size_and_each_project_price_apart() -> None:
    # Three volumes over the same span: 10 GB and 20 GB for p1, 10 GB for p2, which has
    # its own price. 1 Nov -> 11 Nov = 240 h x 0.001 = 0.24 per GB; p2: 240 x 0.002 = 0.48.
    prices = [price("volume", "ssd", "0.001"), price("volume", "ssd", "0.002", project_id="p2")]
    rater = UsageRater(NOV, AFTER_NOV, prices, CEIL)

    def volume(project_id: str, size: int) -> Usage:
        return Usage(
            "v", "volume", project_id, NOV.start, utc(2026, 11, 11), volume_type="ssd", size=size
        )

    amounts = [
        rater.rate(volume(p, size))[0].amount for p, size in (("p1", 10), ("p1", 20), ("p2", 10))
    ]
    assert amounts == [D("2.40"), D("4.80"), D("4.80")]
