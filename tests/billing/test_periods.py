"""Calendar-month periods and interval clipping: case tables plus properties."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rintik_lite.billing.periods import Period, clip, ended_periods

PLUS_2 = timezone(timedelta(hours=2))
MINUS_5 = timezone(timedelta(hours=-5))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11", Period(2026, 11)),
        ("2026-01", Period(2026, 1)),
        ("2026-12", Period(2026, 12)),
        ("0001-01", Period(1, 1)),
    ],
)
def test_parse_reads_yyyy_mm(text: str, expected: Period) -> None:
    assert Period.parse(text) == expected
    assert str(Period.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "month must be 1..12"),
        ("2026-00", "month must be 1..12"),
        ("2026-1", "expected YYYY-MM"),
        ("26-11", "expected YYYY-MM"),
        ("2026/11", "expected YYYY-MM"),
        ("2026-11-01", "expected YYYY-MM"),
        (" 2026-11", "expected YYYY-MM"),
        ("", "expected YYYY-MM"),
        ("\uff12\uff10\uff12\uff16-11", "expected YYYY-MM"),  # full-width digits: not ASCII
        ("0000-05", "year must be"),
    ],
)
def test_parse_rejects_bad_text_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Period.parse(text)
    assert repr(text) in str(info.value)


def test_str_pads_year_and_month() -> None:
    assert str(Period(2026, 3)) == "2026-03"
    assert str(Period(987, 3)) == "0987-03"


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        (Period(2026, 11), utc(2026, 11, 1), utc(2026, 12, 1)),
        (Period(2026, 12), utc(2026, 12, 1), utc(2027, 1, 1)),
        (Period(2028, 2), utc(2028, 2, 1), utc(2028, 3, 1)),
    ],
)
def test_start_and_end_are_utc_month_bounds(period: Period, start: datetime, end: datetime) -> None:
    assert period.start == start
    assert period.end == end
    assert period.start.tzinfo is UTC
    assert period.end.tzinfo is UTC


def test_leap_february_is_29_days() -> None:
    assert Period(2028, 2).end - Period(2028, 2).start == timedelta(days=29)
    assert Period(2026, 2).end - Period(2026, 2).start == timedelta(days=28)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 11, 1), Period(2026, 11)),
        (utc(2026, 11, 30, 23, 59, 59, 999999), Period(2026, 11)),
        # 01:00 at +02:00 is 23:00 UTC the day before: still November.
        (datetime(2026, 12, 1, 1, 0, tzinfo=PLUS_2), Period(2026, 11)),
        # 20:00 at -05:00 on 30 Nov is 01:00 UTC on 1 Dec.
        (datetime(2026, 11, 30, 20, 0, tzinfo=MINUS_5), Period(2026, 12)),
    ],
)
def test_containing_converts_to_utc(moment: datetime, expected: Period) -> None:
    assert Period.containing(moment) == expected


def test_containing_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Period.containing(datetime(2026, 11, 5))


@pytest.mark.parametrize(
    ("period", "following"),
    [
        (Period(2026, 11), Period(2026, 12)),
        (Period(2026, 12), Period(2027, 1)),
        (Period(2027, 1), Period(2027, 2)),
    ],
)
def test_next_and_previous(period: Period, following: Period) -> None:
    assert period.next() == following
    assert following.previous() == period


def test_periods_order_chronologically() -> None:
    assert Period(2026, 12) < Period(2027, 1)
    assert Period(2026, 2) < Period(2026, 10)
    assert sorted([Period(2027, 1), Period(2026, 10), Period(2026, 2)]) == [
        Period(2026, 2),
        Period(2026, 10),
        Period(2027, 1),
    ]


@pytest.mark.parametrize(
    ("first", "now", "expected"),
    [
        (
            Period(2026, 10),
            utc(2027, 1, 15),
            ["2026-10", "2026-11", "2026-12"],
        ),
        # The first instant of a month makes the previous month ended.
        (Period(2026, 11), utc(2026, 12, 1), ["2026-11"]),
        (Period(2026, 11), utc(2026, 11, 30, 23, 59), []),
        (Period(2027, 3), utc(2026, 11, 30), []),
    ],
)
def test_ended_periods(first: Period, now: datetime, expected: list[str]) -> None:
    assert [str(period) for period in ended_periods(first, now)] == expected


NOV = Period(2026, 11)


@pytest.mark.parametrize(
    ("start", "end", "now", "expected"),
    [
        # Inside the month, closed, before now: unchanged.
        (
            utc(2026, 11, 3),
            utc(2026, 11, 4),
            utc(2026, 12, 5),
            (utc(2026, 11, 3), utc(2026, 11, 4)),
        ),
        # Starts in October: clipped to 1 Nov.
        (
            utc(2026, 10, 20),
            utc(2026, 11, 2),
            utc(2026, 12, 5),
            (utc(2026, 11, 1), utc(2026, 11, 2)),
        ),
        # Ends in December: clipped to 1 Dec.
        (
            utc(2026, 11, 29),
            utc(2026, 12, 3),
            utc(2026, 12, 5),
            (utc(2026, 11, 29), utc(2026, 12, 1)),
        ),
        # Open interval: ends at now.
        (utc(2026, 11, 20), None, utc(2026, 11, 21, 9), (utc(2026, 11, 20), utc(2026, 11, 21, 9))),
        # Open interval, now after the month: ends at the month's end.
        (utc(2026, 11, 20), None, utc(2027, 1, 1), (utc(2026, 11, 20), utc(2026, 12, 1))),
        # Closed interval ending after now: never counted beyond now.
        (
            utc(2026, 11, 20),
            utc(2026, 11, 25),
            utc(2026, 11, 22),
            (utc(2026, 11, 20), utc(2026, 11, 22)),
        ),
        # Touches the month only at its start: zero length, empty.
        (utc(2026, 10, 20), utc(2026, 11, 1), utc(2026, 12, 5), None),
        # Starts at the month's end: empty.
        (utc(2026, 12, 1), None, utc(2026, 12, 5), None),
        # Starts after now: empty.
        (utc(2026, 11, 25), None, utc(2026, 11, 22), None),
        # Zero-length interval: empty.
        (utc(2026, 11, 5), utc(2026, 11, 5), utc(2026, 12, 5), None),
        # Now before the period: empty.
        (utc(2026, 10, 5), None, utc(2026, 10, 30), None),
    ],
)
def test_clip(
    start: datetime,
    end: datetime | None,
    now: datetime,
    expected: tuple[datetime, datetime] | None,
) -> None:
    assert clip(start, end, NOV, now) == expected


def test_clip_returns_utc_from_other_offsets() -> None:
    clipped = clip(
        datetime(2026, 11, 3, 2, 0, tzinfo=PLUS_2),
        datetime(2026, 11, 3, 6, 0, tzinfo=PLUS_2),
        NOV,
        utc(2026, 12, 5),
    )
    assert clipped == (utc(2026, 11, 3, 0), utc(2026, 11, 3, 4))
    assert clipped is not None
    assert clipped[0].tzinfo is UTC
    assert clipped[1].tzinfo is UTC


def test_clip_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="start must be a timezone-aware"):
        clip(datetime(2026, 11, 3), None, NOV, utc(2026, 12, 1))
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        clip(utc(2026, 11, 3), None, NOV, datetime(2026, 12, 1))


periods = st.builds(Period, st.integers(1900, 2200), st.integers(1, 12))
moments = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2200, 12, 30),
    timezones=st.sampled_from([UTC, PLUS_2, MINUS_5]),
)


@given(periods)
def test_str_and_parse_round_trip(period: Period) -> None:
    assert Period.parse(str(period)) == period


@given(periods)
def test_next_is_contiguous_and_inverse_of_previous(period: Period) -> None:
    assert period.next().start == period.end
    assert period.next().previous() == period
    assert period.previous().next() == period
    assert period < period.next()


@given(moments)
def test_containing_period_holds_the_moment(moment: datetime) -> None:
    period = Period.containing(moment)
    assert period.start <= moment < period.end


@given(moments, moments, moments)
def test_clip_stays_inside_period_interval_and_now(
    start: datetime, end: datetime, now: datetime
) -> None:
    period = Period.containing(start)
    clipped = clip(start, end, period, now)
    overlaps = start < end and start < now and period.start < end and period.start < now
    if not overlaps:
        assert clipped is None
        return
    assert clipped is not None
    lower, upper = clipped
    assert lower < upper
    assert lower == start  # start lies in its own period, so it is never moved
    assert upper <= end and upper <= now and upper <= period.end
    assert upper in (end, now, period.end)
