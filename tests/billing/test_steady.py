"""`rating.steady_until`: until when a month's lines stay what they are at `now`, but for
the end of each line of a resource still running, which follows the clock. Worked examples
at the edges (to the microsecond), and the property: at every instant of the span the
lines rated anew are the lines at `now` with those ends moved."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import (
    FOREVER,
    Line,
    Price,
    RatingRules,
    Usage,
    rate_usage,
    steady_until,
)
from tests.billing.test_rating import ENTITY_PRICE_KIND, PRICE_KINDS, money_rates, usages

NOV = Period(2026, 11)
CEIL = RatingRules()
EXACT = RatingRules(rounding="exact")
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
SMALL = Price("flavor", "m1.small", Decimal("0.10"), None, "USD", None)


def utc(day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, us, tzinfo=UTC)


def vm(start: datetime, end: datetime | None = None, entity_id: str = "i-1") -> Usage:
    return Usage(entity_id, "instance", "p1", start, end, flavor="m1.small")


def lines_at(
    usage_list: list[Usage], at: datetime, prices: list[Price], rules: RatingRules
) -> list[Line]:
    return [line for u in usage_list for line in rate_usage(u, NOV, at, prices, rules)]


def moved(lines: list[Line], now: datetime, later: datetime) -> list[Line]:
    """The lines at `now` with each end that is `now` being `later`."""
    return [replace(line, end=later) if line.end == now else line for line in lines]


def hours(usage_list: list[Usage], at: datetime, prices: list[Price] = [SMALL]) -> list[Decimal]:  # noqa: B006
    return [line.hours for line in lines_at(usage_list, at, prices, CEIL)]


def test_a_running_line_is_steady_until_its_next_whole_hour() -> None:
    running = [vm(utc(20, 10, 20))]
    now = utc(21, 12, 0, 0, 500_000)  # 25 h 40 min and a half second: 26 hours billed
    until = steady_until(running, NOV, now, [SMALL], CEIL)
    assert until == utc(21, 12, 20)
    assert hours(running, now) == hours(running, until - US) == hours(running, until) == [26]
    assert hours(running, until + US) == [27]  # one microsecond later: one more hour


def test_at_a_whole_hour_of_a_running_line_nothing_is_steady() -> None:
    running = [vm(utc(20, 10, 20))]
    now = utc(21, 12, 20)  # exactly 26 hours: the next microsecond bills 27
    assert steady_until(running, NOV, now, [SMALL], CEIL) == now
    assert hours(running, now) == [26] and hours(running, now + US) == [27]


def test_the_span_ends_where_a_line_appears_ends_or_splits_and_at_the_month_end() -> None:
    now = utc(21, 12, 30)
    ended = vm(utc(2, 3), utc(10, 4, 5))  # over before now: never changes again
    assert steady_until([ended], NOV, now, [SMALL], CEIL) == FOREVER
    later_start = vm(utc(21, 12, 45), entity_id="i-2")  # starts after now
    assert steady_until([ended, later_start], NOV, now, [SMALL], CEIL) == utc(21, 12, 45)
    ending = vm(utc(21, 12, 10), utc(21, 12, 50))  # its end is in the future
    assert steady_until([ending], NOV, now, [SMALL], CEIL) == utc(21, 12, 50)
    scheduled = replace(SMALL, hourly=Decimal("0.20"), since=utc(21, 12, 40))
    assert steady_until([ended], NOV, now, [SMALL, scheduled], CEIL) == utc(21, 12, 40)
    month_end = utc(30, 23, 30)
    running = [vm(utc(30, 22, 0))]  # hours change at whole hours: 00:00 is also the month end
    assert steady_until(running, NOV, month_end, [SMALL], CEIL) == NOV.end
    after = NOV.end + timedelta(days=2)  # November is over: its lines never change again
    assert steady_until(running, NOV, after, [SMALL], CEIL) == FOREVER
    assert steady_until(running, NOV, NOV.end, [SMALL], CEIL) == NOV.end  # at the end itself


def test_a_split_line_follows_the_hours_of_its_last_part() -> None:
    new_price = replace(SMALL, hourly=Decimal("0.30"), since=utc(21, 11, 15))
    running = [vm(utc(21, 9, 0))]
    now = utc(21, 12, 0)  # the last line started at 11:15: its first hour ends at 12:15
    until = steady_until(running, NOV, now, [SMALL, new_price], CEIL)
    assert until == utc(21, 12, 15)
    assert hours(running, now, [SMALL, new_price]) == [3, 1]  # 9:00-11:15, 11:15-12:00
    assert hours(running, until + US, [SMALL, new_price]) == [3, 2]


def test_exact_rounding_is_never_steady_while_a_line_runs() -> None:
    now = utc(21, 12, 30)
    assert steady_until([vm(utc(21, 9))], NOV, now, [SMALL], EXACT) == now
    assert steady_until([vm(utc(2), utc(3))], NOV, now, [SMALL], EXACT) == FOREVER


# Instants on and next to whole hours and the hours of the usages' starts, where the billed
# hours change, besides any instant.
near = st.builds(
    lambda day, hour, minute, shift: utc(day, hour, minute) + shift * US,
    st.integers(1, 30),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30]),
    st.sampled_from([-1, 0, 1, 250_000]),
)
instants = near | st.datetimes(
    min_value=datetime(2026, 10, 28), max_value=datetime(2026, 12, 2), timezones=st.just(UTC)
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Usage], list[Price], datetime]:
    """Usages as test_rating's, price rows as its too but of the usages' kinds and often coming
    in force around `now`, and `now`."""
    now = draw(instants)
    usage_list = draw(st.lists(usages(), max_size=5))
    around = st.builds(lambda m: now + m * timedelta(minutes=1), st.integers(-90, 90))
    kinds = [ENTITY_PRICE_KIND[u.entity_type] for u in usage_list] or list(PRICE_KINDS)
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(kinds))  # prices that rate the usages
        key = {"flavor": draw(st.sampled_from(["f-1", "m1.small"])), "volume": "ssd"}.get(
            kind, "default"
        )
        hourly, monthly = draw(money_rates), draw(st.none() | money_rates)
        since, scope = draw(st.none() | around | instants), draw(st.sampled_from([None, "p1"]))
        rows.append(Price(kind, key, hourly, monthly, "USD", since, scope))
    return usage_list, rows, now


@settings(max_examples=300)
@given(cases(), st.sampled_from([CEIL, EXACT]), st.floats(0, 1) | st.just(1.0))
@example(  # a price coming in force before the next whole hour: the line splits there
    ([vm(utc(21, 9))], [SMALL, replace(SMALL, hourly=Decimal("0.2"), since=utc(21, 12, 40))],
     utc(21, 12, 30)),
    CEIL,
    1.0,
)  # fmt: skip
def test_the_lines_at_any_instant_of_the_span_are_those_at_now_moved(
    case: tuple[list[Usage], list[Price], datetime], rules: RatingRules, where: float
) -> None:
    usage_list, prices, now = case
    until = steady_until(usage_list, NOV, now, prices, rules)
    assert until >= now
    if until == now:
        return
    span = min(until, NOV.end + timedelta(days=40)) - now
    # `where` picks an instant of the span [now, until): 1.0 is its last microsecond.
    later = now + max(timedelta(0), min(span * where, span - US)) if where < 1 else until - US
    if until == FOREVER:
        later = now + span * where
    expected = moved(lines_at(usage_list, now, prices, rules), now, later)
    assert lines_at(usage_list, later, prices, rules) == expected


@settings(max_examples=300)
@given(cases(), st.sampled_from([CEIL, EXACT]))
def test_the_lines_rated_already_give_the_same_span(
    case: tuple[list[Usage], list[Price], datetime], rules: RatingRules
) -> None:
    """Given the lines at `now` (as the running invoice has them), `steady_until` need not
    rate the usages again: the same `until`."""
    usage_list, prices, now = case
    ends = [(line.start, line.end) for line in lines_at(usage_list, now, prices, rules)]
    expected = steady_until(usage_list, NOV, now, prices, rules)
    assert steady_until(usage_list, NOV, now, prices, rules, ends) == expected
