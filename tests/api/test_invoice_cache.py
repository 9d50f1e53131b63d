"""`GET /api/invoice/<id>/` of a closed invoice is answered from `rintik.CLOSED_INVOICES`
while nothing it is shown from has changed: every change shows on the next read, a cached
answer equals a fresh one, and the tenant check applies to cached answers too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from webtest import TestApp

from rintik_lite import invoices
from rintik_lite.api import rintik
from rintik_lite.models import Interval
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
    rintik.CLOSED_INVOICES.clear()
    yield
    rintik.CLOSED_INVOICES.clear()


def read(app: TestApp, invoice_id: int, **params: str) -> Any:
    """Read twice (the second from the cache) and once more with an empty cache: all equal."""
    first = app.get(f"/api/invoice/{invoice_id}/", params, headers=H).json
    assert app.get(f"/api/invoice/{invoice_id}/", params, headers=H).json == first
    rintik.CLOSED_INVOICES.clear()
    assert app.get(f"/api/invoice/{invoice_id}/", params, headers=H).json == first
    return first


def test_a_closed_invoice_follows_every_change_it_is_shown_from(db_url: str) -> None:
    settings = make_settings(db_url, billing__tax_percent="10")
    app = make_app(settings)
    set_prices(app)
    october()
    invoice = {d["project_id"]: d["id"] for d in close_october(settings)}[PA]

    doc = read(app, invoice)
    assert len(rintik.CLOSED_INVOICES) == 1
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
    assert len(rintik.CLOSED_INVOICES) == 1
    refused = app.get(f"/api/invoice/{invoice}/", {"tenant_id": PB}, headers=H, status=404)
    assert refused.json == {"error": f"invoice {invoice} is not an invoice of project {PB}"}
    assert app.get(f"/api/invoice/{invoice}/", {"tenant_id": PA}, headers=H).json["id"] == invoice
    assert app.get("/api/invoice/99999/", headers=H, status=404).json == {
        "error": "invoice 99999 does not exist"
    }
    assert app.get(f"/api/invoice/{2**40}/", headers=H, status=404).json["error"]


def test_running_invoices_are_never_cached(db_url: str) -> None:
    settings = make_settings(db_url, billing__tax_percent="10")
    app = make_app(settings)
    set_prices(app)
    october()
    close_october(settings)
    running = invoices.invoice_for(PA, OCTOBER.next(), NOW, invoices.rules_from(settings))
    assert app.get(f"/api/invoice/{running['id']}/", headers=H).json["state_name"] == (
        "in_progress"
    )
    assert len(rintik.CLOSED_INVOICES) == 0


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
    assert len(rintik.CLOSED_INVOICES) == 0
    Interval.update(name="moved").where(Interval.entity_id == "i-a").execute()
    assert app.get(f"/api/invoice/{invoice}/", headers=H).json["instances"][0]["name"] == "moved"
