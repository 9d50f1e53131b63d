"""The scheduler thread of `rintik-lite run`: it closes each month once it has ended.

A period is due for closing at `[scheduler] close_at` UTC on the 1st of the next month
(00:01 by default). `start(now)` catches up: it closes every period already due that is not
closed yet (months missed while the service was down), then sets `next_run`.
`loop(now)` closes what is due when `now` has reached `next_run`. Neither reads the clock
nor sleeps; only `run(stop)`, the thread's body, does: it calls `loop` with the current
time at most every 30 s and returns within 0.5 s of `stop` being set.

Closing is `invoices.close_invoices`, idempotent and safe to run beside a manual
`rintik-lite invoice close` or a second process. A failure is logged and retried after
`RETRY_SECONDS`; the thread keeps going.

Several `run` processes on one PostgreSQL database (competing consumers of one queue) close
invoices from one of them only: `run` closes only while it holds the `LeaderLock`.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import peewee

from rintik_lite import invoices
from rintik_lite.billing.periods import Period, require_aware
from rintik_lite.billing.rating import RatingRules
from rintik_lite.db import close_database, connect
from rintik_lite.errors import SettingsError
from rintik_lite.ledger.notifications import format_time
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

#: Longest interval between two calls of `loop` from `run`.
LOOP_SECONDS = 30.0
#: How often `run` looks at its stop flag.
STOP_POLL_SECONDS = 0.5
#: Wait after a failed close before trying again.
RETRY_SECONDS = 300


def parse_close_at(text: str) -> timedelta:
    """`HH:MM` -> the offset after midnight UTC; SettingsError otherwise."""
    hours, _, minutes = text.partition(":")
    if not (
        hours.isdigit()
        and minutes.isdigit()
        and len(minutes) == 2
        and int(hours) < 24
        and int(minutes) < 60
    ):
        raise SettingsError(f"bad value for scheduler.close_at: {text!r} is not HH:MM")
    return timedelta(hours=int(hours), minutes=int(minutes))


def due_at(period: Period, close_at: timedelta) -> datetime:
    """When `period` is due for closing: `close_at` after its end (the 1st of next month)."""
    return period.end + close_at


def latest_due(now: datetime, close_at: timedelta) -> Period:
    """The latest period due for closing at `now` (the last month, or the one before it
    while the 1st has not reached `close_at`)."""
    require_aware(now, "now")
    last = Period.containing(now).previous()
    return last if due_at(last, close_at) <= now else last.previous()


def next_due(now: datetime, close_at: timedelta) -> datetime:
    """The first closing instant strictly after `now`."""
    require_aware(now, "now")
    last = Period.containing(now).previous()
    due = due_at(last, close_at)
    return due if due > now else due_at(last.next(), close_at)


class LeaderLock:
    """Which `run` process closes invoices when several share one PostgreSQL database.

    A session advisory lock, keyed by the schema (rintik-lite instances in other schemas of
    the same database do not compete), taken on a connection of its own and held for the
    life of the process. Whoever holds it is the leader; the others stand by and ask again
    at each loop, so that one of them takes over once the leader's connection is gone.
    SQLite is one machine's database: there, every process is the leader.
    """

    SQL = (
        "SELECT pg_try_advisory_lock(hashtext('rintik-lite scheduler'), "
        "hashtext(coalesce(current_schema(), '')))"
    )
    UNLOCK = SQL.replace("pg_try_advisory_lock", "pg_advisory_unlock")

    def __init__(self, url: str) -> None:
        self.url = url
        self.shared = urlparse(url).scheme in ("postgres", "postgresql")
        self._db: peewee.Database | None = None
        self.held = False

    def acquire(self) -> bool:
        """True while this process holds the lock (taking it when it is free)."""
        if not self.shared:
            return True
        try:
            if self._db is None:
                self._db = connect(self.url)
            if self._db.is_closed():
                self.held = False  # a new session holds nothing yet
                self._db.connect()
            if self.held:
                self._db.execute_sql("SELECT 1")  # the session, hence the lock, is still ours
            else:
                self.held = bool(self._db.execute_sql(self.SQL).fetchone()[0])
        except peewee.PeeweeException as exc:
            log.warning("scheduler leader lock: %s", exc)
            self.release()
        return self.held

    def release(self) -> None:
        """Give the lock up, then close its session; safe to call twice. Unlocked first:
        closing alone frees the lock only once the server has seen the session end, and
        a standby asking at once could still find it taken."""
        held, self.held = self.held, False
        if self._db is None or self._db.is_closed():
            return
        if held:
            with suppress(peewee.PeeweeException):
                self._db.execute_sql(self.UNLOCK)
        with suppress(peewee.PeeweeException):
            self._db.close()


class Scheduler:
    """Closes ended months: `start(now)` once, then `loop(now)` as often as wished."""

    def __init__(
        self,
        rules: RatingRules,
        close_at: str = "00:01",
        enabled: bool = True,
        leader: LeaderLock | None = None,
    ) -> None:
        self.rules = rules
        self.close_at = parse_close_at(close_at)
        self.enabled = enabled
        self.leader = leader
        self.is_leader: bool | None = None
        self.next_run: datetime | None = None
        self.last_run: datetime | None = None
        self.last_error: str | None = None
        self.closed_count = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Scheduler:
        return cls(
            invoices.rules_from(settings),
            settings["scheduler.close_at"],
            settings["scheduler.enabled"],
            LeaderLock(settings["database.url"]),
        )

    def start(self, now: datetime) -> list[dict[str, Any]]:
        """Catch up: close every period already due and not closed; set `next_run`."""
        require_aware(now, "now")
        if not self.enabled:
            return []
        return self._close(now)

    def loop(self, now: datetime) -> list[dict[str, Any]]:
        """Close what is due when `now` has reached `next_run`; return the invoices closed."""
        require_aware(now, "now")
        if not self.enabled:
            return []
        if self.next_run is None:
            return self.start(now)
        if now < self.next_run:
            return []
        return self._close(now)

    def _close(self, now: datetime) -> list[dict[str, Any]]:
        through = latest_due(now, self.close_at)
        self.last_run = now
        try:
            closed = invoices.close_invoices(None, now, self.rules, through=through)
        except Exception as exc:  # keep going: the next attempt closes what this one missed
            log.exception("closing invoices through %s failed; retrying later", through)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.next_run = now + timedelta(seconds=RETRY_SECONDS)
            return []
        self.last_error = None
        self.closed_count += len(closed)
        self.next_run = next_due(now, self.close_at)
        if closed:
            log.info("closed %d invoices through %s", len(closed), through)
        return closed

    def status(self) -> dict[str, Any]:
        """For `/healthz`: whether it runs, when it runs next, and how the last run went."""
        return {
            "enabled": self.enabled,
            "next_run": format_time(self.next_run) if self.next_run else None,
            "last_run": format_time(self.last_run) if self.last_run else None,
            "last_error": self.last_error,
            "invoices_closed": self.closed_count,
            "leader": self.is_leader,
        }

    def run(self, stop: threading.Event) -> None:
        """The thread's body: `loop(now)` at most every LOOP_SECONDS until `stop` is set."""
        if not self.enabled:
            log.info("scheduler disabled ([scheduler] enabled = false)")
            return
        last_call: float | None = None
        try:
            while not stop.is_set():
                if last_call is None or time.monotonic() - last_call >= LOOP_SECONDS:
                    last_call = time.monotonic()
                    if self._lead():
                        self.loop(datetime.now(UTC))
                stop.wait(STOP_POLL_SECONDS)
        finally:
            if self.leader is not None:
                self.leader.release()
            close_database()  # this thread's connection

    def _lead(self) -> bool:
        """Whether this process closes invoices now (see LeaderLock); logs each change."""
        leading = self.leader is None or self.leader.acquire()
        if leading != self.is_leader:
            log.info(
                "this process closes invoices (scheduler leader)"
                if leading
                else "another process closes invoices; this scheduler stands by"
            )
        self.is_leader = leading
        return leading
