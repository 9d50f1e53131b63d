"""Rintik's API under /api/, called in-process (webtest) on real SQLite and PostgreSQL.

The acceptance: a month of notifications for three projects, closed with
`invoices.close_invoices`, reads back through /api/invoice/ with every amount equal to
`rintik-lite invoice show ID --format json`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from webtest import TestApp

from rintik_lite import invoices
from rintik_lite.api import create_app
from rintik_lite.billing.periods import Period
from rintik_lite.billing.rating import RatingRules
from rintik_lite.cli import app as cli_app
from rintik_lite.models import Event, Price
from rintik_lite.settings import Settings
from tests.billing import trace
from tests.billing.trace import utc
from tests.conftest import NOW, record, settings_for

TOKEN = "rintik-token-51d0"
H = {"X-Auth-Token": TOKEN}
PA, PB, PC = "project-a", "project-b", "project-c"
OCTOBER = Period(2026, 10)
NOW_ISO = "2026-11-21T12:00:00Z"
LABELS = ["instances", "volumes", "floating_ips", "routers", "snapshots", "images"]


def make_settings(db_url: str, **changes: Any) -> Settings:
    return settings_for(db_url, auth__private_key=TOKEN, **changes)


def make_app(settings: Settings) -> TestApp:
    return TestApp(create_app(settings, clock=lambda: NOW))


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, billing__tax_percent="10")


@pytest.fixture
def app(settings: Settings) -> TestApp:
    return make_app(settings)


def price(app: TestApp, kind: str, hourly: str, status: int = 201, **fields: Any) -> Any:
    body = {"hourly_price": hourly, "since": None, **fields}
    return app.post_json(f"/api/price/{kind}/", body, headers=H, status=status).json


def set_prices(app: TestApp) -> None:
    price(app, "flavor", "0.10", flavor_id="id-m1.small", monthly_price="50")
    price(app, "flavor", "0.40", flavor_id="id-m1.large")
    price(app, "volume", "0.001", volume_type_id="vt-ssd")
    price(app, "snapshot", "0.0005")
    price(app, "image", "0.0002")
    price(app, "floating_ip", "0.005")
    price(app, "router", "0.01")


def october() -> None:
    """Every resource type across three projects; some run on into November."""
    record(
        trace.instance("create.end", utc(2026, 10, 1), project=PA, instance_id="i-a"),
        trace.volume("create.end", utc(2026, 10, 5), project=PA, volume_id="v-a", size=10),
        trace.volume("delete.end", utc(2026, 10, 15), project=PA, volume_id="v-a"),
        trace.floating_ip("create.end", utc(2026, 10, 1), project=PB, fip_id="f-b"),
        trace.floating_ip("delete.end", utc(2026, 10, 11), project=PB, fip_id="f-b"),
        trace.router("create.end", utc(2026, 10, 2), project=PB, router_id="r-b"),
        trace.snapshot("create.end", utc(2026, 10, 10), project=PC, snapshot_id="s-c", size=5),
        trace.image("activate", utc(2026, 10, 20), project=PC, image_id="g-c", size_bytes=3 << 30),
        trace.instance(
            "create.end", utc(2026, 10, 31), project=PC, instance_id="i-c", flavor="m1.large"
        ),
        trace.instance(
            "delete.end",
            utc(2026, 10, 31, 10, 30),
            project=PC,
            instance_id="i-c",
            flavor="m1.large",
            launched=utc(2026, 10, 31),
            deleted=utc(2026, 10, 31, 10, 30),
        ),
    )


def close_october(settings: Settings) -> list[dict[str, Any]]:
    return invoices.close_invoices(OCTOBER, NOW, invoices.rules_from(settings))


def cli_show(tmp_path: Path, db_url: str, invoice_id: int) -> Any:
    config = tmp_path / "rintik.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[billing]\ntax_percent = "10"\n')
    result = CliRunner().invoke(
        cli_app, ["invoice", "show", str(invoice_id), "--format", "json", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The component rows of an API invoice, in the invoice's line order."""
    return sorted((row for label in LABELS for row in doc[label]), key=lambda r: r["id"])


# --- prices --------------------------------------------------------------------------------


def test_price_create_supersede_and_list(app: TestApp) -> None:
    created = app.post_json(
        "/api/price/flavor/",
        {"flavor_id": "id-m1.small", "hourly_price": "0.10", "monthly_price": 50},
        headers=H,
        status=201,
    ).json
    first = created["id"]
    assert created == {
        "id": first,
        "hourly_price": "0.10",
        "hourly_price_currency": "USD",
        "monthly_price": "50",
        "monthly_price_currency": "USD",
        "flavor_id": "id-m1.small",
        "project_id": None,
        "since": NOW_ISO,
        "created_at": NOW_ISO,
        "updated_at": NOW_ISO,
    }
    # A JSON number is read exactly (never through a float).
    put = app.put_json(
        f"/api/price/flavor/{first}/", {"hourly_price": 0.2}, headers=H, status=200
    ).json
    assert (put["hourly_price"], put["monthly_price"], put["since"]) == ("0.2", None, NOW_ISO)
    assert put["id"] > first
    patched = app.patch_json(
        f"/api/price/flavor/{put['id']}/", {"monthly_price": "40.5"}, headers=H
    ).json
    assert (patched["hourly_price"], patched["monthly_price"]) == ("0.2", "40.5")
    router = price(app, "router", "0.01", project_id=PA)
    assert (router["since"], router["project_id"], "flavor_id" in router) == (None, PA, False)

    listed = app.get("/api/price/flavor/", headers=H).json
    assert [r["id"] for r in listed] == [patched["id"]]
    history = app.get("/api/price/flavor/", {"history": "true"}, headers=H).json
    assert [r["id"] for r in history] == [first, put["id"], patched["id"]]
    assert app.get(f"/api/price/flavor/{first}/", headers=H).json == created
    # Rows are never edited or deleted.
    assert Price.select().count() == 4
    gone = app.delete(f"/api/price/flavor/{first}/", headers=H, status=405).json
    assert gone["error"].startswith("prices are never deleted")
    assert Price.select().count() == 4


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("post", "/api/price/volume/", {"hourly_price": "1"}, 400, "volume_type_id is required"),
        ("post", "/api/price/router/", {"hourly_price": "1", "flavor_id": "x"}, 400,
         "flavor_id: router prices have no such key"),
        ("post", "/api/price/router/", {"hourly_price": "-1"}, 400, "hourly_price must be"),
        ("post", "/api/price/router/", {"hourly_price": "1e3"}, 400, "hourly_price must be"),
        ("post", "/api/price/router/", {"hourly_price": True}, 400, "hourly_price must be"),
        ("post", "/api/price/router/", {"hourly_price": "1", "cost": 1}, 400,
         "unknown field cost"),
        ("post", "/api/price/router/", {"hourly_price": "1", "hourly_price_currency": "E"},
         400, "hourly_price_currency must be"),
        ("post", "/api/price/gpu/", {"hourly_price": "1"}, 404, "unknown price kind 'gpu'"),
        ("get", "/api/price/router/99/", None, 404, "router price 99 does not exist"),
        ("get", "/api/price/router/?history=maybe", None, 400, "history must be true or false"),
    ],
)  # fmt: skip
def test_bad_price_requests(
    app: TestApp, method: str, path: str, body: Any, status: int, error: str
) -> None:
    if body is None:
        response = app.get(path, headers=H, status=status)
    else:
        response = app.post_json(path, body, headers=H, status=status)
    assert error in response.json["error"]


def test_an_update_keeps_kind_key_and_project(app: TestApp) -> None:
    row = price(app, "volume", "0.001", volume_type_id="vt-ssd")
    path = f"/api/price/volume/{row['id']}/"
    wrong = app.put_json(
        path, {"hourly_price": "1", "volume_type_id": "hdd"}, headers=H, status=400
    )
    assert "an update keeps the row's volume_type_id (vt-ssd)" in wrong.json["error"]
    since = app.patch_json(path, {"since": None}, headers=H, status=400)
    assert "since: an update is in force from now" in since.json["error"]
    assert app.put_json(path, {}, headers=H, status=400).json == {
        "error": "hourly_price is required"
    }
    assert app.delete("/api/price/volume/777/", headers=H, status=404).json == {
        "error": "volume price 777 does not exist"
    }


# --- invoices: the acceptance --------------------------------------------------------------


def test_closed_invoices_read_back_equal_to_the_cli(
    app: TestApp, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    set_prices(app)
    october()
    closed = close_october(settings)
    assert [(c["project_id"], c["total"]) for c in closed] == [
        (PA, "57.64"),  # 50.00 (744 h capped at 50) + 2.40 (240 h x 10 GB), tax 10 %
        (PB, "9.24"),  # 1.20 (240 h) + 7.20 (720 h), tax 0.84
        (PC, "6.48"),  # 1.32 (528 h x 5 GB) + 0.17 (288 h x 3 GB) + 4.40 (11 h), tax 0.59
    ]
    for summary in closed:
        project = summary["project_id"]
        listed = app.get("/api/invoice/", {"tenant_id": project}, headers=H).json
        # Newest first: the running November invoice, then October's.
        assert [(d["period"], d["state"], d["state_name"]) for d in listed][-1] == (
            "2026-10",
            2,
            "unpaid",
        )
        api = app.get(f"/api/invoice/{summary['id']}/", {"tenant_id": project}, headers=H).json
        assert api == listed[-1]
        cli = cli_show(tmp_path, db_url, summary["id"])
        assert (api["number"], api["tenant_id"], api["start_date"], api["end_date"]) == (
            cli["number"],
            cli["project_id"],
            "2026-10-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
        )
        for field in ("subtotal", "tax", "total", "tax_percent"):
            assert api[field] == cli[field], field
        assert api["subtotal_currency"] == api["tax_currency"] == api["total_currency"] == "USD"
        api_rows = rows(api)
        assert len(api_rows) == len(cli["lines"]) > 0
        for row, line in zip(api_rows, cli["lines"], strict=True):
            assert row["price_charged"] == line["amount"]
            assert row["hours"] == line["hours"]
            assert row["hourly_price"] == line["unit_price"]
            assert (row["start_date"], row["adjusted_end_date"]) == (line["start"], line["end"])
            assert row["end_date"] == line["end"]  # a closed invoice's rows are closed
            assert row["price_charged_currency"] == "USD"

    a = app.get("/api/invoice/", {"tenant_id": PA}, headers=H).json
    assert [(d["period"], d["state"], d["total"]) for d in a] == [
        ("2026-11", 1, "54.12"),  # 492 h x 0.10 = 49.20, not yet capped; tax 4.92
        ("2026-10", 2, "57.64"),
    ]
    instance, volume = a[1]["instances"][0], a[1]["volumes"][0]
    assert {k: instance[k] for k in ("instance_id", "flavor_id", "name", "monthly_price")} == {
        "instance_id": "i-a",
        "flavor_id": "id-m1.small",
        "name": "web",
        "monthly_price": "50",
    }
    assert {k: volume[k] for k in ("volume_id", "volume_type_id", "space_allocation_gb")} == {
        "volume_id": "v-a",
        "volume_type_id": "vt-ssd",
        "space_allocation_gb": 10,
    }
    running = a[0]["instances"][0]
    assert (running["end_date"], running["adjusted_end_date"]) == (None, NOW_ISO)
    b = app.get(f"/api/invoice/{closed[1]['id']}/", headers=H).json
    assert b["floating_ips"][0]["ip"] == "203.0.113.7"
    assert b["routers"][0]["name"] == "edge"
    c = app.get(f"/api/invoice/{closed[2]['id']}/", headers=H).json
    assert [(r["name"], r["space_allocation_gb"]) for r in c["snapshots"] + c["images"]] == [
        ("nightly", 5),
        ("ubuntu", 3),
    ]

    simple = app.get("/api/invoice/simple_list/", {"tenant_id": PB}, headers=H).json
    assert [(d["period"], d["state"], d["total"], "routers" in d) for d in simple] == [
        ("2026-11", 1, "5.41", False),  # the router, 492 h x 0.01 = 4.92, tax 0.49
        ("2026-10", 2, "9.24", False),
    ]


def test_finish_and_rollback(app: TestApp, settings: Settings) -> None:
    set_prices(app)
    october()
    invoice_id = close_october(settings)[0]["id"]
    paid = app.post(f"/api/invoice/{invoice_id}/finish/", headers=H).json
    assert (paid["state"], paid["state_name"], paid["finish_date"]) == (100, "finished", NOW_ISO)
    # Rintik's dashboard calls it with GET (and skip_balance); paying twice changes nothing.
    again = app.get(f"/api/invoice/{invoice_id}/finish/?skip_balance=1", headers=H).json
    assert again == paid
    back = app.get(f"/api/invoice/{invoice_id}/rollback_to_unpaid/", headers=H).json
    assert (back["state"], back["state_name"], back["finish_date"]) == (2, "unpaid", None)
    assert app.post(f"/api/invoice/{invoice_id}/rollback_to_unpaid/", headers=H).json == back

    running = app.get("/api/invoice/", {"tenant_id": PA}, headers=H).json[0]
    refused = app.post(f"/api/invoice/{running['id']}/finish/", headers=H, status=400)
    assert "is in progress: it cannot be paid" in refused.json["error"]
    other = app.get(f"/api/invoice/{invoice_id}/", {"tenant_id": PB}, headers=H, status=404)
    assert other.json == {"error": f"invoice {invoice_id} is not an invoice of project {PB}"}
    assert app.get("/api/invoice/99999/", headers=H, status=404).json == {
        "error": "invoice 99999 does not exist"
    }
    assert app.get("/api/invoice/simple_list/", headers=H, status=400).json == {
        "error": "tenant_id is required"
    }
    assert app.get("/api/invoice/abc/", headers=H, status=404).json == {
        "error": "invoice 'abc' does not exist"
    }


# --- enable_billing ------------------------------------------------------------------------

INVENTORY = {
    "instances": [
        {
            "tenant_id": PA,
            "instance_id": "i-old",
            "name": "db",
            "flavor_id": "id-m1.small",
            "start_date": "2026-11-02T00:00:00Z",
        }
    ],
    "volumes": [
        {
            "tenant_id": PA,
            "volume_id": "v-old",
            "volume_name": None,
            "volume_type_id": "vt-ssd",
            "space_allocation_gb": 20,
            "start_date": "2026-11-03T00:00:00.000000",
        }
    ],
    "floating_ips": [
        {"tenant_id": PB, "fip_id": "f-old", "ip": "198.51.100.9", "start_date": "2026-11-04"}
    ],
    "routers": [
        {"tenant_id": PB, "router_id": "r-old", "name": "gw", "start_date": "2026-11-05T00:00Z"}
    ],
    "snapshots": [
        {
            "tenant_id": PB,
            "snapshot_id": "s-old",
            "name": "s",
            "space_allocation_gb": 2.5,
            "start_date": "2026-11-06T00:00:00+00:00",
        }
    ],
    "images": [
        {
            "tenant_id": PB,
            "image_id": "g-old",
            "name": "centos",
            "space_allocation_gb": 0.75,
            "start_date": "2026-11-07T00:00:00Z",
        }
    ],
}


def test_enable_billing_imports_existing_resources_once(app: TestApp) -> None:
    first = app.post_json("/api/invoice/enable_billing/", INVENTORY, headers=H).json
    assert first == {"status": "success", "resources": 6, "applied": 6, "duplicate": 0}
    again = app.post_json("/api/invoice/enable_billing/", INVENTORY, headers=H).json
    assert again == {"status": "success", "resources": 6, "applied": 0, "duplicate": 6}
    assert Event.select().where(Event.source == "import").count() == 6

    a = app.get(f"/v1/project/{PA}/entities", {"start": "2026-11-01"}, headers=H).json
    assert [(r["entity_id"], r["start"], r["end"]) for r in a] == [
        ("i-old", "2026-11-02T00:00:00Z", None),
        ("v-old", "2026-11-03T00:00:00Z", None),
    ]
    assert (a[0]["flavor_id"], a[1]["size"], a[1]["volume_type_id"]) == (
        "id-m1.small",
        20,
        "vt-ssd",
    )
    b = app.get(f"/v1/project/{PB}/entities", {"start": "2026-11-01"}, headers=H).json
    assert [(r["entity_id"], r["start"], r.get("size")) for r in b] == [
        ("f-old", "2026-11-04T00:00:00Z", None),
        ("r-old", "2026-11-05T00:00:00Z", None),
        ("s-old", "2026-11-06T00:00:00Z", 3),  # 2.5 GB billed as 3
        ("g-old", "2026-11-07T00:00:00Z", 1),
    ]

    moved = {
        "routers": [{**INVENTORY["routers"][0], "router_id": "r-new", "start_date": "2025-01-01"}]
    }
    app.post_json("/api/invoice/enable_billing/?billing_start=2026-11-01", moved, headers=H)
    assert app.get("/v1/entity/r-new", headers=H).json[0]["start"] == "2026-11-01T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"servers": []}, "unknown list 'servers': expected instances, volumes, "
         "floating_ips, routers, snapshots, images"),
        ({"volumes": {}}, "volumes must be an array, not object"),
        ({"volumes": [{"tenant_id": PA}]}, "volumes[0].volume_id is required"),
        ({"routers": [{**INVENTORY["routers"][0], "start_date": "yesterday"}]},
         "routers[0].start_date is not an ISO 8601 date: 'yesterday'"),
        ({"images": [{**INVENTORY["images"][0], "space_allocation_gb": "1"}]},
         "images[0].space_allocation_gb must be a number of GB, not string"),
        ({"instances": [{**INVENTORY["instances"][0], "flavor_id": None}]},
         "instances[0].flavor_id must not be null"),
        ({"instances": [{**INVENTORY["instances"][0], "instance_id": "a/b"}]},
         "instances[0].instance_id contains a control character or a slash"),
    ],
)  # fmt: skip
def test_a_bad_inventory_is_refused_naming_the_field(
    app: TestApp, body: dict[str, Any], error: str
) -> None:
    response = app.post_json("/api/invoice/enable_billing/", body, headers=H, status=400)
    assert response.json == {"error": error}
    assert Event.select().count() == 0


def test_an_item_the_ledger_refuses_fails_the_whole_import(app: TestApp) -> None:
    record(trace.volume("create.end", utc(2026, 11, 1), project=PA, volume_id="i-old"))
    response = app.post_json("/api/invoice/enable_billing/", INVENTORY, headers=H, status=400)
    assert response.json == {
        "error": "the ledger refused 1 item(s): entity i-old is a volume in the ledger, "
        "not a instance"
    }
    assert Event.select().where(Event.source == "import").count() == 0


# --- settings ------------------------------------------------------------------------------


def test_settings_persist_and_set_the_tax_of_invoices_closed_later(
    app: TestApp, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    assert app.get("/api/settings/", headers=H).json == {
        "invoice_tax": "10",
        "currency": "USD",
        "company_name": "",
        "company_address": "",
    }
    assert app.put_json("/api/settings/invoice_tax/", {"value": 11}, headers=H).json == {
        "invoice_tax": "11"
    }
    app.patch_json("/api/settings/company_name/", {"value": "Rintik & Co"}, headers=H)
    app.put_json("/api/settings/company_address/", {"value": "Jl. Hujan 1\nBandung"}, headers=H)
    # Before any invoice is closed the currency may change (and back).
    assert app.put_json("/api/settings/currency/", {"value": "eur"}, headers=H).json == {
        "currency": "EUR"
    }
    app.put_json("/api/settings/currency/", {"value": "USD"}, headers=H)

    restarted = make_app(make_settings(db_url, billing__tax_percent="10"))
    assert restarted.get("/api/settings/", headers=H).json == {
        "invoice_tax": "11",
        "currency": "USD",
        "company_name": "Rintik & Co",
        "company_address": "Jl. Hujan 1\nBandung",
    }
    assert restarted.get("/api/settings/company_name/", headers=H).json == {
        "company_name": "Rintik & Co"
    }

    set_prices(app)
    october()
    # The scheduler built its rules (tax 10 %) before the change: closing follows the API.
    closed = invoices.close_invoices(OCTOBER, NOW, RatingRules(tax_percent=Decimal(10)))
    assert [(c["tax_percent"], c["subtotal"], c["tax"], c["total"]) for c in closed] == [
        ("11", "52.40", "5.76", "58.16"),
        ("11", "8.40", "0.92", "9.32"),
        ("11", "5.89", "0.65", "6.54"),
    ]
    assert invoices.rules_from(settings).tax_percent == 11
    refused = app.put_json("/api/settings/currency/", {"value": "EUR"}, headers=H, status=400)
    assert refused.json == {
        "error": "the currency cannot change from USD to EUR: invoices have been closed in USD"
    }
    assert app.put_json("/api/settings/currency/", {"value": "usd"}, headers=H).json == {
        "currency": "USD"
    }
    # A later tax change leaves closed invoices as they were.
    app.put_json("/api/settings/invoice_tax/", {"value": "12.5"}, headers=H)
    api = app.get(f"/api/invoice/{closed[0]['id']}/", headers=H).json
    assert (api["tax_percent"], api["total"]) == ("11", "58.16")

    config = tmp_path / "rintik.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    result = CliRunner().invoke(
        cli_app,
        ["invoice", "show", str(closed[0]["id"]), "--format", "html", "--config", str(config)],
    )
    assert result.exit_code == 0, result.output
    assert "Rintik &amp; Co" in result.stdout and "Jl. Hujan 1<br>Bandung" in result.stdout


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/settings/logo/", {"value": "x"}, 404, "unknown setting 'logo'"),
        ("/api/settings/invoice_tax/", {"value": "abc"}, 400,
         "value of invoice_tax must be a decimal number of percent"),
        ("/api/settings/invoice_tax/", {"value": 2000}, 400,
         "invoice_tax must be between 0 and 1000 (percent), got 2000"),
        ("/api/settings/currency/", {"value": "E1"}, 400,
         "currency must be 3 to 8 letters (ISO 4217), got 'E1'"),
        ("/api/settings/company_name/", {"value": 5}, 400,
         "value of company_name must be a string"),
        ("/api/settings/company_name/", {"name": "x"}, 400, "unknown field name"),
    ],
)  # fmt: skip
def test_bad_settings(app: TestApp, path: str, body: Any, status: int, error: str) -> None:
    response = app.put_json(path, body, headers=H, status=status)
    assert error in response.json["error"]


# --- overviews -----------------------------------------------------------------------------


def test_admin_and_project_overviews(app: TestApp) -> None:
    set_prices(app)
    record(
        trace.instance("create.end", utc(2026, 11, 1), project=PA, instance_id="i-1"),
        trace.volume("create.end", utc(2026, 11, 1), project=PA, volume_id="v-1", size=10),
        trace.volume("delete.end", utc(2026, 11, 10), project=PA, volume_id="v-1"),
        trace.floating_ip("create.end", utc(2026, 11, 11), project=PB, fip_id="f-1"),
        trace.router("create.end", utc(2026, 10, 1), project=PB, router_id="r-1"),
        trace.router("delete.end", utc(2026, 10, 20), project=PB, router_id="r-1"),
    )
    overview = "/api/admin_overview/{}/"
    assert app.get(overview.format("total_resource"), headers=H).json == {
        "label": LABELS,
        "data": [1, 1, 1, 0, 0, 0],
    }
    assert app.get(overview.format("active_resource"), headers=H).json == {
        "label": LABELS,
        "data": [1, 0, 1, 0, 0, 0],
    }
    # instance 492 h x 0.10; volume 216 h x 10 GB x 0.001; floating IP 252 h x 0.005
    assert app.get(overview.format("price_total_resource"), headers=H).json == {
        "label": LABELS,
        "data": ["49.20", "2.16", "1.26", "0.00", "0.00", "0.00"],
        "currency": "USD",
    }
    assert app.get(overview.format("price_active_resource"), headers=H).json["data"] == [
        "49.20",
        "0.00",
        "1.26",
        "0.00",
        "0.00",
        "0.00",
    ]
    project = "/api/project_overview/{}/"
    assert app.get(project.format("total_resource"), {"tenant_id": PA}, headers=H).json == {
        "label": LABELS,
        "data": [1, 1, 0, 0, 0, 0],
    }
    assert app.get(project.format("price_active_resource"), {"tenant_id": PB}, headers=H).json[
        "data"
    ] == ["0.00", "0.00", "1.26", "0.00", "0.00", "0.00"]
    missing = app.get(project.format("active_resource"), headers=H, status=400)
    assert missing.json == {"error": "tenant_id is required"}


def test_the_openapi_document_describes_the_rintik_routes(app: TestApp) -> None:
    paths = app.get("/openapi.json").json["paths"]
    create = paths["/api/price/{kind}/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["hourly_price"]
    assert create["parameters"][0]["schema"] == {
        "type": "string",
        "enum": ["flavor", "floating_ip", "volume", "router", "snapshot", "image"],
    }
    assert set(paths["/api/price/{kind}/{price_id}/"]) == {"get", "put", "patch", "delete"}
    assert "405" in paths["/api/price/{kind}/{price_id}/"]["delete"]["responses"]
    inventory = paths["/api/invoice/enable_billing/"]["post"]["requestBody"]["content"]
    items = inventory["application/json"]["schema"]["properties"]["volumes"]["items"]
    assert items["required"] == [
        "tenant_id",
        "volume_id",
        "volume_type_id",
        "space_allocation_gb",
        "volume_name",
        "start_date",
    ]
