"""The scheduler, driven by explicit times through start(now) and loop(now): no sleeps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from rintik_lite import invoices, scheduler
from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import RatingRules
from rintik_lite.errors import SettingsError
from rintik_lite.models import Invoice
from rintik_lite.scheduler import Scheduler, latest_due, next_due, parse_close_at
from tests.billing.trace import instance, utc
from tests.conftest import record, settings_for

P = "proj-a"
RULES = RatingRules()
ONE_MINUTE = timedelta(minutes=1)


def closed_periods() -> list[tuple[str, int]]:
    rows = Invoice.select().where(Invoice.state.in_(invoices.CLOSED_STATES))
    return sorted((r.period, r.number) for r in rows)


def running_since(at: datetime) -> None:
    """One instance, priced, running from `at` on."""
    record(instance("create.end", at, project=P, instance_id="i-1"), now=at)
    invoices.set_price("flavor", "m1.small", "0.10", currency="USD", now=at)


@pytest.mark.parametrize(
    ("now", "close_at", "latest", "following"),
    [
        # before 00:01 on the 1st, October is not due yet; September is
        (utc(2026, 11, 1, 0, 0, 59), "00:01", Period(2026, 9), utc(2026, 11, 1, 0, 1)),
        (utc(2026, 11, 1, 0, 1), "00:01", Period(2026, 10), utc(2026, 12, 1, 0, 1)),
        (utc(2026, 11, 15, 12), "00:01", Period(2026, 10), utc(2026, 12, 1, 0, 1)),
        (utc(2026, 12, 31, 23, 59), "00:01", Period(2026, 11), utc(2027, 1, 1, 0, 1)),
        (utc(2027, 1, 1, 6, 29), "06:30", Period(2026, 11), utc(2027, 1, 1, 6, 30)),
        (utc(2027, 1, 1, 6, 30), "06:30", Period(2026, 12), utc(2027, 2, 1, 6, 30)),
        (utc(2026, 3, 1), "00:00", Period(2026, 2), utc(2026, 4, 1)),
    ],
)
def test_due_times(now: datetime, close_at: str, latest: Period, following: datetime) -> None:
    offset = parse_close_at(close_at)
    assert latest_due(now, offset) == latest
    assert next_due(now, offset) == following


@pytest.mark.parametrize("text", ["1", "24:00", "12:60", "ab:cd", "12:5", ""])
def test_a_bad_close_time_is_a_settings_error(text: str) -> None:
    with pytest.raises(SettingsError, match=r"scheduler\.close_at"):
        parse_close_at(text)


def test_the_ended_month_closes_at_00_01_on_the_1st_and_not_before(db_url: str) -> None:
    running_since(utc(2026, 10, 3, 10))
    s = Scheduler(RULES)
    assert s.start(utc(2026, 10, 20)) == []  # nothing has ended
    assert s.next_run == utc(2026, 11, 1, 0, 1)
    assert s.loop(utc(2026, 10, 31, 23, 59)) == []
    assert s.loop(utc(2026, 11, 1, 0, 0, 59)) == []
    assert closed_periods() == []
    [closed] = s.loop(utc(2026, 11, 1, 0, 1))
    # Oct 3 10:00 -> Nov 1 = 686 h x 0.10 = 68.60
    assert (closed["period"], closed["number"], closed["total"]) == ("2026-10", 1, "68.60")
    assert s.next_run == utc(2026, 12, 1, 0, 1)
    assert s.loop(utc(2026, 11, 1, 0, 2)) == []  # not due again before December
    assert s.loop(utc(2026, 12, 1, 0, 1, 30))[0]["period"] == "2026-11"
    assert closed_periods() == [("2026-10", 1), ("2026-11", 2)]
    status = s.status()
    assert (status["next_run"], status["last_run"], status["invoices_closed"]) == (
        "2027-01-01T00:01:00Z",
        "2026-12-01T00:01:30Z",
        2,
    )


def test_after_three_months_down_it_catches_up_every_missed_month(db_url: str) -> None:
    running_since(utc(2026, 6, 10))
    invoices.close_invoices(None, utc(2026, 7, 1, 0, 1), RULES)  # June, before the downtime
    # Down from July 1 to October 14: July, August and September were never closed.
    s = Scheduler(RULES)
    closed = s.start(utc(2026, 10, 14, 9))
    assert [(d["period"], d["number"]) for d in closed] == [
        ("2026-07", 2),
        ("2026-08", 3),
        ("2026-09", 4),
    ]
    # July 744 h, August 744 h, September 720 h, each x 0.10
    assert [d["total"] for d in closed] == ["74.40", "74.40", "72.00"]
    assert s.next_run == utc(2026, 11, 1, 0, 1)
    assert s.loop(utc(2026, 10, 31)) == []


def test_started_on_the_1st_before_close_time_it_waits_for_it(db_url: str) -> None:
    running_since(utc(2026, 9, 10))
    s = Scheduler(RULES, close_at="06:00")
    # September's due time (Oct 1 06:00) has passed long ago: caught up at once
    assert [d["period"] for d in s.start(utc(2026, 11, 1, 5, 59))] == ["2026-09"]
    assert s.next_run == utc(2026, 11, 1, 6)  # October waits for 06:00
    assert s.loop(utc(2026, 11, 1, 5, 59, 59)) == []
    assert [d["period"] for d in s.loop(utc(2026, 11, 1, 6))] == ["2026-10"]


def test_a_disabled_scheduler_closes_nothing(db_url: str) -> None:
    running_since(utc(2026, 9, 10))
    s = Scheduler.from_settings(settings_for(db_url, scheduler__enabled=False))
    assert s.start(utc(2026, 11, 2)) == [] and s.loop(utc(2026, 12, 2)) == []
    assert s.status()["next_run"] is None
    assert closed_periods() == []


def test_a_failed_close_is_logged_and_retried(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    running_since(utc(2026, 10, 3))
    calls: list[datetime] = []

    def broken(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        calls.append(args[1])
        raise RuntimeError("database went away")

    s = Scheduler(RULES)
    s.start(utc(2026, 10, 30))
    monkeypatch.setattr(invoices, "close_invoices", broken)
    now = utc(2026, 11, 1, 0, 1)
    assert s.loop(now) == []
    assert s.status()["last_error"] == "RuntimeError: database went away"
    assert s.next_run == now + timedelta(seconds=scheduler.RETRY_SECONDS)
    monkeypatch.undo()
    assert s.loop(now + ONE_MINUTE) == []  # waits for the retry time
    assert [d["period"] for d in s.loop(s.next_run)] == ["2026-10"]
    assert s.status()["last_error"] is None and calls == [now]


def test_run_honours_stop_within_half_a_second(sqlite_url: str) -> None:
    s = Scheduler(RULES)
    stop = threading.Event()
    thread = threading.Thread(target=s.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while s.next_run is None and time.monotonic() < deadline:  # it called loop(now) once
        time.sleep(0.01)
    assert s.next_run is not None
    stopped_at = time.monotonic()
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 0.75
