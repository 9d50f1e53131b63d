"""Billing periods: calendar months in UTC, and clipping ledger intervals to them.

A period is the half-open interval ``[start, end)`` from the first day of a month at
00:00 UTC to the first day of the next month at 00:00 UTC. Nothing here reads the
clock: functions that care about the present take ``now``. Every datetime given must
be timezone-aware (a naive datetime raises ``ValueError``); every datetime returned is
in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

#: Years a period may have, chosen so that ``start``, ``end``, ``next()`` and
#: ``previous()`` of any valid period other than the two extremes stay representable.
MIN_YEAR = 1
MAX_YEAR = 9998

_PERIOD_TEXT = re.compile(r"(\d{4})-(\d{2})", re.ASCII)


def require_aware(value: datetime, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a timezone-aware datetime.

    ``name`` is the argument or field name used in the message.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month in UTC; periods order chronologically.

    >>> str(Period(2026, 11).next())
    '2026-12'
    """

    year: int
    month: int

    def __post_init__(self) -> None:
        """Reject months outside 1..12 and years outside MIN_YEAR..MAX_YEAR."""
        if not 1 <= self.month <= 12:
            raise ValueError(f"period month must be 1..12, got {self.month}")
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise ValueError(f"period year must be {MIN_YEAR}..{MAX_YEAR}, got {self.year}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read a period written ``YYYY-MM`` (e.g. ``"2026-11"``); ``ValueError`` otherwise."""
        match = _PERIOD_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(f"invalid period {text!r}: expected YYYY-MM, e.g. 2026-11")
        year, month = int(match.group(1)), int(match.group(2))
        try:
            return cls(year, month)
        except ValueError as exc:
            raise ValueError(f"invalid period {text!r}: {exc}") from None

    @classmethod
    def containing(cls, moment: datetime) -> Period:
        """The period that contains ``moment`` once converted to UTC (aware only)."""
        require_aware(moment, "moment")
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month)

    @property
    def start(self) -> datetime:
        """First instant of the period: the 1st of the month, 00:00 UTC (inclusive)."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """First instant after the period: the 1st of the next month, 00:00 UTC (exclusive)."""
        if self.month == 12:
            return datetime(self.year + 1, 1, 1, tzinfo=UTC)
        return datetime(self.year, self.month + 1, 1, tzinfo=UTC)

    def next(self) -> Period:
        """The following month."""
        if self.month == 12:
            return Period(self.year + 1, 1)
        return Period(self.year, self.month + 1)

    def previous(self) -> Period:
        """The preceding month."""
        if self.month == 1:
            return Period(self.year - 1, 12)
        return Period(self.year, self.month - 1)

    def __str__(self) -> str:
        """The ``YYYY-MM`` form that :meth:`parse` reads back."""
        return f"{self.year:04d}-{self.month:02d}"


def ended_periods(first: Period, now: datetime) -> list[Period]:
    """Every period from ``first`` up to, but excluding, the one containing ``now``.

    These are the months that are over and can be invoiced. Empty when ``first`` is
    the current period or later.
    """
    current = Period.containing(now)
    periods: list[Period] = []
    period = first
    while period < current:
        periods.append(period)
        period = period.next()
    return periods


def clip(
    start: datetime, end: datetime | None, period: Period, now: datetime
) -> tuple[datetime, datetime] | None:
    """Clip the ledger interval ``[start, end)`` to ``period`` and to ``now``.

    ``end=None`` means the interval is still open and is treated as ending at ``now``;
    a closed interval is also never counted beyond ``now``. Returns the clipped
    ``(start, end)`` in UTC, or ``None`` when the overlap is empty (an overlap of zero
    length counts as empty, so an interval ending exactly at ``period.start`` is None).
    """
    require_aware(start, "start")
    require_aware(now, "now")
    if end is not None:
        require_aware(end, "end")
    lower = max(start, period.start)
    upper = min(now if end is None else end, period.end, now)
    if upper <= lower:
        return None
    return lower.astimezone(UTC), upper.astimezone(UTC)
