"""`GET /api/invoice/<id>/` is answered from `rintik.INVOICE_ANSWERS` while nothing it is
shown from has changed and, for a running invoice, until the first instant its lines may
change (`rating.steady_until`): every change shows on the next read, a cached answer is
byte for byte the answer computed anew at the same instant, and the tenant check applies to
cached answers too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from webtest import TestApp

from rintik_lite import invoices
from rintik_lite.api import create_app, rintik
from rintik_lite.db import connect, database
from rintik_lite.ledger.notifications import format_time
from rintik_lite.models import Interval
from rintik_lite.settings import Settings
from tests.api.test_rintik import (
    OCTOBER,
    PA,
    PB,
    H,
    close_october,
    make_app,
    make_settings,
    october,
    rows,
    set_prices,
)
from tests.billing import trace
from tests.billing.trace import utc
from tests.conftest import NOW, record


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    rintik.INVOICE_ANSWERS.clear()
    yield
    rintik.INVOICE_ANSWERS.clear()


class Clock:
    """The API's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fresh(settings: Settings, invoice_id: int, now: datetime) -> bytes:
    """The answer computed anew at `now`, as the API computed it before it had a cache."""
    doc = invoices.show_invoice(invoice_id, now, invoices.rules_from(settings))
    return rintik.json_text(rintik.invoice_json(doc, now)).encode()


def hits() -> int:
    return rintik.ANSWER_COUNTS.hits


class Running:
    """Project A's running November invoice (its instance runs on from October, October is
    closed), read through the API at the clock's instants."""

    def __init__(self, db_url: str, **changes: str) -> None:
        self.settings = make_settings(db_url, billing__tax_percent="10", **changes)
        self.clock = Clock(NOW)
        self.app = TestApp(create_app(self.settings, clock=self.clock))
        set_prices(self.app)
        october()
        close_october(self.settings)
        rules = invoices.rules_from(self.settings)
        self.id = invoices.invoice_for(PA, OCTOBER.next(), NOW, rules)["id"]

    def read(self, now: datetime) -> bytes:
        """The answer at `now`, checked byte for byte against the answer computed anew."""
        self.clock.now = now
        body: bytes = self.app.get(f"/api/invoice/{self.id}/", headers=H).body
        assert body == fresh(self.settings, self.id, now), now
        return body

    def entry(self) -> Any:
        return rintik.INVOICE_ANSWERS.get(str(self.id).encode())


US = timedelta(microseconds=1)
HALF = timedelta(milliseconds=500)


def test_a_running_invoice_is_cached_until_its_next_whole_hour_and_always_exact(
    db_url: str,
) -> None:
    running = Running(db_url)
    start = utc(2026, 11, 21, 12, 0) + HALF
    body = json.loads(running.read(start))
    [instance] = body["instances"]
    assert (instance["end_date"], instance["adjusted_end_date"]) == (None, format_time(start))
    entry = running.entry()
    assert (entry.since, entry.until) == (start, utc(2026, 11, 21, 13))  # its next whole hour
    # Instants just before, at and after whole hours (the line started at a whole hour),
    # and in between, in order: each answer is the fresh one, most come from the cache.
    instants = sorted(
        utc(2026, 11, 21, hour) + shift
        for hour in (12, 13, 14)
        for shift in (-HALF, -US, timedelta(0), US, HALF, timedelta(minutes=17))
        if utc(2026, 11, 21, hour) + shift > start
    )
    before = hits()
    hours = set()
    for now in instants:
        hours.add(rows(json.loads(running.read(now)))[0]["hours"])
    assert hits() - before >= len(instants) // 2  # not only computed: served from cache
    assert hours == {"493", "494", "495"}  # the hours did change along the way


def test_a_running_invoice_follows_a_price_coming_in_force_and_the_month_end(
    db_url: str,
) -> None:
    running = Running(db_url)
    running.read(utc(2026, 11, 21, 12, 10))
    running.app.post_json(  # a new price of the flavor from 12:40
        "/api/price/flavor/",
        {"hourly_price": "0.20", "since": "2026-11-21T12:40:00Z", "flavor_id": "id-m1.small"},
        headers=H,
        status=201,
    )
    for now in (
        utc(2026, 11, 21, 12, 20),
        utc(2026, 11, 21, 12, 40) - US,
        utc(2026, 11, 21, 12, 40),
        utc(2026, 11, 21, 12, 40) + US,
        utc(2026, 11, 21, 12, 50),
    ):
        running.read(now)
    assert len(running.app.get(f"/api/invoice/{running.id}/", headers=H).json["instances"]) == 2
    before = hits()
    for now in (
        utc(2026, 11, 30, 23, 30),
        utc(2026, 11, 30, 23, 45),
        utc(2026, 12, 1) - US,
        utc(2026, 12, 1),
        utc(2026, 12, 1) + US,
        utc(2026, 12, 1, 0, 30),
        utc(2026, 12, 2, 8),
    ):
        running.read(now)
    assert hits() - before >= 2
    # November is over: its (unclosed) invoice no longer follows the clock.
    ended = running.app.get(f"/api/invoice/{running.id}/", headers=H).json
    assert {r["adjusted_end_date"] for r in ended["instances"]} <= {
        "2026-11-21T12:40:00Z",
        "2026-12-01T00:00:00Z",
    }
    assert ended["instances"][-1]["end_date"] == "2026-12-01T00:00:00Z"


def test_every_change_behind_a_running_invoice_shows_on_the_next_read(db_url: str) -> None:
    running = Running(db_url)
    now = utc(2026, 11, 21, 12, 5)
    first = running.read(now)
    now += timedelta(minutes=1)
    assert running.read(now) != first  # the end of the running line moved...
    assert hits() >= 1  # ...in the answer from the cache
    seen = [running.read(now)]

    def changed(cached: bool = True) -> None:
        before = hits()
        body = running.read(now)
        assert hits() == before  # computed anew
        assert body not in seen
        seen.append(body)
        assert running.read(now) == body
        assert hits() == before + cached  # then from the cache

    # The ledger: a late event of the project, this month.
    record(trace.instance("create.end", utc(2026, 11, 20), project=PA, instance_id="i-new"))
    changed()
    # The prices: the flavor's price changed from the beginning.
    app = running.app
    app.post_json(
        "/api/price/flavor/",
        {"hourly_price": "0.25", "since": None, "flavor_id": "id-m1.small"},
        headers=H,
        status=201,
    )
    changed()
    # A setting stored over the API: the tax.
    app.put_json("/api/settings/invoice_tax/", {"value": "20"}, headers=H)
    changed()
    assert json.loads(seen[-1])["tax_percent"] == "20"
    # An adjustment: a late event about closed October.
    record(trace.router("create.end", utc(2026, 10, 1), project=PA, router_id="r-late"))
    changed()
    assert sum(r["adjusts"] is not None for r in rows(json.loads(seen[-1]))) == 2
    # One whose resource began after October did: its line is shown with every interval of
    # the resource (see test_an_invoice_needing_every_interval_of_a_resource_is_not_cached).
    record(trace.router("create.end", utc(2026, 10, 20), project=PA, router_id="r-later"))
    changed(cached=False)
    # The tenant check applies to the cached answer.
    app.get(f"/api/invoice/{running.id}/", {"tenant_id": PB}, headers=H, status=404)
    assert app.get(f"/api/invoice/{running.id}/", {"tenant_id": PA}, headers=H).json["id"]


def test_exact_rounding_caches_a_running_invoice_only_when_nothing_runs(db_url: str) -> None:
    running = Running(db_url, billing__rounding="exact")
    running.read(utc(2026, 11, 21, 12, 0) + HALF)
    assert running.entry() is None  # its instance runs: every microsecond bills more
    running.read(utc(2026, 11, 21, 12, 0) + HALF + US)
    record(
        trace.instance(
            "delete.end",
            utc(2026, 11, 21, 9),
            project=PA,
            instance_id="i-a",
            launched=utc(2026, 10, 1),
            deleted=utc(2026, 11, 21, 9),
        )
    )
    running.read(utc(2026, 11, 21, 12, 30))
    assert running.entry() is not None  # nothing runs: the answer stays
    before = hits()
    running.read(utc(2026, 11, 21, 13, 30))
    assert hits() == before + 1


def read(app: TestApp, invoice_id: int, **params: str) -> Any:
    """Read twice (the second from the cache) and once more with an empty cache: all equal."""
    first = app.get(f"/api/invoice/{invoice_id}/", params, headers=H).json
    assert app.get(f"/api/invoice/{invoice_id}/", params, headers=H).json == first
    rintik.INVOICE_ANSWERS.clear()
    assert app.get(f"/api/invoice/{invoice_id}/", params, headers=H).json == first
    return first


def test_a_closed_invoice_follows_every_change_it_is_shown_from(db_url: str) -> None:
    settings = make_settings(db_url, billing__tax_percent="10")
    app = make_app(settings)
    set_prices(app)
    october()
    invoice = {d["project_id"]: d["id"] for d in close_october(settings)}[PA]

    doc = read(app, invoice)
    assert len(rintik.INVOICE_ANSWERS) == 1
    assert (doc["state_name"], doc["finish_date"]) == ("unpaid", None)
    [instance] = doc["instances"]
    assert (instance["name"], instance["monthly_price"]) == ("web", "50")

    # Its state: paid.
    app.post(f"/api/invoice/{invoice}/finish/", headers=H)
    assert read(app, invoice)["state_name"] == "finished"

    # The ledger: the instance renamed (an update event after the close).
    record(
        trace.instance("update", utc(2026, 11, 2), project=PA, instance_id="i-a", name="db"),
        now=utc(2026, 11, 2),
    )
    assert read(app, invoice)["instances"][0]["name"] == "db"

    # The prices: a new monthly cap for the flavor, in force from the beginning.
    app.post_json(
        "/api/price/flavor/",
        {"hourly_price": "0.10", "since": None, "flavor_id": "id-m1.small", "monthly_price": "40"},
        headers=H,
        status=201,
    )
    assert read(app, invoice)["instances"][0]["monthly_price"] == "40"
    assert [r["price_charged"] for r in rows(read(app, invoice))] == [
        r["price_charged"] for r in rows(doc)
    ]  # frozen amounts never change


def test_the_tenant_check_applies_to_a_cached_answer(db_url: str) -> None:
    settings = make_settings(db_url, billing__tax_percent="10")
    app = make_app(settings)
    set_prices(app)
    october()
    invoice = {d["project_id"]: d["id"] for d in close_october(settings)}[PA]
    assert app.get(f"/api/invoice/{invoice}/", headers=H).json["tenant_id"] == PA
    assert len(rintik.INVOICE_ANSWERS) == 1
    refused = app.get(f"/api/invoice/{invoice}/", {"tenant_id": PB}, headers=H, status=404)
    assert refused.json == {"error": f"invoice {invoice} is not an invoice of project {PB}"}
    assert app.get(f"/api/invoice/{invoice}/", {"tenant_id": PA}, headers=H).json["id"] == invoice
    assert app.get("/api/invoice/99999/", headers=H, status=404).json == {
        "error": "invoice 99999 does not exist"
    }
    assert app.get(f"/api/invoice/{2**40}/", headers=H, status=404).json["error"]


def test_an_invoice_needing_every_interval_of_a_resource_is_not_cached(db_url: str) -> None:
    """A line none of the project's intervals around the lines contains (here: its interval
    moved to another project) reads every interval of its resource: not in the digest, so
    such an answer is computed each time."""
    settings = make_settings(db_url, billing__tax_percent="10")
    app = make_app(settings)
    set_prices(app)
    october()
    invoice = {d["project_id"]: d["id"] for d in close_october(settings)}[PA]
    Interval.update(project_id="elsewhere").where(Interval.entity_id == "i-a").execute()
    doc = app.get(f"/api/invoice/{invoice}/", headers=H).json
    assert doc["instances"][0]["name"] == "web"
    assert len(rintik.INVOICE_ANSWERS) == 0
    Interval.update(name="moved").where(Interval.entity_id == "i-a").execute()
    assert app.get(f"/api/invoice/{invoice}/", headers=H).json["instances"][0]["name"] == "moved"


def test_a_change_committed_by_another_connection_shows_on_the_next_read(
    db_url: str,
) -> None:
    """Another process's write (the collector's, the CLI's): on SQLite the answers found up
    to date under this connection's token are checked again once it has committed."""
    running = Running(db_url)
    now = utc(2026, 11, 21, 12, 10)
    body = running.read(now)
    before = hits()
    assert running.read(now) == body and hits() == before + 1
    other = connect(db_url)  # a connection of its own
    mark = "?" if db_url.startswith("sqlite") else "%s"
    try:
        with other.atomic():
            other.execute_sql(
                f'UPDATE "interval" SET "name" = {mark} WHERE "entity_id" = {mark}',
                ("renamed", "i-a"),
            )
    finally:
        other.close()
    changed = running.read(now)
    assert json.loads(changed)["instances"][0]["name"] == "renamed"
    assert running.read(now) == changed


def test_a_table_made_anew_on_the_same_connection_shows_on_the_next_read(db_url: str) -> None:
    """A schema change counts no row: the schema's version is part of the token."""
    settings = make_settings(db_url, billing__tax_percent="10")
    app = make_app(settings)
    set_prices(app)
    october()
    invoice = {d["project_id"]: d["id"] for d in close_october(settings)}[PA]
    assert read(app, invoice)["instances"][0]["name"] == "web"
    app.get(f"/api/invoice/{invoice}/", headers=H)  # kept as up to date under the token
    database.execute_sql('ALTER TABLE "interval" RENAME TO "interval_before"')
    database.execute_sql('CREATE TABLE "interval" AS SELECT * FROM "interval_before" WHERE 1 = 0')
    doc = app.get(f"/api/invoice/{invoice}/", headers=H).json
    assert doc["instances"][0]["name"] is None
    assert doc == fresh_doc(settings, invoice)


def fresh_doc(settings: Settings, invoice_id: int) -> Any:
    return json.loads(fresh(settings, invoice_id, NOW))


def test_a_commit_is_seen_by_every_server_thread(db_url: str) -> None:
    """Answers checked in one thread are taken as up to date in another only until some
    connection commits: each thread then sees the change on its next read, whichever
    thread read since."""
    running = Running(db_url)
    now = utc(2026, 11, 21, 12, 10)
    with ThreadPoolExecutor(max_workers=1) as pool:  # a second server thread

        def read_here() -> bytes:
            return running.read(now)

        def read_there() -> bytes:
            return pool.submit(running.read, now).result()

        body = running.read(now)
        assert read_there() == body
        before = hits()
        assert running.read(now) == read_there() == body
        assert hits() == before + 2
        for name, first, second in (
            ("renamed", read_here, read_there),
            ("again", read_there, read_here),
        ):
            rename(db_url, name)
            assert json.loads(first())["instances"][0]["name"] == name
            assert json.loads(second())["instances"][0]["name"] == name
        pool.submit(database.close).result()


def rename(db_url: str, name: str) -> None:
    """Rename instance i-a over a connection of its own (another process's)."""
    other = connect(db_url)
    mark = "?" if db_url.startswith("sqlite") else "%s"
    try:
        with other.atomic():
            other.execute_sql(
                f'UPDATE "interval" SET "name" = {mark} WHERE "entity_id" = {mark}',
                (name, "i-a"),
            )
    finally:
        other.close()


def test_an_answer_holding_the_mark_of_now_is_not_kept(db_url: str) -> None:
    """The mark written where `now` goes is random; were a stored text the mark (a name),
    the answer would not be split, nor kept."""
    running = Running(db_url)
    record(
        trace.instance(
            "create.end", utc(2026, 11, 20), project=PA, instance_id="i-m", name=rintik._NOW
        )
    )
    body = running.read(utc(2026, 11, 21, 12, 10))
    assert rintik._NOW in body.decode()
    assert running.entry() is None
    assert running.read(utc(2026, 11, 21, 12, 11)) != body
