"""A small cloud, seeded through notifications as the collector receives them.

Four projects at `NOW` (2026-11-21 12:00 UTC): acme-prod (two instances and a volume; its
October invoice #1 is unpaid), acme-staging (a GPU flavor and an hdd volume type that have
no price), globex (a router, a floating IP, a deleted instance; October invoice #2 is
paid) and one without a name. One malformed message sits in the quarantine.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from rintik_lite import invoices
from rintik_lite.billing.periods import Period
from rintik_lite.settings import Settings
from tests.billing.trace import floating_ip, instance, router, ts, utc, volume, volume_type
from tests.conftest import NOW, notification, record, settings_for

ACME = "7c150a59fe714e6f9263774af9688f0e"
STAGING = "1f3a9e6b5c2d4e8f9a0b1c2d3e4f5a6b"
GLOBEX = "b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1"
NAMELESS = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"

OCTOBER = Period(2026, 10)
CLOSED_AT = utc(2026, 11, 1, 0, 1)
TAX = Decimal("10")


def settings(url: str) -> Settings:
    return settings_for(url, billing__tax_percent=TAX)


def project_created(project_id: str, name: str, at: Any) -> dict[str, Any]:
    payload = {
        "resource_info": project_id,
        "eventTime": at.isoformat(),
        "target": {"id": project_id, "name": name},
    }
    return notification("identity.project.created", payload, ts(at), publisher_id="identity.k")


def seed(url: str) -> None:
    """Fill the (opened, empty) database bound to `rintik_lite.db.database`."""
    rules = invoices.rules_from(settings(url))
    early = utc(2026, 9, 1)
    record(
        project_created(ACME, "acme-prod", early),
        project_created(STAGING, "acme-staging", early),
        project_created(GLOBEX, "globex", early),
        volume_type("vt-ssd", "ssd", early),
        volume_type("vt-hdd", "hdd", early),
        now=early,
    )
    for kind, key, hourly, monthly, since in (
        ("flavor", "id-m1.small", "0.02", None, None),
        ("flavor", "m1.large", "0.08", "50", None),
        ("flavor", "m1.tiny", "0.01", None, None),
        ("flavor", "m1.tiny", "0.012", None, utc(2026, 10, 1)),
        ("volume", "ssd", "0.0002", None, None),
        ("router", "default", "0.01", None, None),
        ("floating_ip", "default", "0.005", None, None),
    ):
        invoices.set_price(
            kind, key, hourly, monthly=monthly, since=since, currency="USD", now=early
        )

    october = [
        instance(
            "create.end", utc(2026, 10, 1, 8), project=ACME, instance_id="i-web-1", name="web-1"
        ),
        volume(
            "create.end",
            utc(2026, 10, 5, 9),
            project=ACME,
            volume_id="v-data",
            size=100,
            name="data",
        ),
        instance(
            "create.end", utc(2026, 10, 2, 10), project=GLOBEX, instance_id="i-old-1", name="old-1"
        ),
        router("create.end", utc(2026, 10, 15, 14), project=GLOBEX, router_id="r-edge"),
        floating_ip("create.end", utc(2026, 10, 15, 14, 5), project=GLOBEX, fip_id="fip-1"),
        instance(
            "delete.end",
            utc(2026, 10, 20, 18),
            project=GLOBEX,
            instance_id="i-old-1",
            name="old-1",
            launched=utc(2026, 10, 2, 10),
            deleted=utc(2026, 10, 20, 18),
        ),
    ]
    for message in october:
        record(message, now=utc(2026, 10, 20, 18, 1))
    invoices.close_invoices(OCTOBER, CLOSED_AT, rules)
    [paid] = [d for d in invoices.list_invoices(CLOSED_AT, rules, GLOBEX, OCTOBER)]
    invoices.pay_invoice(paid["id"], utc(2026, 11, 5, 10))

    record(
        instance(
            "create.end",
            utc(2026, 11, 3, 9),
            project=ACME,
            instance_id="i-db-1",
            flavor="m1.large",
            name="db-1",
        ),
        volume(
            "attach.end",
            utc(2026, 11, 3, 9, 5),
            project=ACME,
            volume_id="v-data",
            size=100,
            name="data",
            attached=["i-db-1"],
            created=utc(2026, 10, 5, 9),
        ),
        now=utc(2026, 11, 3, 9, 6),
    )
    record(
        instance(
            "create.end",
            utc(2026, 11, 10, 7),
            project=STAGING,
            instance_id="i-gpu-1",
            flavor="g1.gpu",
            name="gpu-1",
        ),
        volume(
            "create.end",
            utc(2026, 11, 10, 7, 30),
            project=STAGING,
            volume_id="v-scratch",
            size=20,
            volume_type="vt-hdd",
            name="scratch",
        ),
        now=utc(2026, 11, 10, 7, 31),
    )
    record(b'{"oslo.version": "2.0", "oslo.message": "{not json"}', now=NOW - timedelta(minutes=5))
    record(
        instance(
            "create.end",
            NOW - timedelta(minutes=3),
            project=NAMELESS,
            instance_id="i-ci-1",
            flavor="m1.tiny",
            name="ci-runner",
        ),
        now=NOW - timedelta(seconds=40),
    )
